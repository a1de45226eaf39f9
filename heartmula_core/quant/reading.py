"""Convert one float tensor of a safetensors file to fp8 without holding it whole.

The per-tensor scale needs the tensor's largest magnitude before the first value is converted, so
a tensor larger than one slab is read twice: once for max|w|, once to convert (the second pass
mostly hits the page cache, which is not the process's memory). Peak memory is the fp8 result plus
one slab (``formats.ROWS_PER_CHUNK_BYTES``), instead of the float32 tensor (1.6 GB for the 3B LM's
text embeddings).

Slabs are read into one ``Arena`` reused for every tensor of a load: were each tensor's temporaries
allocated anew, the long-lived fp8 results would land between freed temporaries and the C heap
could not give the holes back (measured: 0.6 GB more resident after loading the 3B LM, varying
from run to run).
"""

from __future__ import annotations

import math

import torch

from ..errors import CheckpointError
from ..safetensors_header import TensorEntry
from . import formats


class Arena:
    """Two reusable slabs: one the file is read into, one float32 slab to divide in."""

    def __init__(self):
        self.bytes = torch.empty(2 * formats.ROWS_PER_CHUNK_BYTES, dtype=torch.uint8)

    def slab(self, index: int, count: int, dtype: torch.dtype) -> torch.Tensor | None:
        """``count`` elements of ``dtype`` in slab ``index`` (None if they do not fit)."""
        size = count * torch.empty((), dtype=dtype).element_size()
        if size > formats.ROWS_PER_CHUNK_BYTES:
            return None
        start = index * formats.ROWS_PER_CHUNK_BYTES
        return self.bytes[start:start + size].view(dtype)


class _RowReader:
    """Reads rows [a, b) of one tensor entry into the arena (or a buffer of its own)."""

    def __init__(self, f, entry: TensorEntry, what: str, arena: Arena | None):
        self.f, self.entry, self.what, self.arena = f, entry, what, arena
        self.rows = entry.shape[0]
        self.row_elements = math.prod(entry.shape[1:])
        self.row_bytes = self.row_elements * torch.empty((), dtype=entry.dtype).element_size()
        if entry.end - entry.start != self.rows * self.row_bytes:
            raise CheckpointError(f"{self.what} has {entry.end - entry.start} bytes for shape {list(entry.shape)}; "
                                  "the file is corrupt.")

    def buffer(self, n: int) -> torch.Tensor:
        slab = self.arena.slab(0, n * self.row_elements, self.entry.dtype) if self.arena else None
        flat = slab if slab is not None else torch.empty(n * self.row_elements, dtype=self.entry.dtype)
        return flat.view(n, self.row_elements)

    def scratch(self, values: torch.Tensor) -> torch.Tensor:
        """A float32 slab to divide ``values`` (just read) in: ``values`` itself for float32 files."""
        if self.entry.dtype == torch.float32:
            return values
        slab = self.arena.slab(1, values.numel(), torch.float32) if self.arena else None
        return (slab if slab is not None else torch.empty(values.numel())).view(values.shape)

    def read(self, a: int, b: int) -> torch.Tensor:
        n = b - a
        out = self.buffer(n)
        nbytes = n * self.row_bytes
        if nbytes:
            self.f.seek(self.entry.start + a * self.row_bytes)
            if self.f.readinto(memoryview(out.view(-1).view(torch.uint8).numpy())) != nbytes:
                raise CheckpointError(f"{self.entry.file} ends early inside {self.what}; the download is incomplete.")
        return out


def convert_entry(entry: TensorEntry, dtype: torch.dtype, what: str,
                  arena: Arena | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(fp8 tensor, float32 scale) of a floating-point tensor stored at ``entry``."""
    if not entry.dtype.is_floating_point:
        raise CheckpointError(f"{what} is stored as {str(entry.dtype).replace('torch.', '')}, not as floating-point "
                              "weights. Check that config.json belongs to these weights.")
    shape = entry.shape if entry.shape else (1,)
    out = torch.empty(shape, dtype=dtype)
    with open(entry.file, "rb") as f:
        reader = _RowReader(f, TensorEntry(entry.file, entry.dtype, shape, entry.start, entry.end), what, arena)
        chunks = formats.row_chunks(reader.rows, reader.row_elements)
        flat = out.view(reader.rows, -1)
        if len(chunks) == 1:  # small: read once
            values = reader.read(0, reader.rows)
            scale = formats.scale_for(formats.abs_max(values, what), dtype)
            formats.quantize_into(flat, values, scale, reader.scratch(values))
        else:
            scale = formats.scale_for(max(formats.abs_max(reader.read(a, b), what) for a, b in chunks), dtype)
            for a, b in chunks:
                values = reader.read(a, b)
                formats.quantize_into(flat[a:b], values, scale, reader.scratch(values))
    return out.view(entry.shape), scale
