"""The HeartCodec module and its loader.

Built on the meta device (no weight initialisation), then filled tensor by tensor from the
safetensors file with weight norm folded in. Only the flow-matching transformer follows the
requested dtype: the VQ lookup and the convolutional decoder stay float32, because the official
README warns that reduced precision hurts the codec's audio quality.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..weights import TensorSource, load_into
from .config import CodecConfig
from .flow import FlowMatching
from .layout import is_ignored_key
from .scalar_decoder import ScalarDecoder
from .weight_norm import WeightNormFoldingSource

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class HeartCodec(nn.Module):
    def __init__(self, config: CodecConfig, operations=nn):
        super().__init__()
        self.config = config
        self.flow_matching = FlowMatching(config, operations)
        self.scalar_model = ScalarDecoder(config, operations)
        self.folder: Path | None = None

    @property
    def device(self) -> torch.device:
        return self.flow_matching.cond_feature_emb.weight.device

    @property
    def transformer_dtype(self) -> torch.dtype:
        return self.flow_matching.estimator.dtype


def build_codec(config: CodecConfig, operations=None) -> HeartCodec:
    """A HeartCodec whose tensors live on the meta device (nothing allocated, nothing initialised)."""
    with torch.device("meta"):
        return HeartCodec(config, operations or nn)


def _weight_files(folder: Path) -> list[Path]:
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CheckpointError(
            f"{folder} holds no .safetensors file. A HeartCodec folder needs config.json and model.safetensors "
            "(download HeartMuLa/HeartCodec-oss)."
        )
    return files


def load_codec(folder: str | Path, device="cpu", dtype: torch.dtype = torch.float32, operations=None) -> HeartCodec:
    """Load a HeartCodec folder (config.json + model.safetensors) onto ``device``.

    ``dtype`` applies to the flow-matching transformer only; everything else is float32.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"HeartCodec folder {folder} does not exist (expected config.json + model.safetensors).")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, got {dtype}")
    config = CodecConfig.from_folder(folder)
    model = build_codec(config, operations)
    source = WeightNormFoldingSource(TensorSource.from_files(_weight_files(folder)))

    def dtype_for(key: str) -> torch.dtype:
        return dtype if key.startswith("flow_matching.estimator.") else torch.float32

    load_into(model, source, dtype_for, ignore=is_ignored_key)
    model.folder = folder
    return model.to(device)
