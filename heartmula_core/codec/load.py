"""Load a HeartCodec folder: built on the meta device (no weight initialisation), then filled
tensor by tensor from the safetensors file with weight norm folded in. Only the flow-matching
transformer follows the requested dtype: the VQ lookup and the convolutional decoder stay float32,
because the official README warns that reduced precision hurts the codec's audio quality.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints.folders import resolve_folder, weight_files
from ..quant.storage import CORE, HostLayout, WeightPlan, WeightStorage, codec_candidates, plan_for
from ..quant.source import prepare
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


def weight_plan(config: CodecConfig, fp8: torch.dtype | None,
                layout: HostLayout = CORE) -> tuple[dict, WeightPlan]:
    """The architecture's tensors (name -> shape, from a torch.nn build) and which of them are held
    in ``fp8`` (an fp8 dtype: the transformer's Linear weights; None: none)."""
    reference = build_codec(config)
    return tensor_shapes(reference), plan_for(codec_candidates(reference), fp8, layout)


def load_codec(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32,
               storage: WeightStorage = WeightStorage()) -> HeartCodec:
    """Load a HeartCodec folder (config.json + model.safetensors), or a root holding one, onto ``device``.

    Each tensor goes from disk to ``device`` on its own, so no full CPU copy is ever held.
    ``dtype`` applies to the flow-matching transformer only; everything else is float32.
    ``storage`` (as for ``load_lm``): with ``storage.fp8`` the transformer's Linear weights are held
    in fp8 and cast per call (the core's fp8 layers, unless a host passes its own, compute in
    float32 outside the transformer).
    """
    folder = resolve_folder(path, "codec")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, got {dtype}")
    config = CodecConfig.from_folder(folder)
    model = build_codec(config, storage.layers(torch.float32))
    shapes, plan = weight_plan(config, storage.fp8, storage.layout)
    source = WeightNormFoldingSource(TensorSource.from_files(weight_files(folder, "codec")))
    load_into(model, **prepare(source, lambda key: dtype_for(key, dtype), shapes, plan), ignore=is_ignored_key,
              device=device)
    model.folder = folder
    return model
