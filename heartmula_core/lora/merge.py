"""Adding LoRAs to the LM's weights: while they load (``Updates``, the command line's and the batch
runner's way: each changed weight is read in float32, the updates added, and only then rounded to
its dtype or fp8 format, once), or into a model already loaded (``merge_adapters``: each weight is
widened to float32, updated and stored back in its own dtype, an fp8 weight quantized again with a
fresh scale, so a LoRA that enlarges a weight does not saturate it). Inside ComfyUI the patcher does
the same sums on its own schedule, on weights already in their dtype. At no time is there more than
one layer's float32 copy beside the model. The sums are ComfyUI's (comfy/lora.py):
``w += (strength x alpha / rank) x (up @ down)`` in float32 for a LoRA layer,
``w += strength x (saved - base)`` for a module the LoRA replaces, so a node and the command line
give the same weights.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from ..errors import LoraError
from ..quant import formats
from ..quant.finite import largest_magnitude
from .fit import Adapter

Strengths = Sequence[tuple[Adapter, float]]


def widened(owner: nn.Module, name: str) -> torch.Tensor:
    """A float32 copy of ``owner.<name>`` (an fp8 weight times its ``<name>_scale``)."""
    tensor = getattr(owner, name)
    if not formats.is_fp8(tensor.dtype):
        return tensor.detach().to(torch.float32, copy=True)
    wide, factor = formats.fp8_to(tensor.detach(), torch.float32)  # bit moves on the CPU: 3x torch's cast
    scale = getattr(owner, f"{name}_scale", None)
    return wide.mul_((scale.to(wide.device, torch.float32) if scale is not None else 1.0) * factor)


def store(owner: nn.Module, name: str, value: torch.Tensor, what: str) -> None:
    """Write float32 ``value`` back into ``owner.<name>`` in its dtype (fp8: a new per-tensor scale)."""
    tensor = getattr(owner, name)
    if not formats.is_fp8(tensor.dtype):
        tensor.data.copy_(value)
        return
    scale = getattr(owner, f"{name}_scale", None)
    if scale is None:  # an unscaled fp8 layer keeps scale 1 (saturating)
        formats.quantize_into(tensor.data, value, torch.ones((), device=value.device))
        return
    q, new_scale = formats.quantize(value, tensor.dtype, what)
    tensor.data.copy_(q)
    scale.data.copy_(new_scale.to(scale.device))


def add_update(weight: torch.Tensor, adapter: Adapter, key: str, strength: float) -> None:
    """``weight`` (float32) += ``adapter``'s update of ``key`` at ``strength``, as ComfyUI sums it."""
    if key in adapter.low_rank:
        f = adapter.low_rank[key]
        diff = torch.mm(f.up.to(weight.device, torch.float32), f.down.to(weight.device, torch.float32))
        weight += diff.mul_(strength * (f.alpha / f.rank))  # in place: no third layer-sized tensor
    if key in adapter.diff:
        weight += strength * adapter.diff[key].to(weight.device, weight.dtype)


def check_merged(weight: torch.Tensor, held: torch.dtype, key: str, adapters: list[Adapter]) -> None:
    """The merged float32 ``weight`` is finite and fits ``held``, the dtype it will be held in (an fp8
    layer takes a fresh scale, so float32's range): a LoRA with huge values, alpha or strength would
    otherwise make NaN songs."""
    held = torch.float32 if formats.is_fp8(held) else held
    largest = largest_magnitude(weight)
    if not largest <= torch.finfo(held).max:  # NaN fails too
        files = ", ".join(str(adapter.path) for adapter in adapters)
        raise LoraError(f"LoRA {files} makes {key} {largest:g} at its largest, beyond what "
                        f"{str(held).replace('torch.', '')} holds: its values, alpha or strength are far too large. "
                        "Lower the strength, or use another LoRA.")


class Updates:
    """What several (adapter, strength) add to the weights they change, for adding while the LM
    loads (``load_lm(updates=)``; ``quant.source.QuantizingSource`` calls it with each changed
    weight in float32, before rounding it to the dtype or fp8 format it is held in). Strength 0
    adds nothing; several adapters on one weight are summed in the order given, and the sum must
    fit the dtype the weight is held in (``check_merged``)."""

    def __init__(self, adapters: Strengths):
        self.active = [(adapter, float(strength)) for adapter, strength in adapters if strength != 0]
        self.keys = frozenset(key for adapter, _ in self.active for key in adapter.keys)

    def __call__(self, key: str, weight: torch.Tensor, held: torch.dtype = torch.float32) -> None:
        for adapter, strength in self.active:
            add_update(weight, adapter, key, strength)
        check_merged(weight, held, key, [adapter for adapter, _ in self.active if key in adapter.keys])


def merge_adapters(model: nn.Module, adapters: Strengths) -> None:
    """Add each (adapter, strength) into ``model``'s loaded weights, one layer at a time (a weight
    already rounded to its dtype is rounded again after the sum: merging while loading, with
    ``Updates``, rounds once). Strength 0 adds nothing; several adapters on one layer are summed in
    float32 and rounded once."""
    updates = Updates(adapters)
    with torch.no_grad():
        for key in sorted(updates.keys):
            owner_name, _, name = key.rpartition(".")
            owner = model.get_submodule(owner_name)
            weight = widened(owner, name)
            updates(key, weight, getattr(owner, name).dtype)
            store(owner, name, weight, f"{key} after merging LoRAs")
            del weight


def merge_bytes(adapters: Strengths, shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Memory a merge needs beyond the model and the LoRAs: the largest layer widened to float32 and
    one update of its size (4 + 4 bytes per weight), plus a byte for an fp8 layer's new codes
    (benchmarks/bench_lora.py measures the peak at this estimate)."""
    keys = {key for adapter, strength in adapters if strength != 0 for key in adapter.keys}
    return max((9 * math.prod(shapes[k]) for k in keys), default=0)
