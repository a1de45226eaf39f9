"""How a loader node holds weights inside ComfyUI (``weight_storage``): the host's own layers, fp8
ones for an fp8 ``weight_dtype``, so partial loading and DynamicVRAM page and cast our fp8 weights
as they do ComfyUI's own quantized models. The facts about ComfyUI versions live here, not in the
core: each version's fp8 layers are described by a ``HostLayout`` the core loads into.

- ComfyUI with ``comfy.ops.mixed_precision_ops`` (0.28, 0.33, 0.38 and the releases since late
  2025): Linear and Embedding take ``weight`` (fp8) + ``weight_scale`` + ``comfy_quant``
  (``COMFY_MIXED``). ``full_precision_mm=True``: weights are cast to the compute dtype per call
  (weight-only, as the command line does) instead of quantizing activations to fp8 on GPUs with
  fp8 matmul.
- ComfyUI 0.3.64 (``comfy.ops.scaled_fp8_ops``): Linear takes ``weight`` (fp8) + ``scale_weight``,
  on every Linear of the model; embeddings stay in the compute dtype (``COMFY_SCALED_FP8``).
- A host with neither (the test stand-in): the core's own fp8 layers, with ComfyUI's weight-patching
  hooks (``convert_weight`` / ``set_weight``, as its scaled fp8 layers have) so LoRAs patch them;
  ComfyUI then loads the model whole, as it does any model whose layers are not ``comfy.ops`` ones.
"""

from __future__ import annotations

import inspect
import logging
from types import SimpleNamespace

import torch

import comfy.ops

from ..heartmula_core.errors import SettingsError
from ..heartmula_core.quant import formats
from ..heartmula_core.quant.formats import FP8_BY_NAME
from ..heartmula_core.quant.ops import operations as core_fp8_operations
from ..heartmula_core.quant.storage import CORE, EMBEDDING, LINEAR, HostLayout, WeightStorage
from ..heartmula_core.settings import WEIGHT_DTYPE_CHOICES
from . import memory

log = logging.getLogger(__name__)

COMFY_MIXED = HostLayout("ComfyUI mixed_precision_ops", "weight_scale", True, frozenset({LINEAR, EMBEDDING}))
COMFY_SCALED_FP8 = HostLayout("ComfyUI scaled_fp8_ops", "scale_weight", False, frozenset({LINEAR}), True)


def fp8_choice(weight_dtype: str) -> torch.dtype | None:
    """The loader's ``weight_dtype`` input as an fp8 dtype (None: ``default``), checked before any
    download (the server does not check dropdown values of V3 nodes)."""
    if weight_dtype not in WEIGHT_DTYPE_CHOICES:
        raise SettingsError(f"weight_dtype must be one of {', '.join(WEIGHT_DTYPE_CHOICES)}, got {weight_dtype!r}.")
    return FP8_BY_NAME.get(weight_dtype)


def weight_storage(fp8: torch.dtype | None, compute_dtype: torch.dtype) -> WeightStorage:
    """The loader's fp8 choice as one value for the core's loaders: the host's fp8 layers for an fp8
    dtype, its usual cast layers for None. ``compute_dtype``: the dtype fp8 weights are cast to (for
    the codec pass torch.float32: its non-transformer Linears stay float32, and the transformer's
    fp8 layers cast to their input's dtype)."""
    if fp8 is None:
        return WeightStorage(None, memory.layer_operations(), CORE)
    mixed = getattr(comfy.ops, "mixed_precision_ops", None)
    if mixed is not None:
        kwargs = {"full_precision_mm": True} if "full_precision_mm" in inspect.signature(mixed).parameters else {}
        return WeightStorage(fp8, mixed({}, compute_dtype, **kwargs), COMFY_MIXED)
    scaled = getattr(comfy.ops, "scaled_fp8_ops", None)
    if scaled is not None:
        ops = scaled(fp8_matrix_mult=False, scale_input=False, override_dtype=fp8)
        return WeightStorage(fp8, ops, COMFY_SCALED_FP8)
    log.warning("HeartMuLa: this ComfyUI has no fp8 layers (mixed_precision_ops / scaled_fp8_ops); using the "
                "pack's own, so the model is loaded whole.")
    ops = core_fp8_operations(compute_dtype)
    return WeightStorage(fp8, SimpleNamespace(**{**vars(ops), "Linear": type("Linear", (Patchable, ops.Linear), {}),
                                                 "Embedding": type("Embedding", (Patchable, ops.Embedding), {})}), CORE)


class Patchable:
    """ComfyUI's weight-patching hooks for the core's fp8 layers: the patcher widens a weight with
    ``convert_weight`` (times its scale), adds the patches, and stores the sum with ``set_weight``
    under the same scale (saturating, as ComfyUI 0.3.64's scaled fp8 layers do), so putting the
    original weight back restores the layer."""

    def _scale(self, like: torch.Tensor) -> torch.Tensor:
        scale = getattr(self, "weight_scale", None)
        return torch.ones((), device=like.device) if scale is None else scale.to(like.device, torch.float32)

    def convert_weight(self, weight, inplace=False, **kwargs):
        scale = self._scale(weight).to(weight.dtype)
        return weight.mul_(scale) if inplace else weight * scale

    def set_weight(self, weight, inplace_update=False, seed=None, return_weight=False, **kwargs):
        stored = torch.empty_like(self.weight, device=weight.device)
        if formats.is_fp8(stored.dtype):
            formats.quantize_into(stored, weight, self._scale(weight))
        else:
            stored.copy_(weight / self._scale(weight))
        if return_weight:
            return stored
        self.weight = torch.nn.Parameter(stored, requires_grad=False)
