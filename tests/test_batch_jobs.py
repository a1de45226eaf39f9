"""The jobs file of `batch`: every bad line reported with its line number, before any model loads."""

import json

import pytest

from heartmula_core.__main__ import main
from heartmula_core.batch.jobs import MAX_SEED, JobsError, parse_jobs

GOOD = {"id": "a", "tags": "piano", "lyrics": "la la", "seconds": 2, "seed": 1}


def _parse(tmp_path, *lines, defaults=None):
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return parse_jobs(path, defaults)


def _problems(tmp_path, *lines) -> str:
    with pytest.raises(JobsError) as info:
        _parse(tmp_path, *lines)
    return str(info.value)


def test_good_job_gets_defaults_and_decode_seed_from_seed(tmp_path):
    [job] = _parse(tmp_path, "", GOOD)
    s = job.settings
    assert job.line == 2 and s.seconds == 2.0 and s.seed == 1 and s.decoder_seed == 1
    assert (s.temperature, s.top_k, s.cfg_scale, s.decode_steps, s.decode_guidance, s.batch_size) == (1.0, 50, 1.5, 10, 1.25, 1)
    [job] = _parse(tmp_path, {**GOOD, "decode_seed": 7, "top_k": 5}, defaults={"top_k": 9, "cfg": 2.0})
    assert (job.settings.decoder_seed, job.settings.top_k, job.settings.cfg_scale) == (7, 5, 2.0)


def test_largest_seed_is_accepted(tmp_path):
    [job] = _parse(tmp_path, {**GOOD, "seed": MAX_SEED})
    assert job.settings.seed == MAX_SEED


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    text = _problems(
        tmp_path,
        GOOD,
        "{not json",
        {"id": "b", "tags": "x", "lyrics": "y", "seconds": 2},
        {**GOOD, "id": "c", "seconds": "2"},
        {**GOOD, "id": "A"},
        {**GOOD, "id": "../etc"},
        {**GOOD, "id": "d", "seconds": float("nan")},
        {**GOOD, "id": "e", "temperature": float("inf")},
        {**GOOD, "id": "f", "seed": -1},
        {**GOOD, "id": "g", "seed": 1.0},
        {**GOOD, "id": "h", "top_k": True},
        {**GOOD, "id": "i", "temprature": 1.0},
        {**GOOD, "id": "j", "lyrics": "  "},
        [1, 2],
    )
    expected = [
        ("line 2:", "not valid JSON"),
        ("line 3:", "missing field 'seed'"),
        ("line 4:", "'seconds' must be a number, got \"2\""),
        ("line 5:", "duplicate id 'a' (line 1)"),
        ("line 6:", "cannot be used as a file name"),
        ("line 7:", "'seconds' must be a positive, finite number of seconds (at most 86400), got nan"),
        ("line 8:", "'temperature' must be a finite number between 0.001 and 100, got inf"),
        ("line 9:", "'seed' must be between 0 and 18446744073709551615, got -1"),
        ("line 10:", "'seed' must be a whole number (write 1 rather than 1.0)"),
        ("line 11:", "'top_k' must be a whole number, got true"),
        ("line 12:", "unknown field(s) 'temprature'"),
        ("line 13:", "'lyrics' is empty"),
        ("line 14:", "expected a JSON object"),
    ]
    for where, what in expected:
        assert any(where in line and what in line for line in text.splitlines()), (where, what, text)
    assert "13 problem(s); nothing was run" in text
    assert "line 1:" not in text


def test_outputs_of_a_batch_job_may_not_collide_with_another_id(tmp_path):
    text = _problems(tmp_path, {**GOOD, "batch": 2}, {**GOOD, "id": "a_1"})
    assert "line 2: output name 'a_1' also made by 'a' (line 1)" in text


def test_reserved_and_trailing_dot_ids_are_refused(tmp_path):
    text = _problems(tmp_path, {**GOOD, "id": "con"}, {**GOOD, "id": "x."})
    assert "line 1:" in text and "reserved file name on Windows" in text
    assert "line 2:" in text and "not ending with '.'" in text


def test_lyrics_may_name_a_file(tmp_path):
    (tmp_path / "words.txt").write_text("[Verse]\nfrom a file\n")
    [job] = _parse(tmp_path, {**GOOD, "lyrics": str(tmp_path / "words.txt")})
    assert job.lyrics == "[Verse]\nfrom a file\n"


def test_cli_reports_bad_lines_before_loading_any_model(tmp_path, capsys):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "b", "seconds": 0}) + "\n")
    out = tmp_path / "out"
    rc = main(["batch", str(jobs), "--model-dir", str(tmp_path / "no-models-here"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "line 2: 'seconds' must be a positive, finite number of seconds (at most 86400), got 0" in err
    assert "no-models-here" not in err  # the model folder was never looked at
    assert not out.exists()


def test_bad_command_line_default_is_refused(tmp_path, capsys):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(GOOD) + "\n")
    rc = main(["batch", str(jobs), "--model-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--temperature", "nan"])
    assert rc == 2 and "'temperature' must be a finite number" in capsys.readouterr().err


def test_a_required_field_given_as_null_is_refused_not_defaulted(tmp_path):
    text = _problems(tmp_path, {**GOOD, "seed": None}, {**GOOD, "id": "b", "seconds": None},
                     {**GOOD, "id": None}, {**GOOD, "id": "c", "temperature": None})
    assert "line 1: 'seed' is null; give it a value" in text  # never seed 0 in silence
    assert "line 2: 'seconds' is null" in text and "line 3: 'id' is null" in text
    assert "line 4" not in text and "3 problem(s)" in text  # an optional field's null means "not given"


@pytest.mark.parametrize("kind", ["folder", "fifo", "device", "huge", "latin-1"])
def test_a_jobs_file_that_is_not_a_text_file_is_refused_unread(tmp_path, capsys, kind):
    import os

    jobs = tmp_path / "jobs.jsonl"
    if kind == "folder":
        jobs.mkdir()
    elif kind == "fifo":
        os.mkfifo(jobs)  # reading it would block for ever
    elif kind == "device":
        jobs = "/dev/zero"  # never ends
    elif kind == "huge":
        with open(jobs, "wb") as f:
            f.truncate(20 << 30)  # sparse
    else:
        jobs.write_bytes(json.dumps({**GOOD, "lyrics": "caf\xe9"}, ensure_ascii=False).encode("latin-1") + b"\n")
    out = tmp_path / "out"
    rc = main(["batch", str(jobs), "--model-dir", str(tmp_path), "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"error: Jobs file {jobs} "), lines
    assert {"folder": "is a folder, not a file", "fifo": "is a FIFO (named pipe), not a file",
            "device": "is a device, not a file", "huge": "is 21.5 GB; a jobs file may hold at most 1 GB",
            "latin-1": "is not UTF-8 text (byte"}[kind] in lines[0]
    assert not out.exists()


def test_only_a_newline_ends_a_line_and_json_strings_may_hold_other_line_breaks(tmp_path):
    """U+2028 and U+0085 (a Windows-1252 ellipsis read as Latin-1) are valid inside a JSON string, and
    str.splitlines() split the line there: a good file was refused as invalid JSON."""
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps({**GOOD, "lyrics": "la\u2028la\u0085la"}, ensure_ascii=False) + "\r\n"
                    + json.dumps({**GOOD, "id": "b"}) + "\n", encoding="utf-8")
    a, b = parse_jobs(path)
    assert a.lyrics == "la\u2028la\u0085la" and (a.line, b.line) == (1, 2)
