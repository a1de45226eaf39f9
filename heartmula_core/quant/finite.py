"""Refuse weights that would not be finite numbers once loaded, at the cost of two reductions.

A corrupt fp8 file can hold codes that mean NaN or infinity (e4m3fn: 0x7F and 0xFF; e5m2: 0x7C to
0x7F and 0xFC to 0xFF), or a finite but huge scale whose product with the codes overflows. Loaded as
they were, both made whole songs of token 0, and on the CPU the fast fp8 cast (``formats.fp8_to``,
which moves bits and never meets a NaN in files the pack writes) read e4m3fn's NaN as 480: another
model. So what is checked is what a weight becomes:

- every float format here (fp8, bf16, fp16, fp32, fp64) is sign + magnitude, with NaN and infinity
  the largest magnitudes there are. Read as signed integers of the same width, the values with the
  sign bit clear are ordered by magnitude; read as unsigned, those with it set are. So two integer
  max reductions (no temporary copy) give the largest magnitude's bit pattern (``largest_bits``):
  non-finite exactly when it reaches ``NON_FINITE``.
- for fp8, that largest code's value times the tensor's scale must fit the dtype the weight is used in.

Loading does them while it reads (``Largest``, the ``inspect`` of ``TensorSource.load``), a slab in
the CPU cache at a time: done on the whole tensor afterwards they cost half the read again, as a
second trip through memory.

The reductions run in numpy, on one thread: torch spreads them over its thread pool, and on a
busy machine each parallel step waited for a busy core (loading took 6x as long); numpy's integer
max is vectorised and as fast as torch's on one thread.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import CheckpointError
from . import formats

NON_FINITE = {formats.E4M3: 0x7F, formats.E5M2: 0x7C, torch.float16: 0x7C00, torch.bfloat16: 0x7F80,
              torch.float32: 0x7F800000, torch.float64: 0x7FF0000000000000}  # the smallest NaN / inf magnitude
_SIGNED = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_VALUES: dict[torch.dtype, list[float]] = {}


def largest_bits(t: torch.Tensor) -> int:
    """The bit pattern of the largest magnitude in a float tensor (sign cleared; 0 when empty)."""
    if t.numel() == 0:
        return 0
    width = t.element_size()
    signed = t.detach().cpu().reshape(-1).view(_SIGNED[width]).numpy()
    positive = int(signed.max())  # the largest with the sign bit clear, if any
    negative = int(signed.view(_UNSIGNED[width]).max())  # the largest with it set, if any
    top = 1 << (8 * width - 1)
    return max(positive, negative - top if negative >= top else 0)


def largest_code(q: torch.Tensor) -> int:
    """The largest magnitude code (0 .. 0x7F) of an fp8 tensor."""
    return largest_bits(q)


def code_value(code: int, dtype: torch.dtype) -> float:
    """The number magnitude ``code`` stands for in fp8 ``dtype`` (a table, made once per format)."""
    if dtype not in _VALUES:
        _VALUES[dtype] = torch.arange(128, dtype=torch.uint8).view(dtype).float().tolist()
    return _VALUES[dtype][code]


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _as_value(bits: int, dtype: torch.dtype) -> torch.Tensor:
    """The number whose bit pattern in ``dtype`` is ``bits`` (a one-element tensor)."""
    width = torch.empty((), dtype=dtype).element_size()
    return torch.tensor([bits], dtype=torch.int64).to(_SIGNED[width]).view(dtype)


def largest_magnitude(t: torch.Tensor) -> float:
    """The largest magnitude in a float tensor (inf or nan when it holds one; 0.0 when empty)."""
    return abs(float(_as_value(largest_bits(t), t.dtype))) if t.numel() else 0.0


def check_fits(largest: float, what: str, used_as: torch.dtype, how: str) -> None:
    """The largest magnitude of a weight (``how`` it came about, for the message) fits ``used_as``."""
    limit = torch.finfo(used_as).max
    if not largest <= limit:
        raise CheckpointError(f"{what}: its largest weight ({how}) is beyond what {_name(used_as)} holds "
                              f"({limit:g}). The file is corrupt (re-download or re-create it), or load it in a "
                              "wider dtype.")


class Largest:
    """Gathers ``largest_bits`` over the slabs ``TensorSource.load`` shows it (its ``inspect``), so
    the check needs no second pass over the tensor; ``of(t)`` measures ``t`` itself when no slab was
    shown (a source that computes its tensors rather than reading them)."""

    def __init__(self):
        self.dtype: torch.dtype | None = None  # the dtype of what was seen: the file's
        self.bits = 0

    def __call__(self, slab: torch.Tensor) -> None:
        if slab.dtype in NON_FINITE:
            self.dtype, self.bits = slab.dtype, max(self.bits, largest_bits(slab))

    def of(self, t: torch.Tensor) -> "Largest":
        if self.dtype is None:
            self(t)
        return self


def check_fp8(q: torch.Tensor, scale: torch.Tensor | None, what: str, used_as: torch.dtype,
              seen: Largest | None = None) -> None:
    """``q * scale`` holds only finite numbers that ``used_as`` (the dtype the weight is cast to) can
    hold; else one CheckpointError naming ``what``. ``seen``: ``q`` measured as it was read."""
    code = (seen or Largest()).of(q).bits
    if code >= NON_FINITE[q.dtype]:
        raise CheckpointError(f"{what} holds fp8 codes that stand for NaN or infinity, which no weight is. "
                              "The file is corrupt: re-download or re-create it.")
    s = 1.0 if scale is None else float(scale)
    check_fits(code_value(code, q.dtype) * s, what, used_as, f"{code_value(code, q.dtype):g} x scale {s:g}")


def check_float(t: torch.Tensor, what: str, seen: Largest | None = None) -> None:
    """A float tensor holds no NaN or infinity; ``seen``: what it was converted from, measured as the
    file was read (converting to a narrower dtype may overflow)."""
    if t.dtype not in NON_FINITE or formats.is_fp8(t.dtype):
        return
    seen = (seen or Largest()).of(t)
    if seen.dtype is None:
        return
    stored = seen.dtype
    if seen.bits >= NON_FINITE[stored]:
        raise CheckpointError(f"{what} holds NaN or infinite values: the file is corrupt. Re-download it.")
    largest = _as_value(seen.bits, stored)
    if stored != t.dtype and not bool(torch.isfinite(largest.to(t.dtype))):
        raise CheckpointError(f"{what} holds NaN or infinite values once converted from {_name(stored)} to "
                              f"{_name(t.dtype)}: its largest value ({float(largest):g}) is beyond what "
                              f"{_name(t.dtype)} holds. Re-download the file if it should not hold such values, "
                              "or load it in a wider dtype.")
