"""What flows along the graph: the socket types of the pack and every object they carry.

Every socket carries a whole batch (B songs in, B results out). Tensors handed between nodes live
on the CPU; models live in ModelPatchers so ComfyUI decides what sits in VRAM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from comfy_api.latest import io

from ..heartmula_core.codes import FRAME_RATE
from . import memory

LMSocket = io.Custom("HEARTMULA_LM")
CodecSocket = io.Custom("HEARTCODEC")
PromptSocket = io.Custom("HEARTMULA_PROMPT")
CodesSocket = io.Custom("HEARTMULA_CODES")
TranscriptorSocket = io.Custom("HEARTTRANSCRIPTOR")
ClapSocket = io.Custom("HEARTCLAP")


@dataclass(kw_only=True)
class PatchedModel:
    """A model in a ComfyUI ModelPatcher (ComfyUI moves it), the folder it came from and its dtype.
    ``model`` is the model the core runs. For the song path (heartmula_core/song) it is a model like
    the command line's: ``check_memory`` before, ``ready(needed)`` to run, where ComfyUI's model
    management loads it with ``needed`` bytes free, evicting other models."""

    patcher: Any  # comfy.model_patcher.ModelPatcher (or CoreModelPatcher)
    folder: Path
    dtype: torch.dtype

    @property
    def model(self):
        return self.patcher.model

    @property
    def name(self) -> str:
        return self.folder.name

    def check_memory(self, needed: int, what: str, fix: str) -> None:
        """Nothing to check up front: ``ready`` asks ComfyUI, which frees what it can."""

    def ready(self, needed: int) -> tuple[torch.nn.Module, torch.device]:
        return self.model, memory.load_for_inference(self.patcher, needed)


@dataclass(kw_only=True)
class HeartMuLaLM(PatchedModel):
    """HEARTMULA_LM: the LM plus what prompts and sampling need besides weights."""

    tokenizer: Any  # tokenizers.Tokenizer
    gen_config: Any  # heartmula_core.lm.config.GenConfig
    config: Any  # heartmula_core.lm.config.HeartMuLaConfig


@dataclass
class HeartCodecModel(PatchedModel):
    """HEARTCODEC: the codec."""

    @property
    def config(self):
        return self.model.config


@dataclass(kw_only=True)
class ListeningModel(PatchedModel):
    """HEARTTRANSCRIPTOR (a Whisper model) or HEARTCLAP (a CLAP model) and its processor (features +
    tokenizer). The patcher holds the ``transformers`` model inside a ``memory.HeldModel``."""

    processor: Any

    @property
    def model(self):
        return self.patcher.model.inner


@dataclass
class HeartMuLaCodes:
    """HEARTMULA_CODES: tokens [B, 8, T] int64 on the CPU; ``lengths[b]`` frames of row b are real."""

    codes: torch.Tensor
    lengths: torch.Tensor
    frame_rate: float = FRAME_RATE
    info: dict[str, str] = field(default_factory=dict)  # where they came from (tags, seed, model)

    @property
    def batch_size(self) -> int:
        return int(self.codes.shape[0])

    def seconds(self) -> list[float]:
        return [int(n) / self.frame_rate for n in self.lengths.tolist()]


def audio_output(waveform: torch.Tensor, sample_rate: int) -> dict:
    """ComfyUI's AUDIO value: ``{"waveform": float32 [B, C, N] on the CPU, "sample_rate": int}``."""
    return {"waveform": waveform.detach().to(device="cpu", dtype=torch.float32).contiguous(),
            "sample_rate": int(sample_rate)}
