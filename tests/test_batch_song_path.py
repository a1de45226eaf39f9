"""A jobs file reaches everything the command line has, through the same song path: a job that continues
a saved song (``continue_from`` + ``keep_seconds``) on fp8 weights (``batch --weight-dtype``) gives the
codes ``sample`` gives with the same settings, and a line that ``sample`` would refuse is refused with
its line number before any model loads, with nothing written."""

from __future__ import annotations

import json

import pytest
import torch

from heartmula_core.__main__ import main
from heartmula_core.batch import driver
from heartmula_core.codes import load_codes, save_codes

from batch_jobs import CKPT

TAGS, LYRICS = "piano,happy", "[Verse]\nla la la\n"


@pytest.fixture(scope="module")
def saved_song(tmp_path_factory):
    """Two greedy songs of 2 s and 1.6 s, as `sample` writes them."""
    folder = tmp_path_factory.mktemp("saved")
    path = folder / "song.safetensors"
    assert main(["sample", "--model-dir", str(CKPT), "--tags", TAGS, "--lyrics", LYRICS, "--seconds", "2",
                 "--top-k", "1", "--device", "cpu", "--codes-out", str(path)]) == 0
    codes, lengths = load_codes(path)
    two = folder / "two.safetensors"
    save_codes(two, torch.cat([codes, codes.flip(-1)]), torch.tensor([int(lengths[0]), 20]))
    return two


def test_a_continued_fp8_job_gives_the_codes_sample_gives(tmp_path, saved_song, capsys):
    jobs = tmp_path / "jobs" / "jobs.jsonl"
    jobs.parent.mkdir()
    (jobs.parent / "songs").mkdir()
    (jobs.parent / "songs" / "start.safetensors").write_bytes(saved_song.read_bytes())
    job = {"id": "vary", "tags": TAGS, "lyrics": LYRICS, "seconds": 3, "seed": 7, "batch": 2, "top_k": 20,
           "cfg": 2.0, "continue_from": "songs/start.safetensors", "keep_seconds": 1.2, "decode_steps": 2}
    jobs.write_text(json.dumps(job) + "\n")  # continue_from: relative to the jobs file, not the working folder
    out = tmp_path / "out"
    assert main(["batch", str(jobs), "--model-dir", str(CKPT), "--out", str(out), "--device", "cpu",
                 "--weight-dtype", "fp8_e4m3fn"]) == 0
    expected = tmp_path / "sampled.safetensors"
    assert main(["sample", "--model-dir", str(CKPT), "--tags", TAGS, "--lyrics", LYRICS, "--seconds", "3",
                 "--seed", "7", "--batch", "2", "--top-k", "20", "--cfg", "2.0", "--device", "cpu",
                 "--continue-from", str(saved_song), "--keep-seconds", "1.2", "--weight-dtype", "fp8_e4m3fn",
                 "--codes-out", str(expected)]) == 0
    ours, theirs = load_codes(out / "vary.codes.safetensors"), load_codes(expected)
    assert ours[0].shape[0] == 4  # 2 saved songs x batch 2
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    assert torch.equal(ours[0][:, :, :15], load_codes(saved_song)[0][:, :, :15].repeat_interleave(2, 0))
    [entry] = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert entry["settings"]["continue_from"] == "songs/start.safetensors" and entry["settings"]["keep_seconds"] == 1.2
    assert entry["weights"] == {"weight_dtype": "fp8_e4m3fn", "loras": []}
    # the same line on other weights is another song: a rerun without --weight-dtype is refused, not skipped
    assert main(["batch", str(jobs), "--model-dir", str(CKPT), "--out", str(out), "--device", "cpu"]) == 2
    assert "finished in the manifest with other weights (--weight-dtype fp8_e4m3fn" in capsys.readouterr().err


def test_lines_sample_would_refuse_are_listed_before_any_model_loads(tmp_path, saved_song, monkeypatch, capsys):
    def no_models(opts):
        raise AssertionError("a runner was made for a jobs file with bad lines")

    monkeypatch.setattr(driver, "make_runner", no_models)
    good = {"id": "a", "tags": TAGS, "lyrics": LYRICS, "seconds": 3, "seed": 1}
    lines = [good, {**good, "id": "b", "temperature": 0.0005}, {**good, "id": "c", "cfg": 500},
             {**good, "id": "d", "top_k": 0},
             {**good, "id": "e", "continue_from": str(saved_song), "keep_seconds": 1.9},  # song 1 is 1.6 s
             {**good, "id": "f", "keep_seconds": 1}]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    assert main(["batch", str(jobs), "--model-dir", str(CKPT), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "5 problem(s); nothing was run" in err
    for line, says in [(2, "'temperature' must be a finite number between 0.001 and 100, got 0.0005"),
                       (3, "'cfg' must be a finite number between 0 and 100, got 500.0"),
                       (4, "'top_k' must be >= 1, got 0"),
                       (5, "'keep_seconds' = 1.9 s is longer than song 1 of the codes to continue"),
                       (6, "'keep_seconds' says how much of a song to keep; give the song with 'continue_from'")]:
        assert f"line {line}: {says}" in err, (line, err)
    assert not out.exists()
