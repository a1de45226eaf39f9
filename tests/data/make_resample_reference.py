"""Writes tests/data/resample_reference.npz: inputs and ``torchaudio.functional.resample`` outputs
(default settings) that tests/test_resample.py compares the pack's own resampler with, so the test
suite never needs torchaudio. Run once, from the repository root, with a Python that has torchaudio:

    python tests/data/make_resample_reference.py

Inputs are deterministic (a fixed seed and fixed tones) and stored with the outputs; every case's
key prefix is ``<name>.``: ``input`` (float32), ``rates`` ([orig, new]), ``output`` (float32 from the
float32 input) and, for a few cases, ``output64`` (from the same input upcast to float64).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchaudio
import torchaudio.functional as AF

OUT = Path(__file__).resolve().parent / "resample_reference.npz"
SECONDS = 0.05  # 20 periods of the 44.1 kHz -> 16 kHz filter pattern (441 input samples)


def tones(rate: int, length: int) -> np.ndarray:
    """440 Hz + 3 kHz + 7.5 kHz (just under the 16 kHz output's cut-off) + 9 kHz (above it)."""
    t = np.arange(length, dtype=np.float64) / rate
    parts = [(0.4, 440.0), (0.3, 3000.0), (0.2, 7500.0), (0.1, 9000.0)]
    return sum(a * np.sin(2 * np.pi * f * t) for a, f in parts)[None].astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(20260409)

    def noise(*shape):
        return (0.3 * rng.standard_normal(shape)).astype(np.float32)

    def odd(rate):  # an odd number of samples whose output length is rounded up
        return (int(SECONDS * rate) + 4) | 1

    cases = {
        "tone_mono_48000_16000": (48000, 16000, tones(48000, odd(48000))),
        "noise_stereo_48000_16000": (48000, 16000, noise(2, odd(48000))),
        "tone_mono_44100_16000": (44100, 16000, tones(44100, odd(44100))),
        "noise_batch_44100_16000": (44100, 16000, noise(2, 2, odd(44100))),
        "noise_mono_16000_48000": (16000, 48000, noise(1, odd(16000))),
        "noise_stereo_32000_16000": (32000, 16000, noise(2, odd(32000))),
        "noise_mono_48000_48000": (48000, 48000, noise(1, 1001)),
    }
    for length in (1, 2, 3, 5):
        for orig, new in ((48000, 16000), (44100, 16000), (16000, 48000)):
            cases[f"short{length}_{orig}_{new}"] = (orig, new, noise(2, length))
    with_float64 = {"noise_stereo_48000_16000", "noise_batch_44100_16000", "noise_mono_16000_48000"}

    arrays = {"torchaudio_version": np.array(torchaudio.__version__), "torch_version": np.array(torch.__version__)}
    for name, (orig, new, samples) in cases.items():
        arrays[f"{name}.rates"] = np.array([orig, new], dtype=np.int64)
        arrays[f"{name}.input"] = samples
        arrays[f"{name}.output"] = AF.resample(torch.from_numpy(samples), orig, new).numpy()
        if name in with_float64:
            arrays[f"{name}.output64"] = AF.resample(torch.from_numpy(samples).double(), orig, new).numpy()
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT.name}: {len(cases)} cases, {OUT.stat().st_size // 1024} KiB, torchaudio {torchaudio.__version__}")


if __name__ == "__main__":
    main()
