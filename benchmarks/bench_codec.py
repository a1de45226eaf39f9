"""Seconds of HeartCodec decode per second of audio, for tiny / medium / real-size codecs.

    python benchmarks/bench_codec.py [--sizes tiny,medium,real] [--devices cpu,cuda] [--seconds 30]

Weights are random (speed does not depend on their values): tiny is the test checkpoint; medium
(transformer width 64 = 4 heads x 16, 4 + 2 layers, codebook 1024, init_channel 8) is written to a
temporary checkpoint folder and loaded through ``load_codec`` like a real download; real uses the
released default config, built in memory (6.6 GB of float32), and runs on CUDA only by default.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as a script

from heartmula_core.codec import CodecConfig, build_codec, checkpoint_layout, decode, load_codec  # noqa: E402
from heartmula_core.codes import CODEBOOKS, FRAME_RATE  # noqa: E402

TINY = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiny" / "ckpt" / "HeartCodec-oss"
MEDIUM = dict(attention_head_dim=16, num_attention_heads=4, num_layers=4, num_layers_2=2,
              codebook_size=1024, init_channel=8)


def _random_tensor(shape, generator) -> torch.Tensor:
    if len(shape) == 0:
        return torch.ones((), dtype=torch.bool)
    fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else shape[0]
    return torch.randn(shape, generator=generator) / fan_in ** 0.5


def write_random_checkpoint(folder: Path, overrides: dict) -> Path:
    """A HeartCodec folder (config.json + model.safetensors) with random weights, released key layout."""
    from safetensors.torch import save_file

    config = CodecConfig.from_dict(overrides)
    g = torch.Generator().manual_seed(0)
    tensors = {k: _random_tensor(s, g) for k, s in checkpoint_layout(config).items()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "heartcodec", **overrides}))
    save_file(tensors, folder / "model.safetensors")
    return folder


def random_codec_in_memory(config: CodecConfig, device, dtype):
    """Real-size codec without a 6.6 GB file: meta build, then random values on the device."""
    model = build_codec(config).to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(_random_tensor(tuple(p.shape), None).to(device) if p.dim() < 2 else
                    torch.randn(p.shape, generator=g, device=device) / max(1, p[0].numel()) ** 0.5)
        model.flow_matching.estimator.to(dtype)
    return model.eval().requires_grad_(False)


def time_decode(codec, seconds: float, steps: int, repeats: int) -> float:
    frames = round(seconds * FRAME_RATE)
    codes = torch.randint(0, codec.config.codebook_size, (1, CODEBOOKS, frames), generator=torch.Generator().manual_seed(1))
    decode(codec, codes[:, :, :13], steps=1)  # warm-up (kernels, allocator)
    best = float("inf")
    for _ in range(repeats):
        if codec.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        decode(codec, codes, steps=steps, generator=torch.Generator().manual_seed(0))
        if codec.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="tiny,medium,real")
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--dtypes", default="fp32", help="transformer dtypes to time, e.g. fp32,bf16")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio length decoded per run")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads (0: torch default). On a shared machine use 1: busy cores make "
                         "multi-threaded runs many times slower and the numbers meaningless")
    ap.add_argument("--real-on-cpu", action="store_true", help="also time the real size on CPU (slow)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    devices = [d for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            for device in devices:
                if size == "real" and device == "cpu" and not args.real_on_cpu:
                    continue
                for dname in args.dtypes.split(","):
                    dtype = dtypes[dname]
                    if size == "tiny":
                        codec = load_codec(TINY, device=device, dtype=dtype)
                    elif size == "medium":
                        folder = Path(tmp) / "medium"
                        if not folder.exists():
                            write_random_checkpoint(folder, MEDIUM)
                        codec = load_codec(folder, device=device, dtype=dtype)
                    else:
                        codec = random_codec_in_memory(CodecConfig(), torch.device(device), dtype)
                    seconds = time_decode(codec, args.seconds, args.steps, args.repeats)
                    rows.append((size, device, dname, args.seconds, seconds, seconds / args.seconds))
                    print(f"{size:7s} {device:5s} {dname:5s} {args.seconds:7.1f} s audio  {seconds:8.2f} s  "
                          f"{seconds / args.seconds:7.3f} s/s", flush=True)
                    del codec
                    if device == "cuda":
                        torch.cuda.empty_cache()

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"\nHeartCodec decode, {args.steps} Euler steps, guidance 1.25, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, {name}")
    print("| size | device | transformer dtype | audio s | decode s | s per audio s |")
    print("|---|---|---|---|---|---|")
    for size, device, dname, audio, secs, ratio in rows:
        print(f"| {size} | {device} | {dname} | {audio:.1f} | {secs:.2f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
