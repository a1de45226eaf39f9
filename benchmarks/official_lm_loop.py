"""Time the official HeartMuLa frame loop on the benchmark's random-weight configs, for comparison.

    python -m benchmarks.official_lm_loop --size tiny|medium [--threads 2] [--frames 150]

Needs the official library on the path (HeartMuLa/heartlib's ``src`` folder, e.g. via PYTHONPATH)
and torchtune 0.4 + torchao. Neither is a dependency of this project. torchtune imports data
packages at import time that its model code never uses; those are replaced by empty modules here
so the timing needs only torch. The loop is the official pipeline's: one prompt pass, then
``generate_frame`` per frame with CFG (batch 2), top-k 50, temperature 1.0.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import sys
import time
from unittest import mock

import torch

from .lm_sizes import SIZES

UNUSED_AT_RUNTIME = {"datasets", "tiktoken", "blobfile", "sentencepiece", "kagglehub", "torchdata",
                     "vector_quantize_pytorch", "einops", "PIL"}


class _EmptyModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in UNUSED_AT_RUNTIME:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        module = mock.MagicMock()
        module.__path__, module.__name__, module.__spec__ = [], spec.name, spec
        return module

    def exec_module(self, module):
        pass


def build_official(size: str):
    sys.meta_path.append(_EmptyModules())
    from torchtune.models import llama3_2

    import heartlib.heartmula.modeling_heartmula as official

    ours = SIZES[size]

    def flavor(c):
        return lambda: llama3_2.llama3_2(vocab_size=128, num_layers=c.num_layers, num_heads=c.num_heads,
                                         num_kv_heads=c.num_kv_heads, embed_dim=c.embed_dim,
                                         intermediate_dim=c.intermediate_dim, max_seq_len=c.max_seq_len,
                                         attn_dropout=0.0, norm_eps=c.norm_eps, rope_base=c.rope_base,
                                         scale_factor=c.scale_factor)

    official.FLAVORS["bench-backbone"] = flavor(ours.backbone)
    official.FLAVORS["bench-decoder"] = flavor(ours.decoder)
    config = official.HeartMuLaConfig(backbone_flavor="bench-backbone", decoder_flavor="bench-decoder",
                                      text_vocab_size=ours.text_vocab_size, audio_vocab_size=ours.audio_vocab_size)
    model = official.HeartMuLa(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    return model, ours


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="medium", choices=["tiny", "medium"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=150)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, config = build_official(args.size)
    model.setup_caches(2)
    length = 120
    tokens = torch.zeros(2, length, 9, dtype=torch.long)
    tokens[..., -1] = torch.randint(2, config.text_vocab_size, (2, length))
    mask = torch.zeros(2, length, 9, dtype=torch.bool)
    mask[..., -1] = True
    pos = torch.arange(length).repeat(2, 1)
    times = []
    with torch.inference_mode():
        frame = model.generate_frame(tokens, mask, pos, 1.0, 50, 1.5, torch.zeros(2, 512), [20, 20])
        for i in range(args.frames):
            step = torch.zeros(2, 1, 9, dtype=torch.long)
            step[:, 0, :-1] = frame
            step_mask = torch.ones_like(step, dtype=torch.bool)
            step_mask[..., -1] = False
            start = time.perf_counter()
            frame = model.generate_frame(step, step_mask, pos[..., -1:] + i + 1, 1.0, 50, 1.5)
            times.append(time.perf_counter() - start)
    warm = times[10:]
    print(f"official loop, {args.size}, {args.threads} threads, torch {torch.__version__}: "
          f"{1000 * sum(warm) / len(warm):.2f} ms/frame")


if __name__ == "__main__":
    main()
