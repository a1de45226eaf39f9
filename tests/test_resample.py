"""The pack's resampler against torchaudio.functional.resample, without needing torchaudio.

tests/data/resample_reference.npz holds torchaudio's outputs for fixed tones and noise (written by
tests/data/make_resample_reference.py). Where torchaudio happens to be installed, random inputs are
compared live as well. The issue's bar is 1e-3 relative L2. Float32 results agree with torchaudio's
float32 ones to at most ~1e-5 (measured), which is torchaudio's own rounding: its float32 kernel is
computed in float32, ours in float64, and our float32 results agree with torchaudio's float64 ones to
~2e-7. Float64 results agree to ~1e-14.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from heartmula_core.errors import HeartMuLaError
from heartmula_core.resample import resample, sinc_taps

REFERENCE = Path(__file__).resolve().parent / "data" / "resample_reference.npz"
FLOAT32_TOLERANCE = 5e-5  # ours (float32) vs torchaudio (float32)
EXACT_TOLERANCE = 1e-6  # ours (float32) vs torchaudio (float64)
FLOAT64_TOLERANCE = 1e-12  # ours (float64) vs torchaudio (float64)


def relative_l2(ours: torch.Tensor, reference: torch.Tensor) -> float:
    ours, reference = ours.double(), reference.double()
    return float((ours - reference).norm() / reference.norm())


def reference_cases():
    with np.load(REFERENCE, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    names = sorted({key.split(".")[0] for key in arrays if key.endswith(".rates")})
    return [(name, {key.split(".", 1)[1]: value for key, value in arrays.items() if key.startswith(name + ".")})
            for name in names]


CASES = reference_cases()


def test_reference_file_covers_the_rates_the_pack_uses():
    rates = {tuple(int(r) for r in case["rates"]) for _, case in CASES}
    assert {(48000, 16000), (44100, 16000), (16000, 48000), (32000, 16000), (48000, 48000)} <= rates
    names = [name for name, _ in CASES]
    assert any(n.startswith("tone_") and n.endswith("48000_16000") for n in names)
    assert any(n.startswith("tone_") and n.endswith("44100_16000") for n in names)
    assert sum("output64" in case for _, case in CASES) >= 3


@pytest.mark.parametrize("name,case", CASES, ids=[name for name, _ in CASES])
def test_matches_torchaudio_reference(name, case):
    orig, new = (int(r) for r in case["rates"])
    samples = torch.from_numpy(case["input"])
    out = resample(samples, orig, new)
    expected = torch.from_numpy(case["output"])
    assert out.dtype == torch.float32 and out.shape == expected.shape
    assert relative_l2(out, expected) < FLOAT32_TOLERANCE, name
    if "output64" in case:
        out64 = resample(samples.double(), orig, new)
        expected64 = torch.from_numpy(case["output64"])
        assert out64.dtype == torch.float64
        assert relative_l2(out64, expected64) < FLOAT64_TOLERANCE, name
        assert relative_l2(out, expected64) < EXACT_TOLERANCE, name


def tone(freq, rate, seconds=0.5, channels=1):
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return torch.sin(2 * torch.pi * freq * t).float().expand(channels, -1).clone()


def test_passband_is_kept_and_aliases_are_removed():
    edge = 200  # the first and last output samples see the zero padding
    kept = resample(tone(1000, 48000), 48000, 16000)[:, edge:-edge]
    assert torch.allclose(kept, tone(1000, 16000)[:, edge:-edge], atol=5e-3)
    # 12 kHz cannot exist at 16 kHz; without the low-pass it would fold back to 4 kHz at full level
    folded = resample(tone(12000, 48000), 48000, 16000)[:, edge:-edge]
    assert folded.pow(2).mean().sqrt() < 0.01 * (0.5**0.5)


def test_shapes_dtypes_and_lengths():
    batch = torch.randn(3, 2, 1001)
    out = resample(batch, 44100, 16000)
    assert out.shape == (3, 2, 364)  # ceil(1001 * 160 / 441)
    assert torch.equal(out[1, 0], resample(batch[1, 0], 44100, 16000))  # channels are independent
    assert resample(torch.randn(7), 16000, 48000).shape == (21,)
    assert resample(torch.randn(2, 1), 48000, 16000).shape == (2, 1)
    assert resample(torch.randn(2, 0), 48000, 16000).shape == (2, 0)
    assert resample(torch.randn(2, 500).bfloat16(), 48000, 16000).dtype == torch.bfloat16
    assert resample(torch.randn(2, 500).half(), 32000, 16000).dtype == torch.float16


def test_equal_rates_return_the_input_itself():
    samples = torch.randn(2, 333)
    assert resample(samples, 48000, 48000) is samples


@pytest.mark.parametrize("orig,new", [(0, 16000), (48000, -1), (44100.5, 16000), (True, 16000)])
def test_bad_rates_are_named(orig, new):
    with pytest.raises(HeartMuLaError, match="Resample: (orig_rate|new_rate) must be a positive whole number"):
        resample(torch.randn(100), orig, new)


def test_integer_audio_is_refused_with_its_dtype():
    with pytest.raises(HeartMuLaError, match="floating-point tensor, got torch.int16"):
        resample(torch.zeros(100, dtype=torch.int16), 48000, 16000)


def test_taps_are_symmetric_and_have_unit_gain():
    for up, down in [(1, 3), (160, 441), (3, 1), (1, 2)]:
        taps = sinc_taps(up, down)
        assert len(taps) % 2 == 1 and np.allclose(taps, taps[::-1])
        # each of the ``up`` polyphase branches sums to 1/up (times up in resample_poly): DC passes
        assert taps.sum() * up == pytest.approx(up, rel=2e-3)


RATE_PAIRS = [(48000, 16000), (44100, 16000), (16000, 48000), (32000, 16000), (22050, 16000),
              (8000, 44100), (44100, 48000), (96000, 16000)]


@pytest.mark.parametrize("orig,new", RATE_PAIRS)
def test_matches_torchaudio_live_when_installed(orig, new):
    functional = pytest.importorskip("torchaudio.functional", reason="torchaudio is not installed (not needed)")
    gen = torch.Generator().manual_seed(orig + new)
    for shape in [(1, 3001), (2, 2, 1777), (5,), (2, 1)]:
        samples = torch.randn(shape, generator=gen)
        expected = functional.resample(samples, orig, new)
        out = resample(samples, orig, new)
        assert out.shape == expected.shape
        assert relative_l2(out, expected) < FLOAT32_TOLERANCE, (shape, orig, new)
        expected64 = functional.resample(samples.double(), orig, new)
        assert relative_l2(out, expected64) < EXACT_TOLERANCE, (shape, orig, new)
        assert relative_l2(resample(samples.double(), orig, new), expected64) < FLOAT64_TOLERANCE
