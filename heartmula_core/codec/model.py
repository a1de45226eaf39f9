"""The HeartCodec module: the flow-matching half (codes -> latents) and the scalar decoder
(latents -> waveform), with the checkpoint's attribute names. Loading is in load.py."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .config import CodecConfig
from .flow import FlowMatching
from .scalar_decoder import ScalarDecoder


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
