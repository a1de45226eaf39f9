"""LM speed: ms per frame and real-time factor (80 ms of audio per frame), prompt pass separate.

    python -m benchmarks.bench_lm [--device cpu|cuda] [--sizes tiny,medium] [--frames 100] [--threads 2]
                                  [--modes eager,compile]

CPU runs use CFG on, top-k 50, the given thread count, and time the eager frame step and the
torch.compile'd one (after its compile warm-up). --device cuda runs the real 3B dimensions with
random bf16 weights, eager and as a CUDA graph.
"""

from __future__ import annotations

import argparse

import torch

from heartmula_core.lm.generation import generate

from .lm_sizes import SIZES
from .random_lm import no_early_end, random_lm, random_prompt
from .table import print_table


def measure_lm(size: str, device: str, dtype, frames: int, cfg: float = 1.5, batch: int = 1, capture: str = "eager",
               **gen_kw) -> dict:
    config = SIZES[size]
    model = random_lm(config, device, dtype)
    prompt = random_prompt(config)
    kw = dict(max_frames=frames, **no_early_end(config), cfg_scale=cfg, top_k=50, batch_size=batch,
              capture=capture, **gen_kw)
    generate(model, prompt, **kw)  # warm-up at the same cache size (a compiled step is built per size)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    out = generate(model, prompt, **kw)
    if device == "cuda":
        torch.cuda.synchronize()
    ms = out.ms_per_frame
    return {"size": size, "device": device, "step": capture, "dtype": str(dtype).replace("torch.", ""), "batch": batch,
            "cfg": cfg, "frames": out.frames_run, "prompt ms": round(out.prompt_seconds * 1000, 1),
            "ms/frame": round(ms, 2), "RTF": round(ms / 80.0, 4),
            "peak GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else ""}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--sizes", default=None, help="comma-separated: tiny, medium, 3B")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default=None, help="eager, compile, cuda_graph (default: eager + the captured one)")
    ap.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"],
                    help="weights and compute (default: fp32 on CPU, bf16 on CUDA)")
    args = ap.parse_args(argv)
    modes = (args.modes or ("eager,cuda_graph" if args.device == "cuda" else "eager,compile")).split(",")
    torch.set_num_threads(args.threads)
    sizes = (args.sizes or ("3B" if args.device == "cuda" else "tiny,medium")).split(",")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(
        args.dtype, torch.bfloat16 if args.device == "cuda" else torch.float32)
    rows = [measure_lm(s, args.device, dtype, args.frames, capture=m) for s in sizes for m in modes]
    print_table(rows, title=f"HeartMuLa LM, torch {torch.__version__}, {args.threads} threads")


if __name__ == "__main__":
    main()
