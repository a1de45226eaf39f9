"""CLAP scoring core on tiny random-weight CLAP checkpoints (plain and fusion) built offline."""

import json

import pytest
import torch

from heartmula_core.listening.clap import clap_scores, load_clap, window_starts
from heartmula_core.errors import CheckpointError, HeartMuLaError
from heartmula_core.resample import resample
from tiny_listening_models import CLAP_RATE, build_tiny_clap


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "fusion"])
def clap(request, tmp_path_factory):
    folder = build_tiny_clap(tmp_path_factory.mktemp("clap") / "clap", fusion=request.param)
    return load_clap(folder)


def noise(seconds, seed, rate=CLAP_RATE, channels=2):
    gen = torch.Generator().manual_seed(seed)
    return 0.2 * torch.randn(channels, int(seconds * rate), generator=gen)


def test_window_starts_cover_the_song_without_padding():
    assert window_starts(500, 1000) == [0]
    assert window_starts(1000, 1000) == [0]
    assert window_starts(3000, 1000) == [0, 1000, 2000]
    assert window_starts(2500, 1000) == [0, 1000, 1500]  # last window ends at the song's end


def test_same_audio_and_text_score_the_same_in_a_batch_and_alone(clap):
    a, b = noise(2.5, 1), noise(1.0, 2)
    batch = torch.zeros(3, 2, a.shape[1])
    batch[0], batch[2] = a, a
    batch[1, :, : b.shape[1]] = b  # shorter song, zero-padded like a batch of takes
    texts = ["upbeat pop, female vocals", "dark ambient", "upbeat pop, female vocals"]
    scores = clap_scores(clap.model, clap.processor, batch, CLAP_RATE, texts, windows_per_batch=2)
    alone_a = clap_scores(clap.model, clap.processor, a[None], CLAP_RATE, texts[:1])
    alone_b = clap_scores(clap.model, clap.processor, b[None], CLAP_RATE, texts[1:2])
    assert scores[0] == pytest.approx(scores[2], abs=1e-6)
    assert scores[0] == pytest.approx(alone_a[0], abs=1e-5)
    assert scores[1] == pytest.approx(alone_b[0], abs=1e-5)
    assert all(-1.0 <= s <= 1.0 for s in scores)


def test_one_text_is_used_for_every_song(clap):
    batch = torch.stack([noise(1, 3), noise(1, 4)])
    one = clap_scores(clap.model, clap.processor, batch, CLAP_RATE, ["rock"])
    two = clap_scores(clap.model, clap.processor, batch, CLAP_RATE, ["rock", "rock"])
    assert one == pytest.approx(two, abs=1e-7)


def test_long_audio_is_the_mean_over_windows(clap):
    song = noise(2.5, 5)
    whole = clap_scores(clap.model, clap.processor, song[None], CLAP_RATE, ["jazz"])[0]
    parts = [
        clap_scores(clap.model, clap.processor, song[None, :, s : s + CLAP_RATE], CLAP_RATE, ["jazz"])[0]
        for s in (0, CLAP_RATE, int(1.5 * CLAP_RATE))
    ]
    assert whole == pytest.approx(sum(parts) / 3, abs=1e-5)


def test_audio_at_another_rate_is_resampled_to_the_models_rate(clap):
    at_16k = noise(1.5, 6, rate=16000)
    at_model_rate = resample(at_16k, 16000, CLAP_RATE)
    scored_16k = clap_scores(clap.model, clap.processor, at_16k[None], 16000, ["folk"])
    scored_8k = clap_scores(clap.model, clap.processor, at_model_rate[None], CLAP_RATE, ["folk"])
    assert scored_16k == pytest.approx(scored_8k, abs=1e-6)
    # and the rate is not ignored: the same samples claimed to be at the model's rate score differently
    misread = clap_scores(clap.model, clap.processor, at_16k[None], CLAP_RATE, ["folk"])
    assert misread[0] != pytest.approx(scored_16k[0], abs=1e-4)


def test_input_errors(clap):
    with pytest.raises(HeartMuLaError, match=r"\[batch, channels, samples\]"):
        clap_scores(clap.model, clap.processor, torch.zeros(2, 100), CLAP_RATE, ["x"])
    with pytest.raises(HeartMuLaError, match="2 texts for 3 songs"):
        clap_scores(clap.model, clap.processor, torch.zeros(3, 1, 100), CLAP_RATE, ["x", "y"])
    with pytest.raises(HeartMuLaError, match="text to compare with is empty"):
        clap_scores(clap.model, clap.processor, torch.zeros(1, 1, 100), CLAP_RATE, ["  "])


def test_unknown_folder_format_names_the_folder_and_expected_files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError) as err:
        load_clap(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "model_type 'whisper'" in message
    assert "preprocessor_config.json" in message and "tokenizer" in message and "'clap'" in message
