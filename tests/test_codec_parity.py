"""HeartCodec numbers vs the official implementation's outputs on the tiny checkpoint."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from heartmula_core.codec import decode, load_codec

DATA = Path(__file__).parent / "data" / "tiny"
CODEC_DIR = DATA / "ckpt" / "HeartCodec-oss"


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.fixture(scope="module")
def expected():
    return load_file(DATA / "expected.safetensors")


@pytest.fixture(scope="module")
def codec():
    return load_codec(CODEC_DIR)


def test_rvq_lookup(codec, expected):
    out = codec.flow_matching.vq_embed(expected["rvq_indices"].long())
    assert out.shape == expected["rvq_output"].shape
    assert rel(out, expected["rvq_output"]) < 1e-5


def test_estimator(codec, expected):
    with torch.no_grad():
        out = codec.flow_matching.estimator(expected["estimator_input"], expected["estimator_timestep"])
    assert out.shape == expected["estimator_output"].shape
    assert rel(out, expected["estimator_output"]) < 1e-5


def test_scalar_decoder(codec, expected):
    with torch.no_grad():
        out = codec.scalar_model(expected["scalar_decode_input"])
    assert out.shape == expected["scalar_decode_output"].shape
    assert rel(out, expected["scalar_decode_output"]) < 1e-5


def test_decode_seed0_matches_reference(codec, expected):
    codes = expected["codec_input_codes"].long()
    calls = []
    wave = decode(codec, codes[None], generator=torch.Generator().manual_seed(0),
                  on_step=lambda done, total: calls.append((done, total)))
    ref = expected["codec_waveform_seed0"]
    assert wave.dtype == torch.float32 and wave.device.type == "cpu"
    assert wave.shape == (1, 2, 80640) == (1,) + tuple(ref.shape)
    assert codes.shape[-1] / 12.5 * 48000 == wave.shape[-1]
    assert rel(wave[0], ref) < 1e-4
    assert calls == [(i, 10) for i in range(1, 11)]


def test_decode_two_windows_matches_reference(codec, expected):
    wave = decode(codec, expected["codec_long_codes"].long()[None], steps=4,
                  generator=torch.Generator().manual_seed(0))
    assert wave.shape == (1, 2, 2400000)
    assert rel(wave[0, :, ::97], expected["codec_long_waveform_seed0_steps4_every97"]) < 1e-4


def test_batch_decodes_each_song_at_its_own_length(codec, expected):
    codes = expected["codec_input_codes"].long()
    batch = torch.stack([codes, torch.full_like(codes, 3)])  # song 2: 15 frames, then junk padding
    batch[1, :, 15:] = 99999
    wave = decode(codec, batch, [21, 15], generator=torch.Generator().manual_seed(0))
    assert wave.shape == (2, 2, 80640)
    # the first song's noise is drawn first, so it matches the single-song reference
    assert rel(wave[0], expected["codec_waveform_seed0"]) < 1e-4
    short = 15 * 48000 * 2 // 25
    assert wave[1, :, short:].abs().max() == 0
    assert wave[1, :, :short].abs().max() > 0


def test_cancel_stops_decoding(codec, expected):
    calls = []

    def cancel():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        decode(codec, expected["codec_input_codes"].long()[None], steps=10, check_cancel=cancel)
    assert len(calls) == 3
