"""The batch output folder checked whole before any model loads, the manifest and lock never written
through a link nor cut unless they are what they claim, a full disk while appending, files of the
user's never replaced, and the run's own files recognised after a stop at any point."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heartmula_core.__main__ import main
from heartmula_core.batch import driver
from heartmula_core.batch import manifest as manifest_module
from heartmula_core.batch.jobs import JobsError, parse_jobs
from heartmula_core.batch.manifest import Manifest, ManifestError

from batch_jobs import CKPT, check_complete, manifest_lines, write_jobs

ROOT = Path(__file__).resolve().parents[1]
JOBS = [{"id": "a", "tags": "piano", "lyrics": "[Verse]\nla la\n", "seconds": 1, "seed": 1, "decode_steps": 2},
        {"id": "b", "tags": "rock", "lyrics": "[Verse]\nhey\n", "seconds": 1, "seed": 2, "decode_steps": 2}]


@pytest.fixture
def no_runner(monkeypatch):
    """Fail if a runner (the models) is started: every check here comes first."""
    monkeypatch.setattr(driver, "make_runner", lambda opts: pytest.fail("a model would load before the check"))


def batch(tmp_path, out, *extra, jobs=JOBS) -> int:
    return main(["batch", str(write_jobs(tmp_path / "jobs.jsonl", jobs)), "--model-dir", str(CKPT), "--out", str(out),
                 "--device", "cpu", *map(str, extra)])


def one_error(capsys, *parts) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for part in parts:
        assert part in err, (part, err)
    return err


def tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else p.is_dir())
            for p in sorted(folder.rglob("*"))} if folder.exists() else {}


TORN = b'{"id": "q", "settings": {}}\n{"id": "z", "sett'


def _make(case, out: Path, outside: Path) -> str:
    """Lay out a bad --out; returns what the error must say."""
    outside.write_bytes(TORN)
    if case == "out is a file":
        out.write_text("x")
        return "is a file, not a folder"
    if case == "out below a file":
        out.parent.write_text("x")  # out is plain/sub
        return "lies inside the file"
    out.mkdir()
    if case == "manifest is a folder":
        (out / "manifest.jsonl").mkdir()
        return "manifest.jsonl is a folder"
    if case == "lock is a folder":
        (out / ".batch.lock").mkdir()
        return ".batch.lock is a folder"
    if case == "manifest is a FIFO":
        os.mkfifo(out / "manifest.jsonl")
        return "manifest.jsonl is a FIFO"
    if case == "manifest links outside":
        (out / "manifest.jsonl").symlink_to(outside)
        return "manifest.jsonl is a symbolic link; a batch run keeps it as a file of its own and never writes"
    if case == "lock links outside":
        (out / ".batch.lock").symlink_to(outside)
        return ".batch.lock is a symbolic link"
    if case == "manifest is a hard link":
        os.link(outside, out / "manifest.jsonl")
        return "a file with another name too (a hard link)"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["out is a file", "out below a file", "manifest is a folder", "lock is a folder",
                                  "manifest is a FIFO", "manifest links outside", "lock links outside",
                                  "manifest is a hard link"])
def test_a_bad_output_folder_is_one_error_before_any_model_loads(tmp_path, capsys, no_runner, case):
    out = tmp_path / ("plain/sub" if case == "out below a file" else "out")
    outside = tmp_path / "elsewhere.jsonl"
    expected = _make(case, out, outside)
    write_jobs(tmp_path / "jobs.jsonl", JOBS)
    before = tree(tmp_path)
    assert batch(tmp_path, out) == 2
    one_error(capsys, expected)
    assert tree(tmp_path) == before  # nothing created, cut or written, the file outside included
    assert outside.read_bytes() == TORN


@pytest.mark.parametrize("line,why", [
    ('{"id": "a", "settings": [1, 2]}', "its 'settings' is not a JSON object"),
    ('{"settings": {}}', "not a JSON object with an 'id'"),
    ('{"id": 7}', "not a JSON object with an 'id'"),
    ('{"id": "a", "audio": "a.flac"}', "its 'audio' is not a list of file names"),
    ('{"id": "a", "x": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
    ('{"id": "a", "settings": {"seed": ' + "7" * 5000 + "}}", "a number too long to read (more than 4300 digits)"),
])
def test_manifest_lines_that_are_not_entries_are_named_and_nothing_is_cut(tmp_path, capsys, no_runner, line, why):
    out = tmp_path / "out"
    out.mkdir()
    data = ('{"id": "b", "settings": {}}\n' + line + '\n{"id": "c", "sett').encode()
    (out / "manifest.jsonl").write_bytes(data)
    assert batch(tmp_path, out) == 2
    err = one_error(capsys, "manifest.jsonl line 2 is not a manifest entry", why)
    assert "set_int_max_str_digits" not in err
    assert (out / "manifest.jsonl").read_bytes() == data


@pytest.mark.parametrize("line", ['{"id": "a", "audio": "a.flac"}', '{"id": 7}', '{"id": "a", "settings": 5}'])
def test_a_last_line_that_is_whole_json_but_no_entry_is_refused_not_cut(tmp_path, capsys, no_runner, line):
    """Without its newline such a line was taken for a torn append and cut off, and the run went on."""
    out = tmp_path / "out"
    out.mkdir()
    data = ('{"id": "b", "settings": {}}\n' + line).encode()
    (out / "manifest.jsonl").write_bytes(data)
    assert batch(tmp_path, out) == 2
    one_error(capsys, "manifest.jsonl line 2 is not a manifest entry", "fix or delete that line")
    assert (out / "manifest.jsonl").read_bytes() == data


def test_a_manifest_entry_may_hold_other_line_breaks_in_its_strings(tmp_path):
    """(A LoRA or codes path with U+2028 or U+0085 in its name split the entry in two on the rerun.)"""
    m = Manifest(tmp_path)
    m.append({"id": "a", "settings": {"continue_from": "x\u2028y\u0085z.safetensors"}, "audio": ["a.flac"]})
    m.append({"id": "b", "settings": {}})
    assert list(m.load()) == ["a", "b"]
    assert m.load()["a"]["settings"]["continue_from"] == "x\u2028y\u0085z.safetensors"


def test_only_a_torn_manifest_line_is_cut_and_a_whole_one_is_kept(tmp_path):
    m = Manifest(tmp_path)
    m.path.write_bytes(b'{"id": "a"}\nhello, not a manifest')
    with pytest.raises(ManifestError, match="ends in a line that is not a manifest entry \\(line 2\\)"):
        m.load()
    assert m.path.read_bytes() == b'{"id": "a"}\nhello, not a manifest'
    for torn in (b'{"id": "b", "se', b'{"i', b"{"):
        m.path.write_bytes(b'{"id": "a"}\n' + torn)
        assert list(m.load()) == ["a"] and m.path.read_bytes() == b'{"id": "a"}\n'
    m.path.write_bytes(b'{"id": "a"}\n{"id": "b"}')  # a whole entry without its newline (edited by hand)
    assert list(m.load()) == ["a", "b"]
    m.append({"id": "c"})
    assert m.path.read_bytes() == b'{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n'


@pytest.mark.parametrize("flag,value", [("--threads", 0), ("--threads", -1), ("--workers", 0),
                                        ("--cpus-per-worker", -3), ("--threads", 10**12), ("--workers", 5000)])
def test_counts_outside_1_to_4096_are_refused_before_any_model_loads(tmp_path, capsys, no_runner, flag, value):
    """(--threads 10**12 once reached torch.set_num_threads: a traceback after the folder was made.)"""
    assert batch(tmp_path, tmp_path / "out", flag, value) == 2
    one_error(capsys, f"{flag} must be between 1 and 4096, got {value}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,make", [("a.flac", lambda p: p.write_text("my own recording")),
                                       ("b.codes.safetensors", lambda p: p.mkdir()),
                                       ("a.flac", lambda p: p.symlink_to(p.parent / "elsewhere"))])
def test_a_file_of_the_users_with_a_jobs_name_is_never_replaced(tmp_path, capsys, no_runner, name, make):
    out = tmp_path / "out"
    out.mkdir()
    make(out / name)
    before = tree(out)
    assert batch(tmp_path, out) == 2
    job = name.split(".")[0]
    one_error(capsys, f"already holds 1 file(s)", f"{name} (job '{job}', line {1 if job == 'a' else 2})",
              "never replaced: move them elsewhere")
    assert tree(out) == before  # no .batch.lock left behind either


class FailingRunner:
    def start(self):
        raise driver.HeartMuLaError("the weights are corrupt")

    def close(self):
        pass


@pytest.mark.parametrize("stop", ["prompt too long", "model fails to load"])
def test_a_run_stopped_before_any_job_leaves_no_folder_and_no_lock(tmp_path, capsys, monkeypatch, stop):
    """--out (and the folders above it) made for the lock are removed again; a lock of an earlier run stays."""
    jobs = [{**JOBS[0], "lyrics": "la " * 4000}] if stop == "prompt too long" else JOBS
    monkeypatch.setattr(driver, "make_runner", lambda opts: FailingRunner())
    assert batch(tmp_path, tmp_path / "new" / "out", jobs=jobs) == 2
    one_error(capsys, "context holds 2048" if stop == "prompt too long" else "the weights are corrupt")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / ".batch.lock").write_bytes(b"")
    assert batch(tmp_path, kept, jobs=jobs) == 2
    assert tree(kept) == {".batch.lock": b""}


def test_a_full_disk_while_appending_the_manifest_is_one_error_then_a_rerun_finishes(tmp_path, capsys, monkeypatch):
    """The disk fills just as the first job's line is appended: one error line, no torn line, the
    run stops; the rerun knows that job's files as its own (the lock lists them) and finishes."""
    out = tmp_path / "out"
    real_write = os.write

    def full(fd, data):
        if bytes(data).startswith(b'{"id"'):
            real_write(fd, bytes(data)[:7])  # part of the line made it to the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(manifest_module.os, "write", full)
    assert batch(tmp_path, out) == 2
    one_error(capsys, f"Could not write batch manifest {out / 'manifest.jsonl'}: the disk is full")
    assert (out / "manifest.jsonl").read_bytes() == b""
    assert (out / "a.flac").exists() and json.loads((out / ".batch.lock").read_text()) == ["a.codes.safetensors",
                                                                                             "a.flac"]
    monkeypatch.setattr(manifest_module.os, "write", real_write)
    assert batch(tmp_path, out) == 0
    check_complete(out, JOBS)
    assert (out / ".batch.lock").read_bytes() == b""  # every file is the manifest's now


def test_another_format_on_a_rerun_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert batch(tmp_path, out, jobs=JOBS[:1]) == 0
    (out / ".batch.lock").write_text('["a.codes.safetensors", "a.flac"]')  # stopped after a's line, before the lock
    assert batch(tmp_path, out, jobs=JOBS[:1]) == 0
    assert (out / ".batch.lock").read_bytes() == b""  # the manifest owns a's files: the lock lets them go
    capsys.readouterr()
    assert batch(tmp_path, out, "--format", "wav", jobs=JOBS[:1]) == 2
    one_error(capsys, "job 'a' is finished in the manifest as a.flac, not as --format wav",
              "Run with the settings, weights and --format they were made with")
    assert not (out / "a.wav").exists()


HANG_BEFORE_THE_LINE = """
import sys, time
from heartmula_core.batch import manifest
real = manifest.Manifest.append
def append(self, entry):
    if entry["id"] == "b":  # b's files are in place, its line not yet: hang until killed
        print("HUNG", flush=True)
        time.sleep(600)
    return real(self, entry)
manifest.Manifest.append = append
from heartmula_core.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_stopped_between_a_jobs_files_and_its_line_then_rerun(tmp_path, stop):
    out = tmp_path / "out"
    argv = ["batch", str(write_jobs(tmp_path / "jobs.jsonl", JOBS)), "--model-dir", str(CKPT), "--out", str(out),
            "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", HANG_BEFORE_THE_LINE, *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "HUNG":
            proc.kill()
            pytest.fail(proc.stderr.read())
        proc.send_signal(stop)
        assert proc.wait(timeout=60) == (-signal.SIGKILL if stop == signal.SIGKILL else 128 + stop)
    finally:
        proc.kill()
    if stop == signal.SIGTERM:
        assert proc.stderr.read().strip().splitlines()[-1] == ("terminated (SIGTERM): files not complete yet were "
                                                               "not written")
    assert [e["id"] for e in manifest_lines(out)] == ["a"] and (out / "b.flac").exists()
    assert main(argv) == 0  # b's files are the run's own: replaced, not refused
    check_complete(out, JOBS)


def test_jobs_lines_past_pythons_limits_are_listed(tmp_path):
    good = json.dumps(JOBS[0])
    (tmp_path / "jobs.jsonl").write_text("\n".join([
        good, '{"id": "n", "tags": ' + "[" * 100000 + "]" * 100000 + "}",
        '{"id": "d", "tags": "x", "lyrics": "y", "seconds": 1, "seed": ' + "9" * 5000 + "}"]) + "\n")
    with pytest.raises(JobsError) as caught:
        parse_jobs(tmp_path / "jobs.jsonl")
    text = str(caught.value)
    assert "line 2: not valid JSON (nested too deeply)" in text
    assert "line 3: not valid JSON (a number too long to read (more than 4300 digits))" in text
    assert "set_int_max_str_digits" not in text


def test_a_huge_batch_is_checked_for_clashes_without_listing_its_songs(tmp_path):
    huge = {**JOBS[0], "id": "x", "batch": 10 ** 4000}
    lines = [huge, {**JOBS[0], "id": "x_7"}, {**JOBS[0], "id": "x_07"}, {**JOBS[0], "id": "y", "batch": 3},
             {**JOBS[0], "id": "y_3"}, {**JOBS[0], "id": "Y_2"}]
    start = time.perf_counter()
    with pytest.raises(JobsError) as caught:
        parse_jobs(write_jobs(tmp_path / "jobs.jsonl", lines))
    assert time.perf_counter() - start < 10
    problems = [line.strip() for line in str(caught.value).splitlines()[1:]]
    assert problems == ["line 2: output name 'x_7' also made by 'x' (line 1)",
                        "line 6: output name 'Y_2' also made by 'y' (line 4)"]


def test_the_folder_check_never_lists_a_huge_batchs_songs(tmp_path):
    from heartmula_core.batch.out_folder import refuse_foreign
    from heartmula_core.errors import OutputError

    jobs = parse_jobs(write_jobs(tmp_path / "jobs.jsonl", [{**JOBS[0], "id": "x", "batch": 10 ** 4000}]))
    out = tmp_path / "out"
    out.mkdir()
    for name in ("x_5.flac", "X_12.FLAC", "x_05.flac", "x.flac", "x.codes.safetensors", "x_5.wav", "y_1.flac"):
        (out / name).write_text("the user's")
    start = time.perf_counter()
    with pytest.raises(OutputError) as caught:
        refuse_foreign(out, jobs, "flac", owned={"x.codes.safetensors"})
    assert time.perf_counter() - start < 10
    listed = [line.strip() for line in str(caught.value).splitlines() if line.startswith("  ")]
    assert listed == ["X_12.FLAC (job 'x', line 1)", "x_5.flac (job 'x', line 1)"]


@pytest.mark.parametrize("kind", ["huge", "nested", "huge float"])
def test_every_field_with_a_huge_number_or_deep_nesting_is_a_problem_line_or_a_job(tmp_path, kind):
    """No exception but the listed problems, whatever a field holds (the kinds Python itself limits:
    whole numbers just under its 4300 digits, nesting just under its recursion limit)."""
    from heartmula_core.batch.jobs import OPTIONAL, REQUIRED

    value = {"huge": 10 ** 4299, "nested": json.loads("[" * 500 + "]" * 500), "huge float": 1e308}[kind]
    accepted = []
    for field in REQUIRED + OPTIONAL:
        try:
            parse_jobs(write_jobs(tmp_path / "jobs.jsonl", [{**JOBS[0], field: value}]))
            accepted.append(field)
        except JobsError as exc:
            assert str(exc).splitlines()[1].startswith(f"  line 1: '{field}' ")
            assert "set_int_max_str_digits" not in str(exc) and len(str(exc)) < 600, str(exc)
    assert accepted == (["top_k", "batch"] if kind == "huge" else [])  # no upper bound: memory decides
