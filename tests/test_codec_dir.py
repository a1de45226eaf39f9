"""The README's own recipe: `quantize` the codec into HeartCodec-oss-fp8 beside HeartCodec-oss, then
`generate` / `batch` with that folder. With two codecs in --model-dir the error says how to pick
one (--codec-dir), and --codec-dir picks it."""

from __future__ import annotations

import json
import shutil

import pytest

from heartmula_core.__main__ import main
from heartmula_core.codes import load_codes

from test_cli_errors import CKPT, one_error_line


@pytest.fixture(scope="module")
def two_codecs(tmp_path_factory):
    models = tmp_path_factory.mktemp("models") / "HeartMuLa"
    shutil.copytree(CKPT, models)
    assert main(["quantize", "--model-dir", str(models / "HeartCodec-oss"), "--out",
                 str(models / "HeartCodec-oss-fp8")]) == 0
    return models


def generate(models, out, *extra):
    return ["generate", "--model-dir", str(models), "--tags", "piano", "--lyrics", "la la", "--seconds", "1",
            "--top-k", "1", "--steps", "1", "--device", "cpu", "--out", str(out), *extra]


def test_generate_says_how_to_pick_a_codec_and_codec_dir_picks_it(two_codecs, tmp_path, capsys):
    assert main(generate(two_codecs, tmp_path / "a.wav")) == 2
    line = one_error_line(capsys)
    assert "holds several HeartCodec folders (HeartCodec-oss, HeartCodec-oss-fp8): pick one with --codec-dir" in line
    assert "download" not in line  # both are there: nothing to fetch
    assert not (tmp_path / "a.wav").exists()
    fp8 = two_codecs / "HeartCodec-oss-fp8"
    assert main(generate(two_codecs, tmp_path / "a.wav", "--codec-dir", str(fp8), "--weight-dtype", "fp8_e4m3fn",
                         "--codes-out", str(tmp_path / "a.safetensors"))) == 0
    assert (tmp_path / "a.wav").stat().st_size > 0
    assert main(generate(two_codecs, tmp_path / "b.wav", "--codec-dir", str(two_codecs / "nowhere"))) == 2
    assert "HeartCodec folder" in one_error_line(capsys)


def test_batch_takes_codec_dir_too(two_codecs, tmp_path, capsys):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "a", "tags": "piano", "lyrics": "la la", "seconds": 1, "seed": 2,
                                "top_k": 1, "decode_steps": 1}) + "\n")
    argv = ["batch", str(jobs), "--model-dir", str(two_codecs), "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main(argv) == 2
    assert "pick one with --codec-dir" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main([*argv, "--codec-dir", str(two_codecs / "HeartCodec-oss-fp8"), "--weight-dtype", "fp8_e4m3fn"]) == 0
    assert load_codes(tmp_path / "out" / "a.codes.safetensors")[1].tolist()[0] >= 1


@pytest.mark.parametrize("door", ["generate", "batch"])
@pytest.mark.parametrize("given", ["root", "lm"])
def test_codec_dir_naming_a_root_of_several_or_an_lm_says_so(two_codecs, tmp_path, capsys, door, given):
    """--codec-dir naming the LM folder was read as a codec ("the audio ids do not fit together")."""
    codec_dir = two_codecs if given == "root" else two_codecs / "HeartMuLa-oss-3B"
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "a", "tags": "piano", "lyrics": "la la", "seconds": 1, "seed": 2}) + "\n")
    argv = generate(two_codecs, tmp_path / "a.wav") if door == "generate" else \
        ["batch", str(jobs), "--model-dir", str(two_codecs), "--out", str(tmp_path / "a.wav"), "--device", "cpu"]
    assert main([*argv, "--codec-dir", str(codec_dir)]) == 2
    line = one_error_line(capsys)
    assert str(codec_dir) in line and line.endswith("with --codec-dir (the codec folder to use)."), line
    assert ("holds several HeartCodec folders" if given == "root" else
            "is a HeartMuLa LM folder (its config.json says model_type 'heartmula'), not a HeartCodec folder") in line
    assert not (tmp_path / "a.wav").exists()


def test_a_model_folder_of_another_kind_is_named_before_its_weights_are_read(tmp_path, capsys):
    """(The codec given as the LM was read as one: a list of missing and unexpected weights.)"""
    assert main(["sample", "--model-dir", str(CKPT / "HeartCodec-oss"), "--tags", "piano", "--lyrics", "la",
                 "--codes-out", str(tmp_path / "c.safetensors")]) == 2
    assert one_error_line(capsys) == (f"error: {CKPT / 'HeartCodec-oss'} is a HeartCodec folder (its config.json says "
                                      "model_type 'heartcodec'), not a HeartMuLa LM folder: give a HeartMuLa LM folder.")
    assert not (tmp_path / "c.safetensors").exists()
