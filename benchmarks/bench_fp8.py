"""fp8 weights: accuracy against float32 and CPU speed (tables for benchmarks/RESULTS.md).

    python -m benchmarks.bench_fp8 [--sections lm,codec,speed] [--frames 200] [--threads 1]
    python -m benchmarks.bench_fp8 --lm-dir models/HeartMuLa/HeartMuLa-oss-3B --codec-dir models/HeartMuLa/HeartCodec-oss

Random weights (tiny = the test checkpoint, medium = benchmarks/lm_sizes.py and bench_codec.py's
medium codec) are not trained ones: a trained model's logit margins, and so its greedy agreement,
differ. ``--lm-dir`` / ``--codec-dir`` add rows for real checkpoints (slow on a CPU).

LM: first-frame codebook-0 logits (relative L2 against float32 weights and compute) and greedy
(top-k 1) token agreement over ``--frames`` frames, CFG 1.5, a 120-token random prompt; also the
first frame whose tokens differ (greedy decoding diverges for good after one different token).
Codec: relative L2 of 10 s of waveform, 10 Euler steps, same noise. Speed: medium LM, ms per frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from heartmula_core.codec import decode, load_codec
from heartmula_core.lm.budget import cache_length
from heartmula_core.lm.capture import EagerStep
from heartmula_core.lm.frame_sampler import FrameSampler
from heartmula_core.lm.generation import decode_n_frames, prefill
from heartmula_core.lm.load import load_lm
from heartmula_core.quant import formats
from heartmula_core.quant.storage import WeightStorage

from .bench_codec import MEDIUM as MEDIUM_CODEC
from .bench_codec import TINY as TINY_CODEC
from .bench_codec import write_random_checkpoint as write_random_codec
from .lm_sizes import MEDIUM
from .random_lm import TINY_CKPT, random_prompt, write_lm
from .table import print_table

F32, BF16 = torch.float32, torch.bfloat16
# (label, compute dtype, weight dtype, scaled)
VARIANTS = [
    ("fp32", F32, None, True), ("bf16", BF16, None, True),
    ("fp8 e4m3fn, fp32 compute", F32, formats.E4M3, True), ("fp8 e4m3fn, bf16 compute", BF16, formats.E4M3, True),
    ("fp8 e5m2, fp32 compute", F32, formats.E5M2, True), ("fp8 e5m2, bf16 compute", BF16, formats.E5M2, True),
    ("fp8 e4m3fn unscaled, fp32 compute", F32, formats.E4M3, False),
]


@contextmanager
def unscaled():
    """Quantize with scale 1 (a plain cast, saturating), as ComfyUI's unscaled fp8 weights are."""
    original = formats.scale_for
    formats.scale_for = lambda amax, dtype: torch.ones((), dtype=torch.float32)
    try:
        yield
    finally:
        formats.scale_for = original


def load_variant(folder, compute, weight_dtype, scaled):
    with (nullcontext() if scaled else unscaled()):
        return load_lm(folder, dtype=compute, storage=WeightStorage(weight_dtype))


def sampler_for(lm, prompt, compute, frames: int, top_k: int) -> FrameSampler:
    """CFG 1.5, every audio id allowed and no end of audio: each run makes exactly ``frames`` frames."""
    return FrameSampler(lm.model, songs=1, cfg_scale=1.5, top_k=top_k, temperature=1.0,
                        max_len=cache_length(lm.config, prompt.length, frames),
                        generator=torch.Generator().manual_seed(0), device=torch.device("cpu"), dtype=compute)


@dataclasses.dataclass
class Frames:
    codes: torch.Tensor  # [1, 8, frames]
    ms_per_frame: float  # the frame steps after the prompt pass


def run_frames(lm, prompt, compute, frames: int, top_k: int = 1) -> Frames:
    """Exactly ``frames`` frames, eagerly (no end of audio: an EOS id of -1 never matches)."""
    sampler = sampler_for(lm, prompt, compute, frames, top_k)
    codes = torch.zeros(1, lm.config.audio_num_codebooks, frames, dtype=torch.long)
    lengths = torch.full((1,), frames, dtype=torch.long)
    with torch.inference_mode():
        frame = prefill(sampler, prompt)
        codes[:, :, 0] = frame[:1]
        start = time.perf_counter()
        decode_n_frames(EagerStep(sampler), frame, prompt.length, codes, lengths, 1, -1)
        seconds = time.perf_counter() - start
    return Frames(codes, 1000 * seconds / max(frames - 1, 1))


def first_logits(lm, prompt, compute) -> torch.Tensor:
    with torch.inference_mode():
        return lm.model.codebook0_head(sampler_for(lm, prompt, compute, 1, 1).prompt_hidden(prompt)).float()


def greedy_codes(lm, prompt, compute, frames: int) -> torch.Tensor:
    return run_frames(lm, prompt, compute, frames).codes


def lm_accuracy(name: str, folder: Path, frames: int) -> list[dict]:
    rows, reference = [], None
    for label, compute, weight_dtype, scaled in VARIANTS:
        lm = load_variant(folder, compute, weight_dtype, scaled)
        prompt = random_prompt(lm.config)
        logits, codes = first_logits(lm, prompt, compute), greedy_codes(lm, prompt, compute, frames)
        if reference is None:
            reference = logits, codes
        same = codes == reference[1]
        differs = (~same).any(dim=1)[0].nonzero()
        rows.append({"LM": name, "weights / compute": label,
                     "first-frame logits rel. error": f"{float((logits - reference[0]).norm() / reference[0].norm()):.4f}",
                     f"tokens equal over {frames} frames": f"{float(same.float().mean()) * 100:.1f} %",
                     "first differing frame": int(differs[0]) if len(differs) else "none"})
        del lm
    return rows


def codec_accuracy(name: str, folder: Path) -> list[dict]:
    rows, reference = [], None
    codes = None
    for label, compute, weight_dtype, scaled in VARIANTS:
        with (nullcontext() if scaled else unscaled()):
            codec = load_codec(folder, dtype=compute, storage=WeightStorage(weight_dtype))
        if codes is None:
            codes = torch.randint(0, codec.config.codebook_size, (1, 8, 125), generator=torch.Generator().manual_seed(1))
        wave = decode(codec, codes, steps=10, generator=torch.Generator().manual_seed(0))
        reference = wave if reference is None else reference
        rows.append({"codec": name, "transformer weights / compute": label,
                     "waveform rel. L2": f"{float((wave - reference).norm() / reference.norm()):.4f}"})
    return rows


def lm_speed(folder: Path, frames: int) -> list[dict]:
    rows = []
    plain = lambda q, dtype: (q.to(dtype), 1.0)  # noqa: E731  torch's own fp8 cast
    for label, compute, weight_dtype, cast in [
        ("fp32", F32, None, None), ("bf16", BF16, None, None),
        ("fp8 e4m3fn, fp32 compute", F32, formats.E4M3, None), ("fp8 e4m3fn, bf16 compute", BF16, formats.E4M3, None),
        ("fp8 e5m2, fp32 compute", F32, formats.E5M2, None),
        ("fp8 e4m3fn, fp32 compute, torch's cast", F32, formats.E4M3, plain),
    ]:
        lm = load_lm(folder, dtype=compute, storage=WeightStorage(weight_dtype))
        prompt = random_prompt(lm.config)
        original = formats.fp8_to
        formats.fp8_to = cast or original
        try:
            run_frames(lm, prompt, compute, frames, top_k=50)  # warm-up
            out = run_frames(lm, prompt, compute, frames, top_k=50)
        finally:
            formats.fp8_to = original
        weights = sum(t.numel() * t.element_size() for t in lm.model.state_dict().values())
        rows.append({"medium LM": label, "weights MB": round(weights / 1e6, 1), "ms/frame": round(out.ms_per_frame, 2)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default="lm,codec,speed")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--speed-frames", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lm-dir", default=None, help="also measure a real LM folder")
    ap.add_argument("--codec-dir", default=None, help="also measure a real HeartCodec folder")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sections = args.sections.split(",")
    title = f"torch {torch.__version__}, {args.threads} thread(s), CPU"
    with tempfile.TemporaryDirectory() as tmp:
        medium_lm = write_lm(MEDIUM, Path(tmp) / "lm")
        if "lm" in sections:
            lms = [("tiny", TINY_CKPT / "HeartMuLa-oss-3B"), ("medium", medium_lm)]
            lms += [("real", Path(args.lm_dir))] if args.lm_dir else []
            print_table([r for name, f in lms for r in lm_accuracy(name, f, args.frames)], f"LM accuracy, {title}")
        if "codec" in sections:
            codecs = [("tiny", TINY_CODEC), ("medium", write_random_codec(Path(tmp) / "codec", MEDIUM_CODEC))]
            codecs += [("real", Path(args.codec_dir))] if args.codec_dir else []
            print_table([r for name, f in codecs for r in codec_accuracy(name, f)], f"Codec accuracy, {title}")
        if "speed" in sections:
            print_table(lm_speed(medium_lm, args.speed_frames), f"LM speed, CFG on, top-k 50, {title}")


if __name__ == "__main__":
    main()
