"""fp8 memory plan: weights' bytes and the peak of a 4-minute song, and loading's peak RSS.

    python -m benchmarks.bench_fp8_memory                       # the table, from the released manifests
    python -m benchmarks.bench_fp8_memory --rss-3b DIR [--keep] # write a random float32 3B LM in the
                                                                # released sharded layout (~16 GB) to DIR;
                                                                # through the command line, each in a fresh
                                                                # process: sample it with --weight-dtype
                                                                # fp8_e4m3fn, quantize it, sample the result

Weights: exact, from tests/data/manifests (the released checkpoints' key lists) and the plan in
heartmula_core/quant/storage.py. Peak: weights + ``estimate_generation_bytes`` (LM: 3000 frames =
240 s, a 400-token prompt, batch 1, CFG on) or ``estimate_decode_bytes`` (codec: batch 1, 240 s).
A card "fits" when the peak is below its size less 1 GiB (CUDA context, ComfyUI, fragmentation).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from heartmula_core.codec import CodecConfig, build_codec, estimate_decode_bytes
from heartmula_core.lm.budget import estimate_generation_bytes
from heartmula_core.lm.load import build_lm
from heartmula_core.quant import formats
from heartmula_core.quant import storage as store

from .lm_sizes import REAL_3B
from .table import print_table

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "tests" / "data" / "manifests"
CARDS_GIB = (4, 6, 8, 10, 12, 16, 24, 32, 48, 80)
RESERVE_GIB = 1.0
GIB = 2 ** 30
F32, BF16 = torch.float32, torch.bfloat16


# How ComfyUI's fp8 layers take weights, as nodes/fp8_ops.py describes them to the core (0.28+:
# mixed_precision_ops, Linear and Embedding; 0.3.64: scaled_fp8_ops, every Linear scaled, no fp8 embedding).
COMFY_MIXED = store.HostLayout("ComfyUI mixed_precision_ops", "weight_scale", True,
                               frozenset({store.LINEAR, store.EMBEDDING}))
COMFY_SCALED_FP8 = store.HostLayout("ComfyUI scaled_fp8_ops", "scale_weight", False, frozenset({store.LINEAR}), True)


def smallest_card(peak: int) -> str:
    fits = [c for c in CARDS_GIB if peak <= (c - RESERVE_GIB) * GIB]
    return f"{fits[0]} GB" if fits else f"> {CARDS_GIB[-1]} GB"


def held_bytes(shapes: dict, wide_dtype, plan: store.WeightPlan | None, keep_f32=lambda k: False) -> int:
    """``store.held_bytes`` with every non-fp8 tensor in ``wide_dtype`` (float32 where ``keep_f32``)."""
    plan = plan or store.plan_for({}, None)
    return store.held_bytes(shapes, plan, lambda k: F32 if keep_f32(k) else wide_dtype)


def manifest_shapes(name: str) -> dict:
    keys = json.loads((MANIFESTS / name).read_text(encoding="utf-8"))["keys"]
    return {k: tuple(v["shape"]) for k, v in keys.items()}


def lm_rows(prompt: int = 400, frames: int = 3000) -> list[dict]:
    shapes = manifest_shapes("heartmula-3B.json")
    model = build_lm(REAL_3B)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes, "manifest != 3B architecture"
    candidates = store.lm_candidates(model)
    rows = []
    for label, compute, plan in [
        ("fp32", F32, None), ("bf16", BF16, None),
        ("fp8 e4m3fn/e5m2 + bf16 compute (CLI; ComfyUI 0.28+)", BF16, store.plan_for(candidates, formats.E4M3, COMFY_MIXED)),
        ("fp8 + bf16 compute (ComfyUI 0.3.64: embeddings bf16)", BF16, store.plan_for(candidates, formats.E4M3, COMFY_SCALED_FP8)),
    ]:
        weights = held_bytes(shapes, compute, plan)
        peak = weights + estimate_generation_bytes(REAL_3B, prompt, frames, 1, 1.5, compute)
        rows.append({"model": "LM 3B", "weights": label, "weights GB": round(weights / 1e9, 3),
                     "peak 240 s GB": round(peak / 1e9, 2), "smallest card": smallest_card(peak)})
    disk = held_bytes(shapes, F32, store.plan_for(candidates, formats.E4M3, store.CHECKPOINT))
    rows.append({"model": "LM 3B", "weights": "fp8 checkpoint on disk (quantize)", "weights GB": round(disk / 1e9, 3),
                 "peak 240 s GB": f"{disk / held_bytes(shapes, F32, None):.3f} x float32 file", "smallest card": ""})
    return rows


def codec_rows(frames: int = 3000) -> list[dict]:
    config = CodecConfig()
    model = build_codec(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}
    released = manifest_shapes("heartcodec.json")
    candidates = store.codec_candidates(model)
    assert all(released.get(k) == shapes[k] for k, kind in candidates.items() if kind == store.LINEAR)
    outside = lambda k: not k.startswith("flow_matching.estimator.")  # noqa: E731  float32 always
    rows = []
    for label, compute, plan in [
        ("fp32", F32, None), ("bf16 transformer", BF16, None),
        ("fp8 transformer + fp32 compute", F32, store.plan_for(candidates, formats.E4M3, COMFY_MIXED)),
        ("fp8 transformer + bf16 compute", BF16, store.plan_for(candidates, formats.E4M3, COMFY_MIXED)),
    ]:
        weights = held_bytes(shapes, compute, plan, outside)
        peak = weights + estimate_decode_bytes(config, 1, compute, frames=frames)
        rows.append({"model": "codec", "weights": label, "weights GB": round(weights / 1e9, 3),
                     "peak 240 s GB": round(peak / 1e9, 2), "smallest card": smallest_card(peak)})
    file_plan = store.plan_for(candidates, formats.E4M3, store.CHECKPOINT)
    disk, full = held_bytes(released, F32, file_plan), held_bytes(released, F32, None)
    rows.append({"model": "codec", "weights": "fp8 checkpoint on disk (quantize)", "weights GB": round(disk / 1e9, 3),
                 "peak 240 s GB": f"{disk / full:.3f} x float32 file", "smallest card": ""})
    return rows


def write_sharded_3b(folder: Path, shards: int = 4) -> int:
    """The released 3B layout with random float32 weights, in ``shards`` files + an index; returns bytes."""
    sys.path.insert(0, str(ROOT / "tests"))
    from streaming_safetensors import write_random_checkpoint

    shapes = manifest_shapes("heartmula-3B.json")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "heartmula"}))
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(ROOT / "tests" / "data" / "tiny" / "ckpt" / name, folder / name)
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    per, groups, current, filled = sum(sizes.values()) / shards, [], [], 0
    for key in shapes:
        current.append(key)
        filled += sizes[key]
        if filled >= per * (len(groups) + 1) and len(groups) < shards - 1:
            groups.append(current)
            current = []
    groups.append(current)
    weight_map, total = {}, 0
    for i, keys in enumerate(groups):
        name = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        total += write_random_checkpoint(folder / name, {k: shapes[k] for k in keys}, seed=i)
        weight_map.update({k: name for k in keys})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return total


# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec, so a child started by a big
# parent would report the parent's peak. load_lm is wrapped to read the peak right after loading.
MEASURE = """
import json, re, sys, time, torch
import heartmula_core.lm.load as lm_load
from heartmula_core.cli.main import main
torch.set_num_threads(1)  # a shared 2-core machine: 2 threads made frames swing 10x
def status(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
marks, real_load = {}, lm_load.load_lm
def load_lm(*args, **kwargs):
    start = time.perf_counter()
    lm = real_load(*args, **kwargs)
    marks.update(loaded=status("VmHWM"), held=status("VmRSS"), load_s=time.perf_counter() - start)
    return lm
lm_load.load_lm = load_lm
before, start = status("VmHWM"), time.perf_counter()
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "before": before, "peak": status("VmHWM"), "seconds": time.perf_counter() - start, **marks}))
"""


def run_cli(args: list[str]) -> dict:
    """``python -m heartmula_core ARGS`` in a fresh process: its peak RSS, before and after loading the LM."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def sample_args(folder: Path, codes: Path) -> list[str]:
    return ["sample", "--model-dir", str(folder), "--tags", "piano,happy", "--lyrics", "la la la", "--seconds", "0.16",
            "--top-k", "1", "--device", "cpu", "--weight-dtype", "fp8_e4m3fn", "--codes-out", str(codes)]


def cli_row(what: str, m: dict, size: int) -> dict:
    gb = lambda n: round(n / 1e9, 2)  # noqa: E731
    row = {"run": what, "RSS before GB": gb(m["before"]), "peak RSS GB": gb(m["peak"]),
           "peak added GB": gb(m["peak"] - m["before"]), "peak / checkpoint": round(m["peak"] / size, 3),
           "added / checkpoint": round((m["peak"] - m["before"]) / size, 3), "s": round(m["seconds"], 1)}
    if "loaded" in m:
        row.update({"peak after loading GB": gb(m["loaded"]), "RSS after loading GB": gb(m["held"]),
                    "load s": round(m["load_s"], 1)})
    return row


def measure_3b(folder: Path, size: int) -> list[dict]:
    """The acceptance runs, through the command line: float32 -> fp8 while loading, quantize, the fp8 folder."""
    from heartmula_core.codes import load_codes

    out = folder.parent / (folder.name + "-fp8")
    converted = run_cli(sample_args(folder, out.parent / "a.st"))
    rows = [cli_row("sample float32 files, --weight-dtype fp8_e4m3fn", converted, size)]
    rows.append(cli_row("quantize", run_cli(["quantize", "--model-dir", str(folder), "--out", str(out)]), size))
    written = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    rows[-1]["run"] += f" (wrote {written / 1e9:.2f} GB = {written / size:.3f} x)"
    rows.append(cli_row("sample the quantized folder, --weight-dtype fp8_e4m3fn",
                        run_cli(sample_args(out, out.parent / "b.st")), size))
    (a, _), (b, _) = load_codes(out.parent / "a.st"), load_codes(out.parent / "b.st")
    rows[-1]["same greedy codes"] = bool(torch.equal(a, b))
    shutil.rmtree(out)
    for name in ("a.st", "b.st"):
        (out.parent / name).unlink()
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rss-3b", default=None, help="folder for the random float32 3B checkpoint (~16 GB)")
    ap.add_argument("--keep", action="store_true", help="keep the 3B checkpoint afterwards")
    args = ap.parse_args(argv)
    if args.rss_3b:
        folder = Path(args.rss_3b)
        index = folder / "model.safetensors.index.json"
        size = (sum(f.stat().st_size for f in folder.glob("*.safetensors")) if index.is_file()
                else write_sharded_3b(folder))
        try:
            print_table(measure_3b(folder, size), f"The random float32 3B checkpoint ({size / 1e9:.2f} GB), "
                        "python -m heartmula_core in a fresh process each")
        finally:
            if not args.keep:
                shutil.rmtree(folder)
        return
    print_table(lm_rows() + codec_rows(), f"fp8 memory plan, 240 s song, batch 1, CFG on ({RESERVE_GIB:g} GiB reserve per card)")


if __name__ == "__main__":
    main()
