"""Both models under ComfyUI's two patchers on a GPU: ModelPatcher vs CoreModelPatcher (DynamicVRAM).

    COMFYUI_DIR=<ComfyUI 0.28+> python -m benchmarks.bench_patchers [--lm-size medium|3B]
        [--codec-size medium|real] [--frames 200] [--windows 2] [--dry-run]

For each model and patcher, in a fresh process: models are built as the loader nodes build them
(``comfy.ops`` layers, weightless under DynamicVRAM, filled by ``weights.load_into`` with random
values), wrapped in a plain ``ModelPatcher`` or in ``ModelPatcherDynamic`` (what CoreModelPatcher is
when DynamicVRAM is on), loaded with ``load_models_gpu`` and run: the LM for ``--frames`` frames with
``capture=auto`` (the row says whether the CUDA graph was used), the codec for ``--windows`` windows.
Reported: LM ms/frame, codec s/window, the load time, peak VRAM as torch's allocator sees it, and
the device memory in use after the run by the device's count (DynamicVRAM's pages are allocated
outside torch's allocator, so only the device sees them).

Needs CUDA and a working comfy-aimdo, as ComfyUI's main.py sets it up; without CUDA it stops with
exit code 2. ``--dry-run`` runs the CPU parts (host set-up with weightless layers, building, loading,
wrapping, a few frames and one short window on the CPU; ModelPatcherDynamic then falls back to a
ModelPatcher, as ComfyUI does for a CPU load device) to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = ("bench_patchers measures GPU memory paging and CUDA graphs: it needs a CUDA GPU "
           "(--dry-run checks the script on a CPU)")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def set_up_host(comfyui_dir: str, dry_run: bool):
    """Import ComfyUI and switch DynamicVRAM on as its main.py does (comfy-aimdo before torch)."""
    sys.path.insert(0, comfyui_dir)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    import comfy.cli_args

    comfy.cli_args.args.cpu = dry_run
    import comfy_aimdo.control

    if not dry_run:
        comfy_aimdo.control.init()
    import torch

    if not dry_run and not torch.cuda.is_available():
        fail(NO_CUDA)
    import comfy.memory_management
    import comfy.model_management as mm
    import comfy.model_patcher

    if dry_run:
        mm.WINDOWS = True  # 0.28 builds weightless layers on Windows only
    elif not comfy_aimdo.control.init_devices(d.index for d in mm.get_all_torch_devices()):
        fail("comfy-aimdo did not start on this GPU, so DynamicVRAM is off: nothing to compare")
    # On a CPU load device ModelPatcherDynamic hands back a plain ModelPatcher, as in ComfyUI.
    comfy.model_patcher.CoreModelPatcher = comfy.model_patcher.ModelPatcherDynamic
    comfy.memory_management.aimdo_enabled = True
    return mm, comfy.model_patcher


def random_model(kind: str, size: str, dtype):
    """(model, its config) built with comfy.ops and filled through weights.load_into with random values."""
    import comfy.ops
    import torch

    from heartmula_core.weights import TensorSource, load_into, tensor_shapes

    if kind == "lm":
        from heartmula_core.lm.load import build_lm

        from .lm_sizes import SIZES

        config = SIZES[size]
        build = lambda ops=None: build_lm(config, ops)  # noqa: E731
    else:
        from heartmula_core.codec import CodecConfig, build_codec

        from .bench_codec import MEDIUM

        config = CodecConfig.from_dict(MEDIUM if size == "medium" else {})
        build = lambda ops=None: build_codec(config, ops)  # noqa: E731
    shapes = tensor_shapes(build())

    class RandomSource(TensorSource):
        def __init__(self):
            super().__init__({}, f"random {kind} {size}")
            self.generator = torch.Generator().manual_seed(0)

        def keys(self):
            return list(shapes)

        def shape(self, key):
            return shapes[key]

        def dtype(self, key):
            return torch.float32

        def load(self, key, dtype=None, inspect=None):  # made, not read: the checks measure it whole
            fan_in = max(1, int(torch.tensor(shapes[key][1:]).prod())) if len(shapes[key]) > 1 else 1
            value = torch.randn(shapes[key], generator=self.generator) / fan_in ** 0.5
            return value.to(dtype) if dtype is not None else value

    model = build(comfy.ops.disable_weight_init)
    model.built_weightless = any(getattr(m, "weight", 0) is None for m in model.modules())
    transformer_only = (lambda k: dtype if k.startswith("flow_matching.estimator.") else torch.float32)
    load_into(model, RandomSource(), (lambda k: dtype) if kind == "lm" else transformer_only, expected=shapes)
    return model, config


def wrap(mm, model_patcher, model, patcher: str, device):
    from heartmula_core.weights import module_bytes

    cls = model_patcher.ModelPatcher
    if patcher == "core":
        mm.archive_model_dtypes(model)
        cls = model_patcher.CoreModelPatcher
    return cls(model, load_device=device, offload_device=mm.unet_offload_device(), size=module_bytes(model))


def measure(args) -> dict:
    """One row: one model under one patcher, in this process."""
    mm, model_patcher = set_up_host(args.comfyui, args.dry_run)
    import torch

    if args.dry_run:
        torch.set_num_threads(1)  # a check, not a timing: stay light on a shared CPU
    kind, patcher = args.one.split(":")
    device = mm.get_torch_device()
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    size = args.lm_size if kind == "lm" else args.codec_size
    model, config = random_model(kind, size, dtype)
    wrapped = wrap(mm, model_patcher, model, patcher, device)
    row = {"model": f"{kind} {size}", "asked": patcher, "patcher": type(wrapped).__name__, "device": str(device),
           "weightless layers": model.built_weightless}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    free_before = torch.cuda.mem_get_info()[0] if device.type == "cuda" else 0
    start = time.perf_counter()
    if kind == "lm":
        row.update(run_lm(mm, wrapped, model, config, device, dtype, args.frames, sync))
    else:
        row.update(run_codec(mm, wrapped, model, config, device, args.windows, sync))
    row["total s"] = round(time.perf_counter() - start, 2)
    if device.type == "cuda":
        row["torch peak GiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        row["device in use after GiB"] = round((free_before - row.pop("_free_after")) / 2**30, 2)
    row.pop("_free_after", None)
    return row


def _free_now(device) -> int:
    import torch

    return torch.cuda.mem_get_info()[0] if device.type == "cuda" else 0


def run_lm(mm, patcher, model, config, device, dtype, frames: int, sync) -> dict:
    from heartmula_core.lm.capture import pick_runner
    from heartmula_core.lm.budget import estimate_generation_bytes
    from heartmula_core.lm.generation import generate

    from .random_lm import no_early_end, random_prompt

    prompt = random_prompt(config)
    needed = estimate_generation_bytes(config, prompt.length, frames, 1, 1.5, dtype)
    start = time.perf_counter()
    mm.load_models_gpu([patcher], memory_required=needed, force_full_load=True)
    sync()
    loaded = time.perf_counter() - start
    kw = dict(**no_early_end(config), cfg_scale=1.5, top_k=50, device=device, dtype=dtype)
    generate(model, prompt, max_frames=min(frames, 16), **kw)  # warm-up (kernels, graph capture)
    out = generate(model, prompt, max_frames=frames, **kw)
    sync()
    return {"load s": round(loaded, 2), "runner": pick_runner("auto", device, model),
            "LM ms/frame": round(out.ms_per_frame, 2), "_free_after": _free_now(device)}


def run_codec(mm, patcher, codec, config, device, windows: int, sync) -> dict:
    import torch

    from heartmula_core.codec import decode, estimate_decode_bytes
    from heartmula_core.codec.windows import HOP_FRAMES, WINDOW_FRAMES

    frames = WINDOW_FRAMES + HOP_FRAMES * (windows - 1)
    codes = torch.randint(0, config.codebook_size, (1, 8, frames), generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    mm.load_models_gpu([patcher], memory_required=estimate_decode_bytes(config, 1, codec.transformer_dtype))
    sync()
    loaded = time.perf_counter() - start
    decode(codec, codes[:, :, :13], steps=1)  # warm-up
    sync()
    start = time.perf_counter()
    decode(codec, codes, steps=10, generator=torch.Generator().manual_seed(0))
    sync()
    return {"load s": round(loaded, 2), "codec s/window": round((time.perf_counter() - start) / windows, 3),
            "_free_after": _free_now(device)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--comfyui", default=os.environ.get("COMFYUI_DIR", ""), help="ComfyUI 0.28+ checkout")
    ap.add_argument("--lm-size", default="3B", choices=["tiny", "medium", "3B"])
    ap.add_argument("--codec-size", default="real", choices=["medium", "real"])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true", help="the CPU parts only, small sizes")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.comfyui or not (Path(args.comfyui) / "comfy" / "memory_management.py").is_file():
        fail("point --comfyui (or COMFYUI_DIR) at a ComfyUI 0.28+ checkout (one with DynamicVRAM)")
    if not args.dry_run and not args.one:
        import torch

        if not torch.cuda.is_available():
            fail(NO_CUDA)
    if args.dry_run:
        args.lm_size, args.codec_size, args.frames, args.windows = "tiny", "medium", 8, 1
    if args.one:
        print("ROW " + json.dumps(measure(args)), flush=True)
        return
    rows = []
    for one in ("lm:plain", "lm:core", "codec:plain", "codec:core"):
        command = [sys.executable, "-m", "benchmarks.bench_patchers", "--one", one, "--comfyui", args.comfyui,
                   "--lm-size", args.lm_size, "--codec-size", args.codec_size, "--frames", str(args.frames),
                   "--windows", str(args.windows)] + (["--dry-run"] if args.dry_run else [])
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        found = [line[4:] for line in done.stdout.splitlines() if line.startswith("ROW ")]
        if done.returncode or not found:
            fail(f"{one} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        rows.append(json.loads(found[-1]))
    from .table import print_table

    print_table(rows, "ModelPatcher vs CoreModelPatcher" + (" (dry run on the CPU)" if args.dry_run else ""))


if __name__ == "__main__":
    main()
