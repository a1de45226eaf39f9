"""Load a HeartCodec folder: built on the meta device (no weight initialisation), then filled
tensor by tensor from the safetensors file with weight norm folded in. Only the flow-matching
transformer follows the requested dtype: the VQ lookup and the convolutional decoder stay float32,
because the official README warns that reduced precision hurts the codec's audio quality.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints.folders import resolve_folder, weight_files
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


def load_codec(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32, operations=None) -> HeartCodec:
    """Load a HeartCodec folder (config.json + model.safetensors), or a root holding one, onto ``device``.

    Each tensor goes from disk to ``device`` on its own, so no full CPU copy is ever held.
    ``dtype`` applies to the flow-matching transformer only; everything else is float32.
    """
    folder = resolve_folder(path, "codec")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, got {dtype}")
    config = CodecConfig.from_folder(folder)
    model = build_codec(config, operations)
    source = WeightNormFoldingSource(TensorSource.from_files(weight_files(folder, "codec")))
    # The architecture's tensors come from a torch.nn build: a host's layers may be built weightless.
    load_into(model, source, lambda key: dtype_for(key, dtype), ignore=is_ignored_key, device=device,
              expected=tensor_shapes(build_codec(config)))
    model.folder = folder
    return model
