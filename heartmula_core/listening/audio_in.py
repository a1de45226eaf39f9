"""The audio the listening models hear: a batch of waveforms as mono at the model's rate, and the
part of a song that is not the padding of its batch."""

from __future__ import annotations

import torch

from ..errors import HeartMuLaError
from ..resample import resample


def to_mono(waveform: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """A waveform batch [B, C, N] at ``sample_rate`` -> float32 mono [B, N'] at ``target_rate``."""
    if not isinstance(waveform, torch.Tensor) or waveform.dim() != 3:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise HeartMuLaError(f"The audio waveform must be a tensor [batch, channels, samples], got {shape}.")
    if int(sample_rate) <= 0:
        raise HeartMuLaError(f"The audio sample rate must be positive, got {sample_rate}.")
    mono = waveform.detach().to("cpu", torch.float32).mean(dim=1)
    return resample(mono, int(sample_rate), int(target_rate))


def audible_length(wave: torch.Tensor) -> int:
    """Samples of ``wave`` [..., N] up to the last one that is not zero in every channel: a shorter
    song of a batch is padded with exact zeros. 0 when all of it is zero."""
    nonzero = torch.nonzero(wave.abs().reshape(-1, wave.shape[-1]).sum(dim=0)).flatten()
    return int(nonzero[-1]) + 1 if nonzero.numel() else 0
