"""`sample` / `generate --continue-from CODES [--keep-seconds S]`: the written codes keep the whole
song, and every mistake is one `error:` line before the LM loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from heartmula_core.__main__ import main
from heartmula_core.codes import load_codes, save_codes
from test_cli_errors import CKPT, no_model_loads, one_error_line  # noqa: F401  (fixture)


def sample(out: Path, *extra, seconds="2", seed="0"):
    return ["sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", "la la", "--seconds", seconds,
            "--device", "cpu", "--seed", seed, "--top-k", "1", "--codes-out", str(out), *extra]


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """A greedy song of 2 s (25 frames), as `sample` writes it."""
    path = tmp_path_factory.mktemp("song") / "song.safetensors"
    assert main(sample(path)) == 0
    codes, lengths = load_codes(path)
    assert lengths.tolist() == [25]
    return path


def test_extending_keeps_the_whole_song_and_matches_the_longer_take(tmp_path, song, capsys):
    longer, extended = tmp_path / "longer.safetensors", tmp_path / "extended.safetensors"
    assert main(sample(longer, seconds="3.2")) == 0
    assert main(sample(extended, "--continue-from", str(song), seconds="3.2")) == 0
    assert "continued from [25] frames" in capsys.readouterr().out
    codes, lengths = load_codes(extended)
    assert lengths.tolist() == [40] and torch.equal(codes[:, :, :25], load_codes(song)[0])
    assert torch.equal(codes, load_codes(longer)[0]), "greedy: extending gives the uninterrupted song"


def test_a_variation_keeps_the_first_seconds_of_every_song(tmp_path, song):
    two = tmp_path / "two.safetensors"
    codes, _ = load_codes(song)
    save_codes(two, torch.cat([codes, codes.flip(-1)]), torch.tensor([25, 20]))
    out = tmp_path / "vary.safetensors"
    assert main(sample(out, "--continue-from", str(two), "--keep-seconds", "1.2", "--batch", "2", "--top-k", "50",
                       seconds="2.4")) == 0
    varied, lengths = load_codes(out)
    assert varied.shape[0] == 4 and all(15 < n <= 30 for n in lengths.tolist())  # 2 songs x 2 variations
    assert torch.equal(varied[:2, :, :15], codes[:, :, :15].expand(2, -1, -1))
    assert torch.equal(varied[2:, :, :15], codes.flip(-1)[:, :, :15].expand(2, -1, -1))


def test_generate_continues_and_decodes_the_whole_song(tmp_path, song):
    out, codes_out = tmp_path / "song.wav", tmp_path / "codes.safetensors"
    argv = ["generate", "--model-dir", str(CKPT / "HeartMuLa-oss-3B"), "--tags", "piano", "--lyrics", "la la",
            "--seconds", "2.4", "--top-k", "1", "--device", "cpu", "--steps", "1", "--out", str(out),
            "--codes-out", str(codes_out), "--continue-from", str(song), "--keep-seconds", "1"]
    assert main(argv) == 0
    import soundfile

    codes, lengths = load_codes(codes_out)
    assert lengths.tolist() == [30] and soundfile.info(str(out)).frames == 30 * 3840


@pytest.mark.parametrize("extra,expect", [
    (["--keep-seconds", "5"], r"--keep-seconds = 5 s is longer than song 0 .* 2 s \(25 frames\)"),
    (["--keep-seconds", "nan"], "--keep-seconds must be a finite number"),
    (["--keep-seconds", "0"], "--keep-seconds = 0 keeps no frame"),
    ([], r"counts the whole song: 25 frames \(2.0 s\) leave nothing to write after the 25 kept frames"),
])
def test_bad_continuations_are_one_error_line(tmp_path, song, capsys, no_model_loads, extra, expect):
    assert main(sample(tmp_path / "out.safetensors", "--continue-from", str(song), *extra)) == 2
    assert re.search(expect, one_error_line(capsys))


def test_codes_of_another_model_are_refused_before_loading(tmp_path, capsys, no_model_loads):
    four = tmp_path / "four.safetensors"
    from safetensors.torch import save_file

    save_file({"codes": torch.zeros(1, 4, 10, dtype=torch.long), "lengths": torch.tensor([10])}, str(four))
    assert main(sample(tmp_path / "out.safetensors", "--continue-from", str(four))) == 2
    assert "got [1, 4, 10]: 4 codes per frame, so they come from another kind of model" in one_error_line(capsys)
    special = tmp_path / "special.safetensors"
    save_file({"codes": torch.full((1, 8, 10), 65, dtype=torch.long), "lengths": torch.tensor([10])}, str(special))
    assert main(sample(tmp_path / "out.safetensors", "--continue-from", str(special))) == 2
    assert "is outside the codebook (0..63)" in one_error_line(capsys)


def test_keep_seconds_needs_a_song_and_the_output_is_not_the_input(tmp_path, song, capsys, no_model_loads):
    assert main(sample(tmp_path / "out.safetensors", "--keep-seconds", "1")) == 2
    assert "give the song with --continue-from" in one_error_line(capsys)
    assert main(sample(song, "--continue-from", str(song), seconds="4")) == 2
    assert "is the input file" in one_error_line(capsys)


def test_a_missing_codes_file_is_named(tmp_path, capsys, no_model_loads):
    assert main(sample(tmp_path / "out.safetensors", "--continue-from", str(tmp_path / "nope.safetensors"))) == 2
    assert "nope.safetensors does not exist" in one_error_line(capsys)
