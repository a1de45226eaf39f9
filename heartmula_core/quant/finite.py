"""Refuse weights that would not be finite numbers once loaded, at the cost of a reduction or two.

A corrupt fp8 file can hold codes that mean NaN or infinity (e4m3fn: 0x7F and 0xFF; e5m2: 0x7C to
0x7F and 0xFC to 0xFF), or a finite but huge scale whose product with the codes overflows. Loaded as
they were, both made whole songs of token 0, and on the CPU the fast fp8 cast (``formats.fp8_to``,
which moves bits and never meets a NaN in files the pack writes) read e4m3fn's NaN as 480: another
model. So what is checked is what a weight becomes:

- fp8 codes: both formats are sign + magnitude, so the magnitudes of codes with the sign bit clear
  are ordered as their int8 values, and those of codes with it set as their uint8 values. Two byte
  reductions (no temporary copy) give the largest magnitude code; a NaN or infinity code is the
  largest there is.
- that code times the tensor's scale must fit the dtype the weight is used in.
- float tensors (bf16 / fp32 files, weight-norm folds): one ``aminmax`` pass, which NaN poisons.
"""

from __future__ import annotations

import torch

from ..errors import CheckpointError
from . import formats

FIRST_NON_FINITE = {formats.E4M3: 0x7F, formats.E5M2: 0x7C}  # magnitude codes from here on: NaN / inf


def largest_code(q: torch.Tensor) -> int:
    """The largest magnitude code (0 .. 0x7F) of an fp8 tensor."""
    if q.numel() == 0:
        return 0
    positive = int(q.view(torch.int8).amax())  # the largest code with the sign bit clear, if any
    negative = int(q.view(torch.uint8).amax())  # the largest code with it set, if any (>= 0x80)
    return max(positive, negative - 0x80 if negative >= 0x80 else 0)


def code_value(code: int, dtype: torch.dtype) -> float:
    """The number magnitude ``code`` stands for in fp8 ``dtype``."""
    return float(torch.tensor(code, dtype=torch.uint8).view(dtype).float())


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_fits(largest: float, what: str, used_as: torch.dtype, how: str) -> None:
    """The largest magnitude of a weight (``how`` it came about, for the message) fits ``used_as``."""
    limit = torch.finfo(used_as).max
    if not largest <= limit:
        raise CheckpointError(f"{what}: its largest weight ({how}) is beyond what {_name(used_as)} holds "
                              f"({limit:g}). The file is corrupt (re-download or re-create it), or load it in a "
                              "wider dtype.")


def check_fp8(q: torch.Tensor, scale: torch.Tensor | None, what: str, used_as: torch.dtype) -> None:
    """``q * scale`` holds only finite numbers that ``used_as`` (the dtype the weight is cast to) can
    hold; else one CheckpointError naming ``what``."""
    code = largest_code(q)
    if code >= FIRST_NON_FINITE[q.dtype]:
        raise CheckpointError(f"{what} holds fp8 codes that stand for NaN or infinity, which no weight is. "
                              "The file is corrupt: re-download or re-create it.")
    s = 1.0 if scale is None else float(scale)
    check_fits(code_value(code, q.dtype) * s, what, used_as, f"{code_value(code, q.dtype):g} x scale {s:g}")


def check_float(t: torch.Tensor, what: str, stored: torch.dtype | None = None) -> None:
    """A float tensor holds no NaN or infinity (one pass over it); ``stored``: the file's dtype, when
    ``t`` was converted from it (a narrower dtype may overflow)."""
    if not t.is_floating_point() or t.numel() == 0 or formats.is_fp8(t.dtype):
        return
    low, high = torch.aminmax(t.reshape(-1))
    if not (torch.isfinite(low) and torch.isfinite(high)):
        narrowed = stored is not None and stored != t.dtype
        raise CheckpointError(
            f"{what} holds NaN or infinite values" + (f" once converted from {_name(stored)} to {_name(t.dtype)}"
                                                      if narrowed else "")
            + ": the file is corrupt. Re-download it" + (", or load it in a wider dtype." if narrowed else "."))
