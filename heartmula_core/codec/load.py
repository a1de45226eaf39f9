"""Load a HeartCodec folder: built on the meta device (no weight initialisation), then filled
tensor by tensor from the safetensors file with weight norm folded in. Only the flow-matching
transformer follows the requested dtype: the VQ lookup and the convolutional decoder stay float32,
because the official README warns that reduced precision hurts the codec's audio quality.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints.folders import resolve_folder, weight_files
from ..quant import layers as fp8_layers
from ..quant import store
from ..weights import TensorSource, load_into, tensor_shapes
from .config import CodecConfig
from .layout import is_ignored_key
from .model import HeartCodec, build_codec
from .weight_norm import WeightNormFoldingSource

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
TRANSFORMER = "flow_matching.estimator."  # the only part whose dtype is the caller's


def dtype_for(key: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype weight ``key`` is loaded in when the transformer is asked for ``dtype``."""
    return dtype if key.startswith(TRANSFORMER) else torch.float32


def weight_plan(config: CodecConfig, weight_dtype: torch.dtype | None,
                layout: store.HostLayout = store.CORE) -> tuple[dict, store.WeightPlan]:
    """The architecture's tensors (name -> shape, from a torch.nn build) and which of them are held
    in ``weight_dtype`` (fp8: the transformer's Linear weights; None: none)."""
    reference = build_codec(config)
    return tensor_shapes(reference), store.plan_for(store.codec_candidates(reference), weight_dtype, layout)


def load_codec(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32, operations=None,
               weight_dtype: torch.dtype | None = None, layout: store.HostLayout = store.CORE) -> HeartCodec:
    """Load a HeartCodec folder (config.json + model.safetensors), or a root holding one, onto ``device``.

    Each tensor goes from disk to ``device`` on its own, so no full CPU copy is ever held.
    ``dtype`` applies to the flow-matching transformer only; everything else is float32.
    ``weight_dtype`` (fp8) holds the transformer's Linear weights in fp8, cast per call (as for
    ``load_lm``; the default layers are then the core's fp8 ones, computing in float32 outside
    the transformer).
    """
    folder = resolve_folder(path, "codec")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, got {dtype}")
    config = CodecConfig.from_folder(folder)
    if operations is None and weight_dtype is not None:
        operations = fp8_layers.operations(torch.float32)
    model = build_codec(config, operations)
    shapes, plan = weight_plan(config, weight_dtype, layout)
    source = WeightNormFoldingSource(TensorSource.from_files(weight_files(folder, "codec")))
    load_into(model, **store.prepare(source, lambda key: dtype_for(key, dtype), shapes, plan), ignore=is_ignored_key,
              device=device)
    model.folder = folder
    return model
