"""Continuing a song: the prefill (prompt + kept frames in one backbone pass) against feeding the
kept frames one by one, for a 2-minute prefix (1500 frames) by default.

    python -m benchmarks.bench_prefill [--device cpu|cuda] [--size medium] [--frames 1500] [--threads 1]
                                       [--cfg 1.5] [--dtype fp32|bf16|fp16]

Rows: "prefill" is what ``generate(..., prefix=...)`` does before its first new frame; "backbone per
frame" feeds each kept frame through the backbone alone (the least a frame-by-frame way must do);
"frame step per frame" runs the sampler's whole frame step per kept frame (backbone + depth decoder,
as resuming with the ordinary loop would). Each ends with the first new frame, sampled greedily, and
the table says whether the three agree. The caches are those of extending the song to twice its
length. Random weights (benchmarks/random_lm.py).
"""

from __future__ import annotations

import argparse
import time

import torch

from heartmula_core.lm.budget import cache_length
from heartmula_core.lm.frame_sampler import FrameSampler
from heartmula_core.lm.prefix import Prefix

from .lm_sizes import SIZES
from .random_lm import random_lm, random_prompt
from .table import print_table


def _sampler(model, prompt, frames: int, cfg: float, device, dtype) -> FrameSampler:
    """A sampler with the caches of a song extended to twice the kept length (as far as the context allows)."""
    config = model.config
    max_frames = min(2 * frames, config.backbone.max_seq_len - prompt.length)
    return FrameSampler(model, songs=1, cfg_scale=cfg, top_k=1, temperature=1.0,
                        max_len=cache_length(config, prompt.length, max_frames),
                        generator=torch.Generator(device).manual_seed(0), device=device, dtype=dtype)


def _timed(device, fn):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    frame = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, frame


def _prefill(model, prompt, kept, cfg, device, dtype):
    sampler = _sampler(model, prompt, kept.shape[-1], cfg, device, dtype)
    return _timed(device, lambda: sampler.prompt_pass(prompt, sampler.draw_noise(), kept))


def _backbone_per_frame(model, prompt, kept, cfg, device, dtype):
    sampler = _sampler(model, prompt, kept.shape[-1], cfg, device, dtype)

    def run():
        sampler.prompt_hidden(prompt)
        h = None
        for t in range(kept.shape[-1]):
            x = model.embed_frame(kept[:, :, t].repeat(sampler.rows, 1)).to(dtype)
            h = model.backbone(x, torch.tensor([prompt.length + t], device=device), sampler.backbone_state)[:, -1]
        return sampler._frame_from_hidden(h, sampler.draw_noise(), sampler.allowed)

    return _timed(device, run)


def _step_per_frame(model, prompt, kept, cfg, device, dtype):
    sampler = _sampler(model, prompt, kept.shape[-1], cfg, device, dtype)

    def run():
        sampler.prompt_hidden(prompt)
        frame = None
        for t in range(kept.shape[-1]):
            previous = kept[:, :, t].repeat(sampler.rows, 1)
            frame = sampler.step(previous, torch.tensor([prompt.length + t], device=device), sampler.draw_noise())
        return frame

    return _timed(device, run)


def measure(size: str, frames: int, cfg: float, device, dtype) -> list[dict]:
    config = SIZES[size]
    model = random_lm(config, device, dtype)
    prompt = random_prompt(config)
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, config.audio_vocab_size - 8, (1, config.audio_num_codebooks, frames), generator=gen)
    kept = Prefix(codes, [frames]).aligned(frames).to(device)
    rows, first = [], None
    with torch.inference_mode():
        _prefill(model, prompt, kept[:, :, :64], cfg, device, dtype)  # warm-up
        for name, way in (("prefill", _prefill), ("backbone per frame", _backbone_per_frame),
                          ("frame step per frame", _step_per_frame)):
            seconds, frame = way(model, prompt, kept, cfg, device, dtype)
            first = frame if first is None else first
            rows.append({"size": size, "device": device.type, "dtype": str(dtype).replace("torch.", ""), "cfg": cfg,
                         "prompt": prompt.length, "kept frames": frames, "way": name, "seconds": round(seconds, 3),
                         "same next frame": bool(torch.equal(frame[:1].cpu(), first[:1].cpu()))})
    base = rows[0]["seconds"]
    for row in rows:
        row["x prefill"] = round(row["seconds"] / base, 1)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--size", default="medium", choices=sorted(SIZES))
    ap.add_argument("--frames", type=int, default=1500, help="kept frames (1500 = 2 minutes)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cfg", type=float, default=1.5)
    ap.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"],
                    help="weights and compute (default: fp32 on CPU, bf16 on CUDA)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(
        args.dtype, torch.bfloat16 if args.device == "cuda" else torch.float32)
    rows = measure(args.size, args.frames, args.cfg, device, dtype)
    print_table(rows, title=f"Prefill of kept frames, torch {torch.__version__}, {args.threads} threads")


if __name__ == "__main__":
    main()
