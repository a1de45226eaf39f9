"""The two fp8 formats, their per-tensor scale, and how checkpoints name them.

A weight W is stored as ``q = fp8(W / s)`` with one float32 scale ``s = max|W| / fp8_max`` per
tensor, so its largest value lands on the format's largest finite number and small weights keep
their relative precision (unscaled e4m3 turns every |w| < 2**-6 into a subnormal with at most 3
significant bits; LM weights are mostly around 0.01-0.03). ``q * s`` gives the weight back.

Names used around here:
- UI / command-line names: ``fp8_e4m3fn``, ``fp8_e5m2`` (ComfyUI's UNET loader spells them so);
- safetensors dtype codes: ``F8_E4M3``, ``F8_E5M2`` (``safetensors_header.DTYPES``);
- ComfyUI's per-layer ``comfy_quant`` formats: ``float8_e4m3fn``, ``float8_e5m2``.
"""

from __future__ import annotations

import json

import torch

from ..errors import CheckpointError, SettingsError
from ..settings import WEIGHT_DTYPE_CHOICES

E4M3 = torch.float8_e4m3fn
E5M2 = torch.float8_e5m2
FP8_DTYPES = (E4M3, E5M2)

FP8_BY_NAME = {"fp8_e4m3fn": E4M3, "fp8_e5m2": E5M2}  # the weight_dtype choices that are fp8

COMFY_FORMATS = {E4M3: "float8_e4m3fn", E5M2: "float8_e5m2"}

ROWS_PER_CHUNK_BYTES = 64 << 20  # float32 bytes converted at a time: bounds the temporaries


def parse_weight_dtype(name: str) -> torch.dtype | None:
    """``default`` -> None (weights stay in the compute dtype), else the fp8 dtype."""
    if name == "default":
        return None
    if name not in FP8_BY_NAME:
        raise SettingsError(f"weight_dtype must be one of {', '.join(WEIGHT_DTYPE_CHOICES)}, got {name!r}.")
    return FP8_BY_NAME[name]


def is_fp8(dtype: torch.dtype) -> bool:
    return dtype in FP8_DTYPES


def fp8_max(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).max)


def scale_for(amax: float, dtype: torch.dtype) -> torch.Tensor:
    """The per-tensor scale (float32 scalar) for a tensor whose largest magnitude is ``amax``."""
    if not amax > 0:  # all zeros (NaN is refused by the caller)
        return torch.ones((), dtype=torch.float32)
    return torch.tensor(amax / fp8_max(dtype), dtype=torch.float32)


def abs_max(t: torch.Tensor, what: str) -> float:
    """max |t| as a Python float (two reductions, no temporary copy); a CheckpointError naming
    ``what`` if ``t`` holds NaN or infinity."""
    if t.numel() == 0:
        return 0.0
    value = max(float(t.amax()), -float(t.amin()))
    if value != value or value == float("inf"):
        raise CheckpointError(f"{what} holds NaN or infinite values: the file is corrupt. Re-download it.")
    return value


def quantize_into(out: torch.Tensor, values: torch.Tensor, scale: torch.Tensor,
                  scratch: torch.Tensor | None = None) -> None:
    """Write ``fp8(float32(values) / scale)`` (saturated to the format's range) into ``out``. With
    ``scratch`` (float32, at least as large; may be ``values`` itself) nothing is allocated."""
    limit = fp8_max(out.dtype)
    if scratch is None:
        tmp = values.float() / scale
    else:
        tmp = scratch.view(-1)[: values.numel()].view(values.shape)
        if tmp.data_ptr() != values.data_ptr():
            tmp.copy_(values)
        tmp.div_(scale)
    out.copy_(tmp.clamp_(-limit, limit))


def row_chunks(rows: int, row_elements: int) -> list[tuple[int, int]]:
    """[start, end) row ranges of at most ROWS_PER_CHUNK_BYTES float32 bytes each."""
    step = max(1, ROWS_PER_CHUNK_BYTES // max(1, 4 * row_elements))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)] or [(0, 0)]


def quantize(t: torch.Tensor, dtype: torch.dtype, what: str = "tensor") -> tuple[torch.Tensor, torch.Tensor]:
    """(fp8 tensor, float32 scale) of a floating-point tensor, converted a slab of rows at a time."""
    scale = scale_for(abs_max(t, what), dtype)
    out = torch.empty(t.shape, dtype=dtype, device=t.device)
    if t.dim() == 0:
        quantize_into(out, t, scale)
        return out, scale
    flat_in, flat_out = t.reshape(t.shape[0], -1), out.view(t.shape[0], -1)
    for a, b in row_chunks(flat_in.shape[0], flat_in.shape[1]):
        quantize_into(flat_out[a:b], flat_in[a:b], scale)
    return out, scale


def dequantize(q: torch.Tensor, scale: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """``q * scale`` in ``dtype``, a slab of rows at a time (no float32 copy of the whole tensor)."""
    out = torch.empty(q.shape, dtype=dtype, device=q.device)
    s = None if scale is None else scale.float().to(q.device)
    if q.dim() == 0:
        return (q.float() * s if s is not None else q.float()).to(dtype)
    flat_in, flat_out = q.reshape(q.shape[0], -1), out.view(q.shape[0], -1)
    for a, b in row_chunks(flat_in.shape[0], flat_in.shape[1]):
        part = flat_in[a:b].float()
        flat_out[a:b] = part * s if s is not None else part
    return out


# (left shift, mask clearing the copies of the sign that sign extension put in the exponent, the power
# of two the float16 is off by) per format
_TO_FLOAT16 = {E4M3: (7, -0x4001, 256.0), E5M2: (8, -1, 1.0)}


def fp8_to(q: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    """An fp8 tensor in ``dtype`` as ``(w, factor)`` with ``q == w * factor`` exactly.

    On the CPU torch converts fp8 one element at a time (~6 ns each: 25 ms for a 2048 x 2048
    weight, 30x the matmul). Moving the bits is exact and ~20x faster: the byte is sign-extended to
    int16 and shifted so that fp8's exponent and mantissa land on a float16's (e5m2 is a float16's
    high byte; e4m3's exponent bias is 8 less, so the float16 holds the value / 256, subnormals
    included) and the sign on the sign bit; the mask clears the sign's other copies. The float16 is
    then cast to ``dtype`` (fast to float32; the caller folds the factor into its per-tensor scale).
    Elsewhere (CUDA casts are fast) the plain cast is used. Never called on NaN or infinite codes
    (which it would read as finite numbers, e4m3fn's NaN as 480): the quantizer saturates, so it
    never writes one, and loading refuses files that hold one (finite.py).
    """
    if q.device.type != "cpu" or q.dtype not in FP8_DTYPES:
        return q.to(dtype), 1.0
    shift, mask, factor = _TO_FLOAT16[q.dtype]
    bits = q.view(torch.int8).to(torch.int16)
    bits <<= shift
    if mask != -1:
        bits &= mask
    return bits.view(torch.float16).to(dtype), factor


def comfy_quant_tensor(dtype: torch.dtype) -> torch.Tensor:
    """ComfyUI's per-layer marker: the JSON ``{"format": ...}`` as a uint8 tensor."""
    return torch.tensor(list(json.dumps({"format": COMFY_FORMATS[dtype]}).encode("utf-8")), dtype=torch.uint8)


def read_comfy_quant(t: torch.Tensor, key: str, stored: torch.dtype) -> None:
    """Check a ``comfy_quant`` marker read from a file against the dtype the weight is stored in."""
    try:
        conf = json.loads(bytes(t.to(torch.uint8).flatten().tolist()).decode("utf-8"))
        fmt = conf.get("format")
    except (ValueError, AttributeError, UnicodeDecodeError):
        raise CheckpointError(f"{key} is not a JSON quantization marker; the file is corrupt.") from None
    if fmt not in COMFY_FORMATS.values():
        raise CheckpointError(f"{key} names the quantization format {fmt!r}; the pack loads only "
                              f"{', '.join(COMFY_FORMATS.values())}. Use an fp8 or a float32/bf16 checkpoint.")
    if COMFY_FORMATS.get(stored) != fmt:
        raise CheckpointError(f"{key} says {fmt} but the weight is stored as {str(stored).replace('torch.', '')}; "
                              "the file is inconsistent. Re-create it.")
