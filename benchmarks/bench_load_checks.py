"""What the weight checks cost when loading (heartmula_core/quant/finite.py): load time with and
without them, and the time spent inside them (tables for benchmarks/RESULTS.md).

    python -m benchmarks.bench_load_checks [--layers 24] [--width 1024] [--repeats 5] [--threads 1]
    python -m benchmarks.bench_load_checks --lm-dir models/HeartMuLa/HeartMuLa-oss-3B-fp8

Writes a random float32 LM checkpoint (24 layers of 1024 by default: 1.6 GB, the size
tests/test_lm_load_memory.py uses) and its fp8 version (``quantize``), then loads each several
times, alternating "checks on" with "checks off" (the check functions replaced by no-ops and each
tensor read whole, without a slab-by-slab ``inspect``: the code before the checks existed), and
reports the median of each. "in checks" is the time measured inside the check functions and the
slab measurements (``finite.Largest``) during the "on" loads. The first table compares, for the fp8
codes alone, reading them from the page cache with checking them after the read (the checks' first
version) and while reading them (loading today).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from heartmula_core.cli.quantize import quantize
from heartmula_core.lm.config import HeartMuLaConfig
from heartmula_core.lm.load import build_lm, load_lm
from heartmula_core.quant import formats, source
from heartmula_core.quant.finite import Largest, largest_code
from heartmula_core.quant.storage import WeightStorage
from heartmula_core.safetensors_header import read_entries
from heartmula_core.weights import TensorSource

from .table import print_table

TINY_CKPT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiny" / "ckpt"
CHECKS = ("check_fp8", "check_float", "check_fits")


def lm_config(layers: int, width: int) -> dict:
    block = {"num_heads": 16, "num_kv_heads": 4, "embed_dim": width, "intermediate_dim": 4 * width}
    return {"model_type": "heartmula", "backbone": {"num_layers": layers, "max_seq_len": 2048, **block},
            "decoder": {"num_layers": 2, "max_seq_len": 64, **block}, "audio_vocab_size": 69,
            "text_vocab_size": 300, "muq_dim": 512}


def write_float32_lm(root: Path, layers: int, width: int) -> Path:
    """A float32 LM folder with random weights, written one tensor at a time."""
    from safetensors.torch import save_file

    folder = root / "HeartMuLa-oss-3B"
    folder.mkdir(parents=True)
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(TINY_CKPT / name, root / name)
    config = lm_config(layers, width)
    (folder / "config.json").write_text(json.dumps(config))
    g = torch.Generator().manual_seed(0)
    shapes = {k: tuple(v.shape) for k, v in build_lm(HeartMuLaConfig.from_dict(config)).state_dict().items()}
    save_file({k: torch.randn(s, generator=g) * 0.02 for k, s in shapes.items()}, str(folder / "model.safetensors"))
    return folder


@contextmanager
def checks(on: bool, spent: list[float]):
    """The check functions as they are (timed into ``spent``), or replaced by no-ops: the code
    before the checks existed."""
    originals = {name: getattr(source, name) for name in CHECKS + ("Largest",)}

    def timed(fn):
        def run(*args, **kw):
            start = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent.append(time.perf_counter() - start)
        return run

    class TimedLargest(Largest):
        __call__ = timed(Largest.__call__)

    for name, fn in originals.items():
        setattr(source, name, (TimedLargest if name == "Largest" else timed(fn)) if on else (lambda *a, **k: None))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(source, name, fn)


def time_loads(folder: Path, storage: WeightStorage, dtype: torch.dtype, repeats: int) -> dict:
    times = {True: [], False: []}
    inside: list[float] = []
    for i in range(2 * repeats + 1):  # the first load warms the page cache and is not counted
        on = i % 2 == 1
        spent: list[float] = []
        with checks(on, spent):
            start = time.perf_counter()
            load_lm(folder, dtype=dtype, storage=storage)
            elapsed = time.perf_counter() - start
        if i:
            times[on].append(elapsed)
            inside += [sum(spent)] if on else []
    off, on = statistics.median(times[False]), statistics.median(times[True])
    check = statistics.median(inside)
    return {"checks off s": f"{off:.3f}", "checks on s": f"{on:.3f}", "on / off": f"{on / off:.3f}",
            "in checks s": f"{check:.4f}", "in checks / load": f"{100 * check / on:.2f} %"}


def time_reads(folder: Path, repeats: int) -> list[dict]:
    """The fp8 tensors of ``folder`` read from the page cache alone, read then checked, and checked
    while read: the check next to the one step of loading it is most comparable with."""
    entries = {k: e for f in sorted(folder.glob("*.safetensors")) for k, e in read_entries(f).items()
               if formats.is_fp8(e.dtype)}
    source = TensorSource(entries, str(folder))
    ways = {"read": lambda k: source.load(k), "read, then check": lambda k: largest_code(source.load(k)),
            "check while reading": lambda k: source.load(k, inspect=Largest())}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            for key in entries:
                way(key)
            times[name].append(time.perf_counter() - start)
    gb = sum(e.end - e.start for e in entries.values()) / 1e9
    return [{"fp8 tensors": f"{len(entries)} ({gb:.2f} GB)", "what": name, "median s": f"{statistics.median(t):.3f}",
             "min s": f"{min(t):.3f}"} for name, t in times.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lm-dir", help="also time this LM folder (float or fp8)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        float32 = write_float32_lm(Path(tmp) / "f32", args.layers, args.width)
        fp8 = Path(tmp) / "fp8"
        quantize(float32, fp8, "fp8_e4m3fn")
        size = f"{args.layers} x {args.width}"
        cases = [(f"{size} fp8 file", fp8, "fp8_e4m3fn", WeightStorage(formats.E4M3), torch.float32),
                 (f"{size} fp8 file", fp8, "default, fp32", WeightStorage(), torch.float32),
                 (f"{size} fp8 file", fp8, "default, bf16", WeightStorage(), torch.bfloat16),
                 (f"{size} fp32 file", float32, "default, fp32", WeightStorage(), torch.float32),
                 (f"{size} fp32 file", float32, "fp8_e4m3fn", WeightStorage(formats.E4M3), torch.float32)]
        if args.lm_dir:
            cases += [(args.lm_dir, Path(args.lm_dir), "fp8_e4m3fn", WeightStorage(formats.E4M3), torch.bfloat16),
                      (args.lm_dir, Path(args.lm_dir), "default, bf16", WeightStorage(), torch.bfloat16)]
        reads = time_reads(fp8, 2 * args.repeats + 1)
        print_table(reads, f"Reading the fp8 tensors ({args.threads} thread(s), {2 * args.repeats + 1} times each)")
        for label, folder, held, storage, dtype in cases:
            rows.append({"checkpoint": label, "loaded as": held, **time_loads(folder, storage, dtype, args.repeats)})
            print(rows[-1], flush=True)
    print_table(reads, f"Reading the fp8 tensors ({args.threads} thread(s), {2 * args.repeats + 1} times each)")
    print_table(rows, f"Load time with and without the weight checks ({args.threads} thread(s), "
                      f"median of {args.repeats})")


if __name__ == "__main__":
    main()
