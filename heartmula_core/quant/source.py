"""Reading any checkpoint as the tensors a ``WeightPlan`` wants (``QuantizingSource``), and the
arguments of ``weights.load_into`` that do it (``prepare``).

A float32, bf16 or fp8 checkpoint (with or without scales, in ComfyUI's current or 0.3.64-era
naming) becomes exactly the fp8 weights, scales and markers the model's layers take, one tensor at
a time, so loading a float32 checkpoint as fp8 peaks near the fp8 size.
"""

from __future__ import annotations

from typing import Callable, Mapping, Protocol

import torch

from ..errors import CheckpointError
from ..weights import TensorSource
from . import formats
from .finite import Largest, check_fits, check_float, check_fp8
from .storage import WeightPlan, marker_key, scale_key
from .reading import Arena, convert_entry

FILE_SCALE_SUFFIXES = ("weight_scale", "scale_weight")  # ComfyUI's name, then its 0.3.64-era name
OLD_MARKERS = ("scaled_fp8",)  # 0.3.64-era whole-model marker tensor
OLD_INPUT_SCALE = "scale_input"  # 0.3.64-era activation scale (weight-only here: dropped when 1)

class WeightUpdates(Protocol):
    """Changes added to some weights while they load (LoRAs: lora/merge.py ``Updates``)."""

    keys: frozenset  # the model keys changed

    def __call__(self, key: str, weight: torch.Tensor, held: torch.dtype) -> None:
        """Add the change of ``key`` to ``weight`` (float32) in place; the sum must fit ``held``, the
        dtype it will be held in (an fp8 one: float32, a fresh scale is taken)."""


class QuantizingSource(TensorSource):
    """A TensorSource in the model's key space with fp8 weights the way ``plan`` wants them.

    Reads checkpoints whose weights are float (converted here), or fp8 with or without
    ``weight_scale`` / ``scale_weight`` / ``comfy_quant`` (passed through, dequantized, or
    re-quantized to the other fp8 format). File-side scale and marker keys are consumed; the keys
    the host layers want are synthesized. Every weight is checked to be a finite number in the
    dtype it is used in (``used_as(key)``: the compute dtype; float32 by default), see finite.py.
    ``updates`` (LoRAs) are added to their weights in float32 before any rounding to the dtype or
    fp8 format the weight is held in, so a weight is rounded once, after the sum.
    """

    def __init__(self, base: TensorSource, plan: WeightPlan,
                 used_as: Callable[[str], torch.dtype | None] = lambda _key: None,
                 updates: WeightUpdates | None = None):
        super().__init__(base.entries, base.description)
        self.base, self.plan, self.used_as, self.updates = base, plan, used_as, updates
        self.updated = updates.keys if updates is not None else frozenset()
        self.file_scale: dict[str, str] = {}  # fp8 weight key -> its scale key in the file
        self.file_marker: dict[str, str] = {}
        consumed = self._read_file_layout()
        present = [k for k in base.keys() if k not in consumed]
        self._synth = {x: k for k in present for x in plan.extra_keys(k)}
        self._keys = present + list(self._synth)
        self._scales: dict[str, torch.Tensor] = {}  # scales computed with their weight, handed out next
        self._arena: Arena | None = None  # slabs for converting from files, made on first use

    def _read_file_layout(self) -> set[str]:
        names, consumed = set(self.base.keys()), set()
        for key in names:
            if not formats.is_fp8(self.base.dtype(key)):
                continue
            for suffix in FILE_SCALE_SUFFIXES:
                s = scale_key(key, suffix)
                if s in names:
                    if self.base.shape(s) not in ((), (1,)):
                        raise CheckpointError(f"{self.description}: {s} has shape {list(self.base.shape(s))}; only one "
                                              "scale per tensor is supported. Use a per-tensor fp8 checkpoint.")
                    self.file_scale[key] = s
                    consumed.add(s)
                    break
            m = marker_key(key)
            if m and m in names:
                self.file_marker[key] = m
                consumed.add(m)
            if key.endswith(".weight") and key[: -len("weight")] + OLD_INPUT_SCALE in names:
                consumed.add(key[: -len("weight")] + OLD_INPUT_SCALE)
        consumed.update(k for k in OLD_MARKERS if k in names)
        return consumed

    def keys(self) -> list[str]:
        return list(self._keys)

    def shape(self, key: str) -> tuple[int, ...]:
        if key in self._synth:
            return self.plan.extra_keys(self._synth[key])[key]
        return self.base.shape(key)

    def dtype(self, key: str) -> torch.dtype:
        if key in self._synth:
            return torch.float32 if key == self.plan.scale_key(self._synth[key]) else torch.uint8
        stored = self.base.dtype(key)
        if not stored.is_floating_point:
            return stored  # integers stay visible, so the key check can name them
        return self.plan.fp8 if key in self.plan.keys else (torch.float32 if formats.is_fp8(stored) else stored)

    def load(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        if key in self._synth:
            return self._load_extra(key)
        if key in self.plan.keys:
            q, scale = self._fp8_pair(key)
            if key in self.plan.scaled:
                self._scales[key] = scale
            return q
        if key in self.plan.rounded:
            return formats.dequantize(*self._fp8_pair(key), dtype or torch.float32)
        if key in self.plan.scaled:  # a Linear kept wide whose host layer has a scale anyway
            self._scales[key] = torch.ones((), dtype=torch.float32)
        if key in self.updated:
            held = dtype or self.dtype(key)
            return self._updated(key, held).to(held)
        if formats.is_fp8(self.base.dtype(key)):  # an fp8 file, read by a plan that keeps this key wider
            q, scale = self._file_fp8(key, dtype)
            return formats.dequantize(q, scale, dtype or torch.float32)
        seen = Largest()
        loaded = self.base.load(key, dtype, inspect=seen)
        check_float(loaded, f"{self.description}: tensor {key}", seen)
        return loaded

    def _load_extra(self, key: str) -> torch.Tensor:
        weight = self._synth[key]
        if key != self.plan.scale_key(weight):
            return formats.comfy_quant_tensor(self.plan.fp8)
        if weight not in self._scales:  # the scale asked for before its weight: convert the weight now
            self.load(weight)
        return self._scales.pop(weight)

    def _file_fp8(self, key: str, wide: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A weight as the file stores it in fp8, and its scale (None: unscaled), both checked;
        ``wide``: the dtype it is dequantized to (default: the dtype it is used in)."""
        seen = Largest()
        q = self.base.load(key, inspect=seen)
        if key in self.file_marker:
            formats.read_comfy_quant(self.base.load(self.file_marker[key]), self.file_marker[key], q.dtype)
        scale = self.base.load(self.file_scale[key], torch.float32).reshape(()) if key in self.file_scale else None
        if scale is not None and not (bool(torch.isfinite(scale)) and float(scale) > 0):
            raise CheckpointError(f"{self.description}: tensor {self.file_scale[key]} is {float(scale)}; a weight "
                                  "scale must be a positive finite number. The file is corrupt; re-create it.")
        check_fp8(q, scale, f"{self.description}: tensor {key}", wide or self.used_as(key) or torch.float32, seen)
        return q, scale

    def _fp8_pair(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(fp8 weight in the plan's format, float32 scale) for ``key``; unscaled files get scale 1."""
        what = f"{self.description}: tensor {key}"
        if key in self.updated or not formats.is_fp8(self.base.dtype(key)):
            q, scale = self._convert(key, what)
            check_fits(float(scale) * formats.fp8_max(q.dtype), what, self.used_as(key) or torch.float32,
                       f"{float(scale) * formats.fp8_max(q.dtype):g}")
            return q, scale
        q, scale = self._file_fp8(key)
        if q.dtype == self.plan.fp8:
            return q, scale if scale is not None else torch.ones((), dtype=torch.float32)
        return formats.quantize(formats.dequantize(q, scale, torch.float32), self.plan.fp8, what)

    def _convert(self, key: str, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A float weight of the file (or one with updates) converted to the plan's fp8 (NaN and
        infinity refused)."""
        if key in self.updated:
            return formats.quantize(self._updated(key, self.plan.fp8), self.plan.fp8, what)
        entry = self.base.entries.get(key)
        if entry is not None and getattr(self.base, "folded", {}).get(key) is None:
            self._arena = self._arena or Arena()
            return convert_entry(entry, self.plan.fp8, what, self._arena)  # from the file, a slab at a time
        return formats.quantize(self.base.load(key), self.plan.fp8, what)

    def _updated(self, key: str, held: torch.dtype) -> torch.Tensor:
        """``key``'s weight in float32 (an fp8 file's dequantized with its scale), checked, with its
        ``updates`` added (which check their sum): what is then rounded once to the dtype it is held in."""
        what = f"{self.description}: tensor {key}"
        if formats.is_fp8(self.base.dtype(key)):
            wide = formats.dequantize(*self._file_fp8(key, torch.float32), torch.float32)
        else:
            seen = Largest()
            wide = self.base.load(key, torch.float32, inspect=seen)
            check_float(wide, what, seen)
        self.updates(key, wide, held)
        return wide


def prepare(source: TensorSource, dtype_for: Callable[[str], torch.dtype | None],
            expected: Mapping[str, tuple[int, ...]], plan: WeightPlan, updates: WeightUpdates | None = None) -> dict:
    """``source``, ``dtype_for`` and ``expected`` for ``weights.load_into(model, **prepare(...))``,
    so that the model gets ``plan``'s fp8 weights and the scale/marker keys its host layers want,
    from any float or fp8 checkpoint. With ``plan.fp8`` None it still reads fp8 files (dequantized
    to ``dtype_for``'s dtype, scales applied); ``updates`` are added to their weights as they load."""
    wrapped = QuantizingSource(source, plan, dtype_for, updates)
    full: dict[str, tuple[int, ...]] = {}
    for key, shape in expected.items():
        full[key] = shape
        full.update(plan.extra_keys(key))
    scales = {plan.scale_key(k) for k in plan.scaled}
    markers = {marker_key(k) for k in plan.keys if plan.layout.comfy_quant}

    def quant_dtype_for(key: str) -> torch.dtype | None:
        if key in plan.keys:
            return plan.fp8
        if key in scales:
            return torch.float32
        if key in markers:
            return None
        return dtype_for(key)

    return {"source": wrapped, "dtype_for": quant_dtype_for, "expected": full}
