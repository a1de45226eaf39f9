"""Band-limited resampling that needs only scipy, which every ComfyUI install has.

ComfyUI 0.38 no longer installs torchaudio, and installing it would pin an older torch, so the pack
cannot rely on ``torchaudio.functional.resample``. This module reproduces that function's default
filter (a Hann-windowed sinc low-pass crossing zero 6 times on each side, cut off at 99 % of the
lower Nyquist frequency) and applies it with ``scipy.signal.resample_poly``, whose polyphase
filtering does the same zero-padded convolution while skipping the zeros torchaudio multiplies.
Outputs match torchaudio's to float32 rounding (tests/test_resample.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from .errors import HeartMuLaError

ZERO_CROSSINGS = 6  # torchaudio's lowpass_filter_width
ROLLOFF = 0.99  # cut-off as a fraction of the lower of the two Nyquist frequencies


def _check_rate(name: str, rate) -> int:
    if isinstance(rate, bool) or int(rate) != rate or rate <= 0:
        raise HeartMuLaError(f"Resample: {name} must be a positive whole number of Hz, got {rate!r}.")
    return int(rate)


@lru_cache(maxsize=32)
def sinc_taps(up: int, down: int, zero_crossings: int = ZERO_CROSSINGS, rolloff: float = ROLLOFF) -> np.ndarray:
    """FIR taps (float64, odd length, symmetric) for upsampling by ``up`` then keeping every
    ``down``-th sample, with ``up`` and ``down`` coprime.

    The taps live on the upsampled grid, whose step is 1 / (up * down) in units where the input
    step is 1 / down and the output step 1 / up. The sinc's cut-off ``rolloff * min(up, down)`` is in
    the same units; the gain makes a constant input come out (almost) constant.
    """
    cutoff = min(up, down) * rolloff
    half = math.floor(zero_crossings * up * down / cutoff)
    x = np.arange(-half, half + 1, dtype=np.float64) * (cutoff / (up * down))  # zero crossings from the centre
    window = np.cos(x * (math.pi / (2 * zero_crossings))) ** 2
    taps = np.sinc(x) * window * (cutoff / down)
    taps[np.abs(x) >= zero_crossings] = 0.0
    return taps / up  # resample_poly multiplies by ``up`` to make up for the inserted zeros


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``waveform`` [..., N] from ``orig_rate`` to ``new_rate`` Hz along the last dimension.

    Returns ``ceil(N * new_rate / orig_rate)`` samples in the input's dtype and device (computed on the
    CPU in float64 for float64 input, else float32), or the input itself when the rates are equal.
    """
    orig_rate, new_rate = _check_rate("orig_rate", orig_rate), _check_rate("new_rate", new_rate)
    if not isinstance(waveform, torch.Tensor) or not waveform.is_floating_point():
        kind = waveform.dtype if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise HeartMuLaError(f"Resample: the waveform must be a floating-point tensor, got {kind}.")
    if orig_rate == new_rate:
        return waveform
    divisor = math.gcd(orig_rate, new_rate)
    up, down = new_rate // divisor, orig_rate // divisor
    length = waveform.shape[-1]
    out_length = -(-length * up // down)
    if length == 0:
        return waveform.new_zeros(*waveform.shape[:-1], 0)
    work_dtype = np.float64 if waveform.dtype == torch.float64 else np.float32
    samples = waveform.detach().to("cpu", torch.float64 if work_dtype is np.float64 else torch.float32).numpy()
    from scipy.signal import resample_poly  # deferred: importing scipy.signal takes a while

    taps = sinc_taps(up, down).astype(work_dtype)
    out = resample_poly(samples, up, down, axis=-1, window=taps, padtype="constant")
    out = np.ascontiguousarray(out[..., :out_length], dtype=work_dtype)
    return torch.from_numpy(out).to(device=waveform.device, dtype=waveform.dtype)
