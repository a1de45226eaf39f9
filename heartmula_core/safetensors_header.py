"""Where each tensor of a safetensors file lies, after the safetensors library has vetted the header.

A header is untrusted input: offsets may be negative, overlap, leave gaps or point past the end;
sizes may not match dtype x shape; the JSON may be a list, miss fields or nest 100 000 deep. Instead
of a set of rules of our own, the file is first opened with ``safetensors.safe_open``, which parses
and validates the header by the format's own rules (offsets contiguous from 0 to the end of the file,
byte size = elements x dtype size, header at most 100 MB, JSON nesting limited) and maps no data. Only
then is the (now known-good) header read here, for the byte ranges ``weights.TensorSource`` reads
one tensor at a time. What the library cannot see, we check: the path must be a regular file (a
FIFO would block every reader forever) and the dtype one torch can hold.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .errors import CheckpointError

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,  # fp8 weights (heartmula_core/quant, ComfyUI's fp8 checkpoints)
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class TensorEntry:
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int


def _require_regular_file(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror}). Re-download it.") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(
            f"{path} is not a regular file (a pipe, device or folder is never read as weights). "
            "Replace it with the downloaded file."
        )


def _validate(path: Path) -> None:
    try:
        with safe_open(str(path), framework="pt"):
            pass
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}): it is corrupt, incomplete or not the "
            "checkpoint's file. Re-download it."
        ) from None


def read_entries(path: Path) -> dict[str, TensorEntry]:
    """Name -> TensorEntry for every tensor of one safetensors file; one CheckpointError if the file
    is not a regular file, is not valid safetensors, or holds a dtype torch has no type for."""
    path = Path(path)
    _require_regular_file(path)
    _validate(path)
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    base = 8 + header_len
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise CheckpointError(f"{path}: tensor {name} has dtype {info['dtype']}, which the pack does not load.")
        begin, end = info["data_offsets"]
        entries[name] = TensorEntry(path, DTYPES[info["dtype"]], tuple(info["shape"]), base + begin, base + end)
    return entries
