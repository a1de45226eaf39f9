"""Convert one float tensor of a safetensors file to fp8 without holding it whole.

The per-tensor scale needs the tensor's largest magnitude before the first value is converted, so
a tensor larger than one slab is read twice: once for max|w|, once to convert (the second pass
mostly hits the page cache, which is not the process's memory). Peak memory is the fp8 result plus
one slab (``formats.ROWS_PER_CHUNK_BYTES``), instead of the float32 tensor (1.6 GB for the 3B LM's
text embeddings).
"""

from __future__ import annotations

import math

import torch

from ..errors import CheckpointError
from ..safetensors_header import TensorEntry
from . import formats


class _RowReader:
    """Reads rows [a, b) of one tensor entry into a reused buffer (a view of it is returned)."""

    def __init__(self, f, entry: TensorEntry, what: str):
        self.f, self.entry, self.what = f, entry, what
        self.rows = entry.shape[0]
        self.row_elements = math.prod(entry.shape[1:])
        self.row_bytes = self.row_elements * torch.empty((), dtype=entry.dtype).element_size()
        if entry.end - entry.start != self.rows * self.row_bytes:
            raise CheckpointError(f"{self.what} has {entry.end - entry.start} bytes for shape {list(entry.shape)}; "
                                  "the file is corrupt.")
        self.buffer: torch.Tensor | None = None

    def read(self, a: int, b: int) -> torch.Tensor:
        n = b - a
        if self.buffer is None or self.buffer.shape[0] < n:
            self.buffer = torch.empty((n, self.row_elements), dtype=self.entry.dtype)
        out = self.buffer[:n]
        nbytes = n * self.row_bytes
        if nbytes:
            self.f.seek(self.entry.start + a * self.row_bytes)
            if self.f.readinto(memoryview(out.view(-1).view(torch.uint8).numpy())) != nbytes:
                raise CheckpointError(f"{self.entry.file} ends early inside {self.what}; the download is incomplete.")
        return out


def convert_entry(entry: TensorEntry, dtype: torch.dtype, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(fp8 tensor, float32 scale) of a floating-point tensor stored at ``entry``."""
    if not entry.dtype.is_floating_point:
        raise CheckpointError(f"{what} is stored as {str(entry.dtype).replace('torch.', '')}, not as floating-point "
                              "weights. Check that config.json belongs to these weights.")
    if len(entry.shape) == 0:
        with open(entry.file, "rb") as f:
            value = _RowReader(f, TensorEntry(entry.file, entry.dtype, (1,), entry.start, entry.end), what).read(0, 1)
        return formats.quantize(value.reshape(()).clone(), dtype, what)
    out = torch.empty(entry.shape, dtype=dtype)
    with open(entry.file, "rb") as f:
        reader = _RowReader(f, entry, what)
        chunks = formats.row_chunks(reader.rows, reader.row_elements)
        if len(chunks) == 1:  # small: read once
            values = reader.read(0, reader.rows)
            scale = formats.scale_for(formats.abs_max(values, what), dtype)
            formats.quantize_into(out.view(reader.rows, -1), values, scale)
            return out, scale
        amax = max(formats.abs_max(reader.read(a, b), what) for a, b in chunks)
        scale = formats.scale_for(amax, dtype)
        flat = out.view(reader.rows, -1)
        for a, b in chunks:
            formats.quantize_into(flat[a:b], reader.read(a, b), scale)
    return out, scale
