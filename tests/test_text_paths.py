"""What a text value that looks like a path means (heartmula_core/text_input.py): on the command line
and in a jobs file, a one-line value naming something on disk, or ending like a text file, is a path;
a readable regular file gives its text, anything else (a folder, a FIFO, a missing file, bytes that
are not UTF-8) is one error, never sung as words. In a jobs file paths are relative to the jobs file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from heartmula_core.__main__ import main
from heartmula_core.errors import PromptError
from heartmula_core.text_input import text_or_file

from test_cli_errors import CKPT, no_model_loads, one_error_line  # noqa: F401  (fixture)


def sample(tmp_path, lyrics: str):
    return ["sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", lyrics, "--seconds", "0.4",
            "--device", "cpu", "--codes-out", str(tmp_path / "codes.safetensors")]


def kinds(tmp_path) -> dict[str, Path]:
    """A folder, a FIFO, a missing text file and a file that is not UTF-8."""
    folder = tmp_path / "verses"
    folder.mkdir()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    return {"a folder": folder, "a FIFO": fifo, "does not exist": tmp_path / "missing.txt", "not UTF-8": latin}


@pytest.mark.parametrize("what", ["a folder", "a FIFO", "does not exist", "not UTF-8"])
def test_a_path_to_something_that_is_not_a_text_file_is_an_error(tmp_path, capsys, no_model_loads, what):
    path = kinds(tmp_path)[what]
    assert main(sample(tmp_path, str(path))) == 2  # a FIFO would block a reader: it is never opened
    line = one_error_line(capsys)
    assert str(path) in line and what in line, line
    assert not (tmp_path / "codes.safetensors").exists()


def test_text_is_text_and_a_text_file_is_read(tmp_path):
    (tmp_path / "words.txt").write_text("[Verse]\nfrom a file\n", encoding="utf-8")
    assert text_or_file("piano,happy", "tags", base=tmp_path) == "piano,happy"
    assert text_or_file("[Verse]\nla la.txt", "lyrics", base=tmp_path) == "[Verse]\nla la.txt"  # two lines: text
    assert text_or_file("words.txt", "lyrics", base=tmp_path) == "[Verse]\nfrom a file\n"
    assert text_or_file(str(tmp_path / "words.txt"), "lyrics") == "[Verse]\nfrom a file\n"
    with pytest.raises(PromptError, match="which does not exist"):
        text_or_file("words.txt", "lyrics", base=tmp_path / "elsewhere")


def test_jobs_file_paths_are_relative_to_the_jobs_file(tmp_path, monkeypatch, capsys):
    from heartmula_core.batch.jobs import parse_jobs

    project = tmp_path / "project"
    (project / "lyrics").mkdir(parents=True)
    (project / "lyrics" / "one.txt").write_text("[Verse]\nline one\n", encoding="utf-8")
    good = {"id": "a", "tags": "piano", "lyrics": "lyrics/one.txt", "seconds": 2, "seed": 1}
    jobs = project / "jobs.jsonl"
    jobs.write_text(json.dumps(good) + "\n")
    monkeypatch.chdir(tmp_path)  # the working folder is not the jobs file's
    [job] = parse_jobs(jobs)
    assert job.lyrics == "[Verse]\nline one\n"

    lines = [good, {**good, "id": "b", "lyrics": "lyrics"}, {**good, "id": "c", "tags": "lyrics/none.txt"}]
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["batch", str(jobs), "--model-dir", str(CKPT), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"line 2: The lyrics name {project / 'lyrics'}, which is a folder" in err, err
    assert f"line 3: The tags name the file {project / 'lyrics' / 'none.txt'}, which does not exist" in err, err
    assert not (tmp_path / "out").exists()
