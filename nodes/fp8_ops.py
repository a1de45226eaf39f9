"""fp8 weights inside ComfyUI: the host's own layers do the per-call cast, so partial loading and
DynamicVRAM page and cast our fp8 weights as they do ComfyUI's own quantized models.

- ComfyUI with ``comfy.ops.mixed_precision_ops`` (0.28, 0.38 and the releases since late 2025):
  Linear and Embedding take ``weight`` (fp8) + ``weight_scale`` + ``comfy_quant``
  (``store.COMFY_MIXED``). ``full_precision_mm=True``: weights are cast to the compute dtype per
  call (weight-only, as the command line does) instead of quantizing activations to fp8 on GPUs
  with fp8 matmul.
- ComfyUI 0.3.64 (``comfy.ops.scaled_fp8_ops``): Linear takes ``weight`` (fp8) + ``scale_weight``,
  on every Linear of the model; embeddings stay in the compute dtype (``store.COMFY_SCALED_FP8``).
- A host with neither (the test stand-in): the core's own fp8 layers; ComfyUI then loads the model
  whole, as it does any model whose layers are not ``comfy.ops`` ones.
"""

from __future__ import annotations

import inspect
import logging

import torch

import comfy.ops

from ..heartmula_core.quant import layers, store
from . import memory

log = logging.getLogger(__name__)


def loader_layers(fp8_dtype: torch.dtype | None, compute_dtype: torch.dtype):
    """(layer namespace, HostLayout) for a loader: the host's fp8 layers, or its usual cast layers
    when ``fp8_dtype`` is None (weight_dtype ``default``)."""
    if fp8_dtype is None:
        return memory.layer_operations(), store.CORE
    return fp8_operations(compute_dtype, fp8_dtype)


def fp8_operations(compute_dtype: torch.dtype, fp8_dtype: torch.dtype):
    """(layer namespace, HostLayout) for a model whose Linear/Embedding weights are held in fp8 and
    computed in ``compute_dtype``. For the codec pass torch.float32: its non-transformer Linears stay
    float32, and the transformer's fp8 layers cast to their input's dtype."""
    mixed = getattr(comfy.ops, "mixed_precision_ops", None)
    if mixed is not None:
        kwargs = {"full_precision_mm": True} if "full_precision_mm" in inspect.signature(mixed).parameters else {}
        return mixed({}, compute_dtype, **kwargs), store.COMFY_MIXED
    scaled = getattr(comfy.ops, "scaled_fp8_ops", None)
    if scaled is not None:
        return scaled(fp8_matrix_mult=False, scale_input=False, override_dtype=fp8_dtype), store.COMFY_SCALED_FP8
    log.warning("HeartMuLa: this ComfyUI has no fp8 layers (mixed_precision_ops / scaled_fp8_ops); using the "
                "pack's own, so the model is loaded whole.")
    return layers.operations(compute_dtype), store.CORE
