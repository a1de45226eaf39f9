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
from ..weights import TensorSource, load_into, tensor_shapes
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
        """Where decode runs: the device a host assigned (ComfyUI's ModelPatcher sets ``model.device``
        on load/unload, and may leave some weights on the offload device), else where the weights are."""
        return self.__dict__.get("_run_device") or self.flow_matching.cond_feature_emb.weight.device

    @device.setter
    def device(self, value) -> None:
        self.__dict__["_run_device"] = None if value is None else torch.device(value)

    @property
    def transformer_dtype(self) -> torch.dtype:
        return self.flow_matching.estimator.dtype


def build_codec(config: CodecConfig, operations=None) -> HeartCodec:
    """A HeartCodec whose tensors live on the meta device (nothing allocated, nothing initialised)."""
    with torch.device("meta"):
        return HeartCodec(config, operations or nn)


def resolve_codec_folder(path: str | Path) -> Path:
    """Accept the HeartCodec folder itself, or a root (e.g. the HeartMuLa download) holding exactly one."""
    from ..checkpoints import download_hint, list_codec_folders

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"HeartCodec folder {folder} does not exist. {download_hint(folder, 'codec')}")
    if (folder / "config.json").is_file():
        return folder
    inner = list_codec_folders(folder)
    if len(inner) == 1:
        return folder / inner[0]
    raise CheckpointError(
        f"{folder} has no config.json"
        + (f" and holds several HeartCodec folders ({', '.join(inner)}): pick one" if inner
           else "; point to a HeartCodec folder such as HeartCodec-oss")
        + f". {download_hint(folder / 'HeartCodec-oss', 'codec')}"
    )


def load_codec(folder: str | Path, device="cpu", dtype: torch.dtype = torch.float32, operations=None) -> HeartCodec:
    """Load a HeartCodec folder (config.json + model.safetensors), or a root holding one, onto ``device``.

    Each tensor goes from disk to ``device`` on its own, so no full CPU copy is ever held.

    ``dtype`` applies to the flow-matching transformer only; everything else is float32.
    """
    from ..checkpoints import weight_files

    folder = resolve_codec_folder(folder)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, got {dtype}")
    config = CodecConfig.from_folder(folder)
    model = build_codec(config, operations)
    source = WeightNormFoldingSource(TensorSource.from_files(weight_files(folder, "codec")))

    def dtype_for(key: str) -> torch.dtype:
        return dtype if key.startswith("flow_matching.estimator.") else torch.float32

    # The architecture's tensors come from a torch.nn build: a host's layers may be built weightless.
    load_into(model, source, dtype_for, ignore=is_ignored_key, device=device,
              expected=tensor_shapes(build_codec(config)))
    model.folder = folder
    return model
