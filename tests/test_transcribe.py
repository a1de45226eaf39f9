"""Transcription core: chunk planning, batch routing, exact text of a Whisper whose output is known."""

import json

import pytest
import torch

from heartmula_core.errors import CheckpointError, HeartMuLaError
from heartmula_core.listening.audio_in import to_mono
from heartmula_core.listening.transcribe import WHISPER_RATE, load_transcriber, plan_chunks, transcribe
from tiny_listening_models import build_tiny_whisper

RATE = 16000


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    folder = build_tiny_whisper(tmp_path_factory.mktemp("listening") / "HeartTranscriptor-oss")
    return load_transcriber(folder)


def tone(seconds, rate=RATE, gaps=()):
    """A loud 440 Hz tone with exact silence over each (start, end) gap in seconds."""
    t = torch.arange(int(seconds * rate)) / rate
    wave = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    for start, end in gaps:
        wave[int(start * rate) : int(end * rate)] = 0.0
    return wave


def test_chunks_are_cut_in_the_quietest_frame_before_30_s():
    wave = tone(70, gaps=[(27.0, 27.5), (55.0, 55.2)])
    # first window: frames of 0.1 s over [25, 30); the silent ones are 27.0 .. 27.5, the latest wins
    # -> cut in the middle of [27.4, 27.5) = 27.45 s. Second window: frames start at 52.45 s, the only
    # fully silent one is [55.05, 55.15) -> cut at 55.10 s. The remaining 14.9 s fit in one chunk.
    assert plan_chunks(wave) == [(0, 439200), (439200, 881600), (881600, 1120000)]


def test_short_songs_are_one_chunk():
    assert plan_chunks(tone(30)) == [(0, 30 * RATE)]
    assert plan_chunks(tone(3)) == [(0, 3 * RATE)]
    assert plan_chunks(torch.zeros(0)) == []


def test_every_chunk_is_at_most_30_s_and_they_tile_the_song():
    chunks = plan_chunks(torch.randn(200 * RATE))
    assert chunks[0][0] == 0 and chunks[-1][1] == 200 * RATE
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert all(0 < end - start <= 30 * RATE for start, end in chunks)


def test_mono_mix_and_resampling_to_16k():
    stereo = torch.stack([torch.ones(44100), -torch.ones(44100)])[None]  # cancels out when mixed
    mono = to_mono(stereo, 44100, WHISPER_RATE)
    assert mono.shape == (1, 16000)
    assert mono.abs().max() < 1e-6
    same_rate = to_mono(torch.ones(2, 1, 800), 16000, WHISPER_RATE)
    assert same_rate.shape == (2, 800) and torch.equal(same_rate, torch.ones(2, 800))


@pytest.mark.parametrize("bad", [torch.zeros(2, 100), torch.zeros(1, 1, 1, 100)])
def test_wrong_audio_layout_is_a_clear_error(whisper, bad):
    with pytest.raises(HeartMuLaError, match=r"\[batch, channels, samples\]"):
        transcribe(whisper.model, whisper.processor, bad, 48000)


def test_exact_text_per_song_with_chunks_routed_across_mini_batches(whisper):
    # song 0: 70 s -> 3 chunks; song 1: 10 s then zero padding (as a shorter song in a batch) -> 1 chunk;
    # song 2: all padding -> nothing to hear. 4 chunks in mini-batches of 3 mix songs 0 and 1.
    long_song = tone(70, rate=48000, gaps=[(27.0, 27.5), (55.0, 55.2)])
    batch = torch.zeros(3, 2, long_song.numel())
    batch[0] = long_song
    batch[1, :, : 10 * 48000] = long_song[: 10 * 48000]
    progress = []
    texts = transcribe(
        whisper.model, whisper.processor, batch, 48000, batch_size=3, on_chunk=lambda d, t: progress.append((d, t))
    )
    assert texts == ["music\nmusic\nmusic", "music", ""]
    assert progress == [(3, 4), (4, 4)]
    alone = transcribe(whisper.model, whisper.processor, batch[1:2, :, : 10 * 48000], 48000)
    assert alone == ["music"]


def test_timestamps_are_shifted_by_the_chunk_start(whisper):
    song = tone(40, gaps=[(27.0, 27.5)])[None, None]
    (text,) = transcribe(whisper.model, whisper.processor, song, RATE, language="en", timestamps=True)
    assert text == "[00:00.00 - 00:01.00] music\n[00:27.45 - 00:28.45] music"


def test_language_choice_and_unknown_language(whisper):
    song = tone(2)[None, None]
    assert transcribe(whisper.model, whisper.processor, song, RATE, language="zh", num_beams=1) == ["music"]
    with pytest.raises(HeartMuLaError, match="unknown language 'xx'.*en, ja, zh"):
        transcribe(whisper.model, whisper.processor, song, RATE, language="xx")


def test_cancel_check_runs_per_mini_batch(whisper):
    class Stop(Exception):
        pass

    def cancel():
        raise Stop

    with pytest.raises(Stop):
        transcribe(whisper.model, whisper.processor, tone(2)[None, None], RATE, check_cancel=cancel)


def test_loader_names_the_folder_and_the_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_transcriber(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clap"}))
    with pytest.raises(CheckpointError) as err:
        load_transcriber(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "model_type 'clap'" in message and "no weight file" in message and "no tokenizer file" in message
