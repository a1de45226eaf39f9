"""Adding a LoRA to the LM the command line's and ``batch``'s way (while the weights load, each
rounded once after the sum: ``load_lm(updates=)``), and into an LM already loaded (``merge_adapters``,
what ComfyUI's patcher does to weights already in their dtype): time, the memory it needs beyond
the model and the LoRA, and what fp8 weights cost in accuracy with a LoRA either way.

    python -m benchmarks.bench_lora [--rank 16] [--threads 1] [--sizes medium,3B-blocks]

The LoRA: rank ``--rank`` on every block projection (q, k, v, o, gate, up, down of the backbone and
the decoder), random factors. ``3B-blocks``: 2 backbone and 1 decoder layers at the 3B's widths
(the whole 3B does not fit this machine's RAM beside other work); its "3B, extrapolated" rows
scale the time by the 3B's 28 + 3 layers (the work is layer by layer, so time is linear in the
layers and the extra memory is that of the largest layer, whatever the depth). Time added to the
load: the time inside the LoRA's sums while loading (median of 5 loads), and the median of 5 loads
with the LoRA minus the median of 5 without, alternating (page cache warm; noisy on a shared
machine). Extra memory:
the peak of live tensors replayed from the profiler (cpu_memory.peak_live_bytes): while loading
with the LoRA minus while loading without; during a merge into a loaded model (which exists
before it). fp8 accuracy (medium): first-frame logits of the fp8 LM with the LoRA against the
float32 LM with the LoRA, beside fp8 alone against float32 (bench_fp8's measure).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from heartmula_core.lm.config import HeartMuLaConfig
from heartmula_core.lm.load import load_lm
from heartmula_core.lora.fit import Adapter, LowRank
from heartmula_core.lora.merge import Updates, merge_adapters, merge_bytes
from heartmula_core.quant import formats
from heartmula_core.quant.storage import WeightStorage

from .bench_fp8 import first_logits
from .cpu_memory import peak_live_bytes
from .lm_sizes import MEDIUM, REAL_3B
from .random_lm import random_prompt, write_lm
from .table import print_table

BLOCKS_3B = HeartMuLaConfig(backbone=dataclasses.replace(REAL_3B.backbone, num_layers=2),
                            decoder=dataclasses.replace(REAL_3B.decoder, num_layers=1),
                            text_vocab_size=300, audio_vocab_size=REAL_3B.audio_vocab_size)
SIZES = {"medium": (MEDIUM, 1.0), "3B-blocks": (BLOCKS_3B, (28 + 3) / (2 + 1))}
PROJECTIONS = ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.output_proj", "mlp.w1", "mlp.w2", "mlp.w3")


def random_adapter(model: torch.nn.Module, rank: int, seed: int = 0) -> Adapter:
    g = torch.Generator().manual_seed(seed)
    low_rank = {}
    for key, t in model.state_dict().items():
        if key.endswith(".weight") and key[: -len(".weight")].endswith(PROJECTIONS) and ".layers." in key:
            out, inp = t.shape
            low_rank[key] = LowRank(torch.randn(out, rank, generator=g) * 0.02, torch.randn(rank, inp, generator=g) / inp ** 0.5,
                                    float(rank))
    return Adapter(Path("random"), low_rank, {})


class TimedUpdates(Updates):
    """Updates that add up the time spent in them (the sums and their check)."""

    def __init__(self, adapters):
        super().__init__(adapters)
        self.seconds = 0.0

    def __call__(self, key, weight, held=torch.float32):
        start = time.perf_counter()
        super().__call__(key, weight, held)
        self.seconds += time.perf_counter() - start


def load_times(folder: Path, dtype, storage: WeightStorage, adapter: Adapter, repeats: int = 5) -> tuple[float, float]:
    """(median load with the LoRA minus median without, median time inside the LoRA's sums), the
    two loads alternating so that both see the same moments of a shared machine."""
    times: dict[bool, list[float]] = {False: [], True: []}
    inside = []
    for i in range(2 * repeats):
        lora = i % 2 == 1
        updates = TimedUpdates([(adapter, 1.0)]) if lora else None
        start = time.perf_counter()
        load_lm(folder, dtype=dtype, storage=storage, updates=updates)
        times[lora].append(time.perf_counter() - start)
        inside += [updates.seconds] if lora else []
    return statistics.median(times[True]) - statistics.median(times[False]), statistics.median(inside)


def merge_row(size: str, folder: Path, label: str, dtype, fp8, rank: int, factor: float) -> dict:
    storage = WeightStorage(fp8)
    lm = load_lm(folder, dtype=dtype, storage=storage)  # also warms the page cache
    adapter = random_adapter(lm.model, rank)
    model_bytes = sum(t.numel() * t.element_size() for t in lm.model.state_dict().values())
    shapes = {k: tuple(v.shape) for k, v in lm.model.state_dict().items()}
    start = time.perf_counter()
    merge_adapters(lm.model, [(adapter, 1.0)])
    merge_s = time.perf_counter() - start
    lm = load_lm(folder, dtype=dtype, storage=storage)
    merge_peak = peak_live_bytes(lambda: merge_adapters(lm.model, [(adapter, 1.0)]))
    del lm
    plain = lambda: load_lm(folder, dtype=dtype, storage=storage)  # noqa: E731
    with_lora = lambda: load_lm(folder, dtype=dtype, storage=storage, updates=Updates([(adapter, 1.0)]))  # noqa: E731
    added_s, sums_s = load_times(folder, dtype, storage, adapter)
    load_peak = peak_live_bytes(with_lora) - peak_live_bytes(plain)
    three_b = lambda seconds: f"{seconds * factor:.1f}" if factor != 1.0 else ""  # noqa: E731
    return {"LM": size, "weights": label, "model GB": f"{model_bytes / 1e9:.3f}",
            "LoRA MB": f"{adapter.nbytes() / 1e6:.1f}",
            "in the sums s": f"{sums_s:.3f}", "3B extrapolated s": three_b(sums_s),
            "load with - without s": f"{added_s:.3f}",
            "extra peak MB": f"{load_peak / 1e6:.1f}",
            "merge into a loaded LM s": f"{merge_s:.3f}", "3B extrapolated s ": three_b(merge_s),
            "its extra peak MB": f"{merge_peak / 1e6:.1f}",
            "estimate MB (merge_bytes)": f"{merge_bytes([(adapter, 1.0)], shapes) / 1e6:.1f}"}


def fp8_accuracy(folder: Path, rank: int) -> list[dict]:
    ways = {"float32": (None, False), "float32 + LoRA": (None, True),
            "fp8 e4m3fn": (formats.E4M3, False), "fp8 e4m3fn + LoRA added while loading": (formats.E4M3, True),
            "fp8 e4m3fn + LoRA merged into loaded fp8 weights": (formats.E4M3, "after")}
    logits = {}
    for label, (fp8, lora) in ways.items():
        adapter = random_adapter(load_lm(folder).model, rank)
        updates = Updates([(adapter, 1.0)]) if lora is True else None
        lm = load_lm(folder, storage=WeightStorage(fp8), updates=updates)
        if lora == "after":
            merge_adapters(lm.model, [(adapter, 1.0)])
        logits[label] = first_logits(lm, random_prompt(lm.config), torch.float32)
    rel = lambda a, b: float((logits[a] - logits[b]).norm() / logits[b].norm())  # noqa: E731
    pairs = [("fp8 e4m3fn", "float32"), ("fp8 e4m3fn + LoRA added while loading", "float32 + LoRA"),
             ("fp8 e4m3fn + LoRA merged into loaded fp8 weights", "float32 + LoRA"), ("float32 + LoRA", "float32")]
    return [{"medium LM": f"{a} vs {b}", "first-frame logits rel. error": f"{rel(a, b):.3f}"} for a, b in pairs]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sizes", default="medium,3B-blocks")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, scratch = [], Path(tempfile.mkdtemp(prefix="bench-lora-"))
    try:
        for size in args.sizes.split(","):
            config, factor = SIZES[size]
            folder = write_lm(config, scratch / size)
            for label, dtype, fp8 in (("fp32", torch.float32, None), ("bf16", torch.bfloat16, None),
                                      ("fp8 e4m3fn", torch.float32, formats.E4M3)):
                rows.append(merge_row(size, folder, label, dtype, fp8, args.rank, factor))
        print_table(rows, f"A LoRA of rank {args.rank} on every block projection, CPU, {args.threads} thread(s)")
        if "medium" in args.sizes:
            print_table(fp8_accuracy(scratch / "medium", args.rank), "fp8 weights with a LoRA")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
