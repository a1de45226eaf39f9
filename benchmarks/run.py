"""One table for every step: LM ms/frame and real-time factor (prompt pass separate), codec seconds
per audio second, peak memory and the memory estimate the nodes pass to ComfyUI, eager vs captured.

    python -m benchmarks.run --device cuda|cpu --size tiny|medium|3B [--frames 200] [--seconds 30]

"Captured" is a CUDA graph of the LM frame step on CUDA and torch.compile on the CPU; for the codec
it is torch.compile of the flow-matching estimator. Each row runs in a fresh process so its peak
memory (CUDA max allocated, or CPU peak RSS) is its own. The memory the run needs beyond weights
(CUDA: peak allocated minus weights; CPU: peak of live tensors, replayed from the profiler) is set
against the estimate the nodes pass to ComfyUI as ``memory_required``: within 25 % is "ok".
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from .cpu_memory import peak_live_bytes
from .table import print_table

CODEC_SIZE = {"tiny": "tiny", "medium": "medium", "3B": "real"}


def _peak_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_lm(size: str, device: str, mode: str, frames: int) -> dict:
    from heartmula_core.lm.budget import estimate_generation_bytes
    from heartmula_core.lm.generation import generate
    from heartmula_core.weights import module_bytes

    from .lm_sizes import SIZES
    from .random_lm import no_early_end, random_lm, random_prompt

    config = SIZES[size]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = random_lm(config, device, dtype)
    prompt = random_prompt(config)
    capture = {"eager": "eager", "captured": "cuda_graph" if device == "cuda" else "compile"}[mode]
    kw = dict(**no_early_end(config), cfg_scale=1.5, top_k=50, batch_size=1, capture=capture)
    generate(model, prompt, max_frames=frames, **kw)  # warm-up / compile at the measured cache size
    weights = module_bytes(model)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    out = generate(model, prompt, max_frames=frames, **kw)
    if device == "cuda":
        torch.cuda.synchronize()
    peak = _peak_bytes(device)
    if device == "cuda":
        used = peak - weights
    else:
        used = peak_live_bytes(lambda: generate(model, prompt, max_frames=frames, **{**kw, "capture": "eager"}))
    estimate = estimate_generation_bytes(config, prompt.length, frames, 1, 1.5, dtype)
    return {"step": "LM", "mode": mode, "ms/frame": round(out.ms_per_frame, 2),
            "RTF": round(out.ms_per_frame / 80.0, 4), "prompt ms": round(out.prompt_seconds * 1e3, 1),
            "codec s/audio s": "", "peak GiB": round(peak / 2**30, 3),
            "measured extra MiB": round(used / 2**20, 1), "estimate MiB": round(estimate / 2**20, 1)}


def run_codec(size: str, device: str, mode: str, seconds: float) -> dict:
    import tempfile
    from pathlib import Path

    from heartmula_core.codec import CodecConfig, decode, estimate_decode_bytes, load_codec
    from heartmula_core.codes import CODEBOOKS, FRAME_RATE
    from heartmula_core.weights import module_bytes

    from . import bench_codec

    with tempfile.TemporaryDirectory() as tmp:
        if size == "tiny":
            codec = load_codec(bench_codec.TINY, device=device)
        elif size == "medium":
            codec = load_codec(bench_codec.write_random_checkpoint(Path(tmp) / "medium", bench_codec.MEDIUM), device=device)
        else:
            codec = bench_codec.random_codec_in_memory(CodecConfig(), torch.device(device),
                                                       torch.bfloat16 if device == "cuda" else torch.float32)
    if mode == "captured":
        est = codec.flow_matching.estimator
        est.forward = torch.compile(est.forward, dynamic=False)
    frames = round(seconds * FRAME_RATE)
    codes = torch.randint(0, codec.config.codebook_size, (1, CODEBOOKS, frames), generator=torch.Generator().manual_seed(1))
    decode(codec, codes[:, :, :13], steps=2)  # warm-up / compile
    weights = module_bytes(codec)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    decode(codec, codes, generator=torch.Generator().manual_seed(0))
    if device == "cuda":
        torch.cuda.synchronize()
    took = time.perf_counter() - start
    peak = _peak_bytes(device)
    if device == "cuda":
        used = peak - weights
    else:
        used = peak_live_bytes(lambda: decode(codec, codes, steps=2))
    estimate = estimate_decode_bytes(codec.config, 1, codec.transformer_dtype, frames=frames)
    return {"step": "codec", "mode": mode, "ms/frame": "", "RTF": round(took / seconds, 4), "prompt ms": "",
            "codec s/audio s": round(took / seconds, 4), "peak GiB": round(peak / 2**30, 3),
            "measured extra MiB": round(used / 2**20, 1), "estimate MiB": round(estimate / 2**20, 1)}


def _judge_estimate(row: dict) -> dict:
    """The memory_required the nodes pass must be within 25 % of the measured peak beyond weights
    (CUDA: max_memory_allocated minus weights; CPU: peak of live tensors from the profiler)."""
    measured, estimate = row["measured extra MiB"], row["estimate MiB"]
    ratio = estimate / measured if measured > 0 else float("inf")
    row["estimate/measured"] = f"{ratio:.2f} {'ok' if 0.75 <= ratio <= 1.25 else 'OFF'}"
    return row


def one(args) -> None:
    torch.set_num_threads(args.threads)
    kind, mode = args.one.split(":")
    row = run_lm(args.size, args.device, mode, args.frames) if kind == "lm" else \
        run_codec(CODEC_SIZE[args.size], args.device, mode, args.seconds)
    print("ROW " + json.dumps(_judge_estimate(row)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--size", default="medium", choices=["tiny", "medium", "3B"])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0, help="audio decoded by the codec rows")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="lm,codec", help="lm, codec or both")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return one(args)
    rows = []
    for kind in args.only.split(","):
        for mode in ("eager", "captured"):
            cmd = [sys.executable, "-m", "benchmarks.run", "--one", f"{kind}:{mode}", "--device", args.device,
                   "--size", args.size, "--frames", str(args.frames), "--seconds", str(args.seconds),
                   "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            found = [line[4:] for line in out.stdout.splitlines() if line.startswith("ROW ")]
            if not found:
                print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                rows.append({"step": kind, "mode": mode, "ms/frame": "failed"})
                continue
            rows.append(json.loads(found[0]))
        eager, captured = rows[-2], rows[-1]
        key = "ms/frame" if kind == "lm" else "codec s/audio s"
        if isinstance(eager.get(key), float) and isinstance(captured.get(key), float) and captured[key]:
            captured["eager/captured"] = round(eager[key] / captured[key], 2)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    print_table(rows, title=f"HeartMuLa {args.size} on {gpu}, torch {torch.__version__}; LM: CFG on, top-k 50, "
                            f"batch 1, {args.frames} frames; codec: {args.seconds:g} s, 10 steps")


if __name__ == "__main__":
    main()
