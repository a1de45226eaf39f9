"""Write an fp8 checkpoint folder (``write_checkpoint``; ``python -m heartmula_core quantize`` picks the
model's files and plan, see cli/quantize.py).

The output has the input's layout (one model.safetensors, or the same shards + index) with the
weights ``plan`` picks in fp8, each with ``<layer>.weight_scale`` (float32) and
``<layer>.comfy_quant`` (ComfyUI's marker; a bare matrix such as ``audio_head`` gets
``audio_head_scale`` only); every other tensor is copied byte for byte. config.json (and, for an
LM, tokenizer.json and gen_config.json) go beside it. Tensors are converted and written one at a
time at their final offsets (the header is laid out first), so memory stays near one fp8 tensor;
all files appear together or not at all (``atomic.atomic_write_all``).
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..atomic import atomic_write_all, check_free_space, output_target
from ..errors import CheckpointError, OutputError
from ..leftovers import remove_leftovers
from ..safetensors_header import DTYPES, TensorEntry, read_entries
from ..weights import TensorSource
from . import formats
from .finite import check_float, check_fp8
from .storage import CHECKPOINT, WeightPlan
from .source import OLD_INPUT_SCALE, OLD_MARKERS, QuantizingSource

CODES = {dtype: code for code, dtype in DTYPES.items()}
COPY_BYTES = 64 << 20


@dataclass
class _Out:
    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int = 0

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * torch.empty((), dtype=self.dtype).element_size()


def _layout(entries: dict[str, TensorEntry], plan: WeightPlan, source: QuantizingSource) -> list[_Out]:
    """The tensors of one output shard, in file order (widest items first keeps every tensor aligned)."""
    dropped = set(OLD_MARKERS)
    for key in plan.keys:
        dropped.update(k for k in (source.file_scale.get(key), source.file_marker.get(key)) if k)
        if key.endswith(".weight"):
            dropped.add(key[: -len("weight")] + OLD_INPUT_SCALE)
    outs = []
    for name, entry in entries.items():
        if name in dropped:
            continue
        if name in plan.keys:
            outs.append(_Out(name, plan.fp8, entry.shape))
            outs += [_Out(k, source.dtype(k), shape) for k, shape in plan.extra_keys(name).items()]
        else:
            outs.append(_Out(name, entry.dtype, entry.shape))
    outs.sort(key=lambda o: (-torch.empty((), dtype=o.dtype).element_size(), o.name))
    offset = 0
    for o in outs:
        o.offset, offset = offset, offset + o.nbytes
    return outs


def _header(outs: list[_Out]) -> bytes:
    header = {"__metadata__": {"format": "pt"}}
    for o in outs:
        header[o.name] = {"dtype": CODES[o.dtype], "shape": list(o.shape), "data_offsets": [o.offset, o.offset + o.nbytes]}
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    return struct.pack("<Q", len(blob)) + blob


def _copy_raw(src: TensorEntry, f, name: str) -> None:
    """Copy a tensor byte for byte, checking float data for NaN / infinity on the way (finite.py)."""
    buffer = torch.empty(min(COPY_BYTES, src.end - src.start), dtype=torch.uint8)
    with open(src.file, "rb") as inp:
        inp.seek(src.start)
        left = src.end - src.start
        while left:
            chunk = buffer[: min(COPY_BYTES, left)]
            if inp.readinto(memoryview(chunk.numpy())) != len(chunk):
                raise CheckpointError(f"{src.file} ends early; the download is incomplete.")
            if src.dtype.is_floating_point:  # chunks hold whole elements: COPY_BYTES is a multiple of 8
                values = chunk.view(src.dtype)
                if formats.is_fp8(src.dtype):
                    check_fp8(values, None, f"{src.file}: tensor {name}", torch.float32)
                else:
                    check_float(values, f"{src.file}: tensor {name}")
            f.write(memoryview(chunk.numpy()))
            left -= len(chunk)


def _shard_writer(entries: dict[str, TensorEntry], outs: list[_Out], plan: WeightPlan,
                  source: QuantizingSource) -> Callable[[str], None]:
    def write(path: str) -> None:
        head = _header(outs)
        by_name = {o.name: o for o in outs}
        with open(path, "wb") as f:
            f.write(head)
            base = len(head)
            for o in outs:
                if o.name in plan.keys:  # converts the weight; its scale and marker are written with it
                    for key in [o.name, *plan.extra_keys(o.name)]:
                        t = source.load(key).contiguous()
                        f.seek(base + by_name[key].offset)
                        f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
                elif o.name in entries:
                    f.seek(base + o.offset)
                    _copy_raw(entries[o.name], f, o.name)
            f.truncate(base + sum(o.nbytes for o in outs))
    return write


def _check_out(out: Path, folder: Path) -> None:
    """A new or empty folder; what a killed earlier run left there (its temporary files) is removed."""
    if out.is_dir():
        remove_leftovers(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"--out {out} exists and is not an empty folder; give a new folder for the fp8 checkpoint.")
    if out.resolve() == folder.resolve():
        raise OutputError(f"--out {out} is the input folder; give a new folder for the fp8 checkpoint.")


def write_checkpoint(folder: Path, files: list[Path], plan: WeightPlan, beside: list[Path],
                     out: str | Path, kind: str) -> dict:
    """Write the checkpoint in ``files`` (the weight files of ``folder``: one model.safetensors or
    shards) to the new folder ``out`` with ``plan``'s weights in fp8 (a ``CHECKPOINT`` plan),
    ``beside`` copied next to them. Returns a summary: kind, input and output bytes, tensors converted."""
    if plan.fp8 is None or plan.layout is not CHECKPOINT:
        raise ValueError("write_checkpoint needs an fp8 plan in the CHECKPOINT layout")
    out = Path(out).expanduser()
    _check_out(out, folder)
    shards = [read_entries(f) for f in files]
    named = files[0] if len(files) == 1 else folder  # what messages about a tensor name
    source = QuantizingSource(TensorSource({k: e for s in shards for k, e in s.items()}, str(named)), plan)
    layouts = [_layout(entries, plan, source) for entries in shards]
    items = [(output_target(out / f.name, "fp8 checkpoint"), ".safetensors", _shard_writer(e, o, plan, source))
             for f, e, o in zip(files, shards, layouts)]
    sizes = [len(_header(o)) + sum(x.nbytes for x in o) for o in layouts]
    check_free_space(items[0][0], sum(sizes))
    if len(files) > 1 or files[0].name != "model.safetensors":
        index = {"metadata": {"total_size": sum(sum(x.nbytes for x in o) for o in layouts)},
                 "weight_map": {x.name: f.name for f, o in zip(files, layouts) for x in o}}
        text = json.dumps(index, indent=2)
        items.append((out / "model.safetensors.index.json", ".json", lambda p, t=text: Path(p).write_text(t, "utf-8")))
    items += [(out / p.name, p.suffix, lambda t, p=p: shutil.copyfile(p, t)) for p in beside]
    atomic_write_all(items)
    return {"kind": kind, "in_bytes": sum(f.stat().st_size for f in files), "out_bytes": sum(sizes),
            "fp8_tensors": len(plan.keys & set(source.keys()))}
