"""Listening nodes through the ComfyUI layer: the real loaders find tiny Whisper / CLAP folders,
load them into ModelPatchers, and every node runs on a batch of songs."""

from __future__ import annotations

import shutil

import pytest
import torch

from heartmula_node_env import comfy_home  # noqa: F401  (fixture)
from tiny_listening_models import CLAP_RATE, build_tiny_clap, build_tiny_whisper

RATE = 48000


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("listening_models")
    return build_tiny_whisper(root / "HeartTranscriptor-oss"), build_tiny_clap(root / "tiny-clap")


@pytest.fixture
def home(comfy_home, tiny_models):  # noqa: F811
    whisper, clap = tiny_models
    shutil.copytree(whisper, comfy_home.models / whisper.name)
    shutil.copytree(clap, comfy_home.base / "models" / "CLAP" / clap.name)
    return comfy_home


@pytest.fixture
def nodes(pack):
    import importlib

    return (importlib.import_module(f"{pack.__name__}.nodes.transcription"),
            importlib.import_module(f"{pack.__name__}.nodes.scoring"))


def _types(pack):
    import importlib

    return importlib.import_module(f"{pack.__name__}.nodes.types")


def _errors(pack):
    """The pack's own error module (the pack imports heartmula_core as its subpackage)."""
    import importlib

    return importlib.import_module(f"{pack.__name__}.heartmula_core.errors")


def tone(seconds, freq=440.0, rate=RATE):
    t = torch.arange(int(seconds * rate)) / rate
    return 0.3 * torch.sin(2 * torch.pi * freq * t)


def takes_batch(lengths_s, rate=RATE):
    """AUDIO batch of stereo tones, shorter takes zero-padded to the longest (as HeartCodec Decode does)."""
    longest = int(max(lengths_s) * rate)
    wave = torch.zeros(len(lengths_s), 2, longest)
    for i, seconds in enumerate(lengths_s):
        wave[i, :, : int(seconds * rate)] = tone(seconds, 220.0 * (i + 1), rate)
    return {"waveform": wave, "sample_rate": rate}


def prompt_like(tags="piano,happy", lyrics="[Verse]\nMusic, music!"):
    from heartmula_core.lm.prompt import Prompt

    return Prompt(tokens=torch.zeros(1, 9, dtype=torch.long), mask=torch.zeros(1, 9, dtype=torch.bool),
                  muq_index=0, tags=tags, lyrics=lyrics)


def test_loaders_list_the_folders_and_load_into_patchers(home, nodes):
    transcription, scoring = nodes
    whisper_inputs = transcription.LoadHeartTranscriptor.INPUT_TYPES()["required"]
    assert whisper_inputs["model"][1]["options"][0] == "HeartTranscriptor-oss"
    clap_options = scoring.LoadCLAP.INPUT_TYPES()["required"]["model"][1]["options"]
    assert clap_options == ["tiny-clap", "larger_clap_music"]  # installed first, then the official one

    (transcriptor,) = home.run(transcription.LoadHeartTranscriptor, model="HeartTranscriptor-oss",
                               dtype="auto", download_if_missing=False)
    assert transcriptor.dtype == torch.float32  # CPU
    assert type(transcriptor.model).__name__ == "WhisperForConditionalGeneration"
    assert transcriptor.patcher.size > 0
    (clap,) = home.run(scoring.LoadCLAP, model="tiny-clap", dtype="fp32", download_if_missing=False)
    assert type(clap.model).__name__ == "ClapModel"


def test_missing_model_names_the_folders_and_the_download_command(home, nodes, pack):
    CheckpointError = _errors(pack).CheckpointError

    transcription, scoring = nodes
    shutil.rmtree(home.models / "HeartTranscriptor-oss")
    with pytest.raises(CheckpointError, match="hf download HeartMuLa/HeartTranscriptor-oss"):
        home.run(transcription.LoadHeartTranscriptor, model="HeartTranscriptor-oss", dtype="auto",
                 download_if_missing=False)
    with pytest.raises(CheckpointError, match="'other' was not found in .*CLAP"):
        home.run(scoring.LoadCLAP, model="other", dtype="fp32", download_if_missing=False)


def test_transcribe_lyrics_gives_one_text_per_song(home, nodes):
    transcription, _ = nodes
    (transcriptor,) = home.run(transcription.LoadHeartTranscriptor, model="HeartTranscriptor-oss",
                               dtype="fp32", download_if_missing=False)
    schema = transcription.TranscribeLyrics.GET_SCHEMA()
    assert schema.outputs[0].is_output_list
    (texts,) = home.run(transcription.TranscribeLyrics, transcriptor=transcriptor, audio=takes_batch([35, 4]),
                        language="auto", beams=2, temperature_fallback=True, timestamps=False)
    assert texts == ["music\nmusic", "music"]
    assert home.loads and home.loads[-1][0][0] is transcriptor.patcher
    assert home.progress and home.progress[-1][0] == home.progress[-1][1]


def test_clap_score_uses_the_prompt_tags_and_scores_each_song(home, nodes):
    _, scoring = nodes
    (clap,) = home.run(scoring.LoadCLAP, model="tiny-clap", dtype="fp32", download_if_missing=False)
    audio = takes_batch([2.0, 1.5, 2.0])
    audio["waveform"][2] = audio["waveform"][0]
    scores, summary = home.run(scoring.ClapScore, clap=clap, audio=audio, text="", prompt=prompt_like())
    assert len(scores) == 3 and all(-1 <= s <= 1 for s in scores)
    assert scores[0] == pytest.approx(scores[2], abs=1e-6)
    assert 'vs "piano, happy"' in summary
    typed, _ = home.run(scoring.ClapScore, clap=clap, audio=audio, text="piano, happy")
    assert typed == pytest.approx(scores, abs=1e-7)
    assert home.loads[-1][0][0] is clap.patcher
    with pytest.raises(Exception, match="type a description"):
        home.run(scoring.ClapScore, clap=clap, audio=audio, text="  ")


def test_lyric_accuracy_takes_lists_and_falls_back_to_the_prompt_lyrics(nodes):
    _, scoring = nodes
    assert scoring.LyricAccuracy.GET_SCHEMA().is_input_list
    wer, cer, summary = scoring.LyricAccuracy.execute(transcription=["music music", "music", "muzik"],
                                                      reference=[""], prompt=[prompt_like()]).args
    assert wer == [0.0, 0.5, 1.0]
    assert cer == pytest.approx([0.0, 0.5, 7 / 10])  # "musicmusic" vs "muzik": s->z, c->k, 5 deletions
    assert "song 2: WER 1.000" in summary
    wer, _, _ = scoring.LyricAccuracy.execute(transcription=["a b"], reference=["a b c d"]).args
    assert wer == [0.5]


def test_pick_best_take_is_the_argmax_of_weighted_scores_with_matching_codes(pack, nodes):
    _, scoring = nodes
    codes_type = _types(pack).HeartMuLaCodes
    audio = takes_batch([1.0, 0.5, 0.75, 1.0], rate=CLAP_RATE)
    # 12.5 code frames per second = 640 samples per frame at 8 kHz: take 2 keeps 9 * 640 samples
    codes = codes_type(codes=torch.arange(4 * 8 * 13).reshape(4, 8, 13), lengths=torch.tensor([13, 7, 9, 13]))
    clap = [0.30, 0.25, 0.28, 0.10]
    cer = [0.40, 0.10, 0.05, 0.00]
    # totals with weights 1 and -1: -0.10, 0.15, 0.23, 0.10 -> take 2
    best_audio, best_codes, index, summary = scoring.PickBestTake.execute(
        audio=[audio], score_a=clap, weight_a=[1.0], codes=[codes], score_b=cer, weight_b=[-1.0]).args
    assert index == 2
    assert torch.equal(best_audio["waveform"][0], audio["waveform"][2][:, : 9 * 640])
    assert best_audio["sample_rate"] == CLAP_RATE
    assert torch.equal(best_codes.codes, codes.codes[2:3, :, :9]) and best_codes.lengths.tolist() == [9]
    assert "take 2" in summary and "<- best" in summary.splitlines()[2]
    # CLAP alone picks take 0; audio given as a list of single songs works the same
    singles = [{"waveform": audio["waveform"][i : i + 1], "sample_rate": CLAP_RATE} for i in range(4)]
    best_audio, no_codes, index, _ = scoring.PickBestTake.execute(audio=singles, score_a=clap, weight_a=[1.0]).args
    assert index == 0 and no_codes is None
    # without codes, only the zero padding after the take is dropped
    best_audio, _, index, _ = scoring.PickBestTake.execute(audio=[audio], score_a=[0, 1, 0, 0], weight_a=[1.0]).args
    assert index == 1 and best_audio["waveform"].shape[-1] == int(0.5 * CLAP_RATE)


def test_pick_best_take_rejects_mismatched_batches(pack, nodes):
    _, scoring = nodes
    HeartMuLaError = _errors(pack).HeartMuLaError

    audio = takes_batch([0.1, 0.1, 0.1], rate=CLAP_RATE)
    with pytest.raises(HeartMuLaError, match="score_a has 2 values for 3 takes"):
        scoring.PickBestTake.execute(audio=[audio], score_a=[0.1, 0.2], weight_a=[1.0])
    with pytest.raises(HeartMuLaError, match="score_b has 4 values for 3 takes"):
        scoring.PickBestTake.execute(audio=[audio], score_a=[0.1, 0.2, 0.3], weight_a=[1.0],
                                     score_b=[1, 2, 3, 4], weight_b=[-1.0])
    codes = _types(pack).HeartMuLaCodes(codes=torch.zeros(2, 8, 5, dtype=torch.long),
                                            lengths=torch.tensor([5, 5]))
    with pytest.raises(HeartMuLaError, match="codes hold 2 takes but audio holds 3"):
        scoring.PickBestTake.execute(audio=[audio], score_a=[0.1, 0.2, 0.3], weight_a=[1.0], codes=[codes])


def test_pack_registers_the_listening_nodes(pack):
    ids = {node.GET_SCHEMA().node_id for node in pack.node_classes()}
    assert {"HeartMuLaTranscriptorLoader", "HeartMuLaTranscribeLyrics", "HeartMuLaClapLoader",
            "HeartMuLaClapScore", "HeartMuLaLyricAccuracy", "HeartMuLaPickBestTake"} <= ids
