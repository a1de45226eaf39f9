"""OUTDIR/manifest.jsonl and the output folder: torn lines, changed jobs, leftovers, one run at a time."""

import json
import os
import subprocess
import sys

import pytest

from heartmula_core.batch.jobs import Job
from heartmula_core.settings import SongSettings
from heartmula_core.batch.manifest import (Manifest, ManifestError, OutputLock, check_against_manifest,
                                           prompt_digest, remove_partials)

JOB = Job(id="a", tags="<tag>piano</tag>", lyrics="la", settings=SongSettings(seconds=2.0, seed=1, decode_seed=1), line=1)


def _entry(job: Job) -> dict:
    return {"id": job.id, "settings": job.recorded(), "prompt_sha256": prompt_digest(job)}


def test_append_then_load_round_trips(tmp_path):
    m = Manifest(tmp_path)
    assert m.load() == {}
    m.append({"id": "a", "x": 1})
    m.append({"id": "b", "x": "ü"})
    assert m.load() == {"a": {"id": "a", "x": 1}, "b": {"id": "b", "x": "ü"}}


def test_torn_last_line_is_cut_off_and_its_job_runs_again(tmp_path):
    m = Manifest(tmp_path)
    m.append({"id": "a"})
    with open(m.path, "ab") as f:
        f.write(b'{"id": "b", "sett')  # a crash in the middle of an append
    assert list(m.load()) == ["a"]
    assert m.path.read_text() == '{"id": "a"}\n'
    m.append({"id": "b"})
    assert list(m.load()) == ["a", "b"]


def test_broken_line_in_the_middle_is_an_error_naming_it(tmp_path):
    (tmp_path / "manifest.jsonl").write_text('{"id": "a"}\ngarbage\n{"id": "c"}\n')
    with pytest.raises(ManifestError, match="manifest.jsonl line 2 is not a manifest entry"):
        Manifest(tmp_path).load()


def test_job_changed_since_it_finished_is_refused(tmp_path):
    done = {"a": _entry(JOB)}
    check_against_manifest([JOB], done, tmp_path / "manifest.jsonl")  # unchanged: fine
    changed = Job(**{**JOB.__dict__, "settings": SongSettings(seconds=2.0, seed=2, decode_seed=1)})
    with pytest.raises(ManifestError, match="line 1: job 'a' is finished in the manifest with other seed"):
        check_against_manifest([changed], done, tmp_path / "manifest.jsonl")
    relyric = Job(**{**JOB.__dict__, "lyrics": "other"})
    with pytest.raises(ManifestError, match="other tags/lyrics"):
        check_against_manifest([relyric], done, tmp_path / "manifest.jsonl")


def test_only_temporary_files_of_atomic_writes_are_removed(tmp_path):
    from heartmula_core.atomic import atomic_write
    from heartmula_core.leftovers import HOST

    def crash(tmp):
        open(tmp, "wb").write(b"half")
        (tmp_path / "left").write_text(tmp)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.flac", ".flac", crash)
    leftover = (tmp_path / "left").read_text().rsplit("/", 1)[-1]
    assert leftover.startswith(f".partial-{HOST}-{os.getpid()}-")  # the names remove_partials relies on
    assert not (tmp_path / leftover).exists()  # Ctrl-C cleaned up
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = f".partial-{HOST}-{dead.pid}-abc.flac"  # what SIGKILL leaves (no finally runs)
    kept = [f".partial-{HOST}-{os.getpid()}-abc.flac",  # a run still writing (this one)
            f".partial-{HOST}-{os.getppid()}-abc.flac",  # a live process
            f".partial-0000beef-{dead.pid}-abc.flac",  # another machine's, on a shared disk
            ".partial-abc.flac", "keep.flac"]  # the user's
    for name in [killed, *kept]:
        (tmp_path / name).write_bytes(b"half")
    assert remove_partials(tmp_path) == [killed]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["left"])


def test_second_run_on_the_same_folder_is_refused(tmp_path):
    with OutputLock(tmp_path):
        with pytest.raises(ManifestError, match="Another batch run is writing to"):
            with OutputLock(tmp_path):
                pass
    with OutputLock(tmp_path):  # released
        pass


def test_manifest_line_is_plain_json(tmp_path):
    m = Manifest(tmp_path)
    with pytest.raises(ValueError):
        m.append({"id": "a", "bad": float("nan")})
    assert not m.path.exists() or m.path.read_text() == ""
    m.append({"id": "a"})
    assert json.loads(m.path.read_text()) == {"id": "a"}
