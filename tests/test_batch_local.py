"""`batch` embedded (no Ray) on the tiny checkpoints: files, manifest, resume, kill -9, retries."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from heartmula_core.__main__ import main
from heartmula_core.batch import driver
from heartmula_core.batch.driver import BatchOptions, run_batch
from heartmula_core.batch.worker import SongMaker
from heartmula_core.codes import load_codes

from batch_jobs import CKPT, SIX_JOBS, check_complete, manifest_lines, output_files, write_jobs

ROOT = Path(__file__).resolve().parents[1]


def _options(tmp_path, **kw) -> BatchOptions:
    return BatchOptions(jobs=str(write_jobs(tmp_path / "jobs.jsonl")), model_dir=str(CKPT),
                        out=str(tmp_path / "out"), device="cpu", **kw)


def test_six_jobs_then_a_rerun_that_does_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    write_jobs(tmp_path / "jobs.jsonl")
    argv = ["batch", str(tmp_path / "jobs.jsonl"), "--model-dir", str(CKPT), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    assert "6 job(s) done (6 songs" in capsys.readouterr().out
    check_complete(out)
    lines = manifest_lines(out)
    assert [e["line"] for e in sorted(lines, key=lambda e: e["id"])] == [1, 2, 3, 4, 5, 6]
    for entry, job in zip(sorted(lines, key=lambda e: e["id"]), SIX_JOBS):
        assert entry["settings"]["seed"] == job["seed"] and entry["settings"]["decode_steps"] == 3
        assert entry["audio_seconds"] == [round(entry["lengths_frames"][0] / 12.5, 4)]
        assert entry["lm_seconds"] > 0 and entry["codec_seconds"] > 0 and entry["worker"].startswith("local")
        assert entry["attempts"] == 1
    before = (output_files(out), (out / "manifest.jsonl").read_bytes())

    def no_models(opts):
        raise AssertionError("nothing to do, yet a runner was made")

    monkeypatch.setattr(driver, "make_runner", no_models)
    assert main(argv) == 0
    assert "0 job(s) done (0 songs, 0 songs/hour), 6 already in the manifest" in capsys.readouterr().out
    assert (output_files(out), (out / "manifest.jsonl").read_bytes()) == before


def test_a_job_gives_what_generate_gives(tmp_path):
    """Same settings, same files as `python -m heartmula_core generate` (here a batch of 2, as WAV)."""
    job = {**SIX_JOBS[1], "batch": 2}
    write_jobs(tmp_path / "jobs.jsonl", [job])
    assert main(["batch", str(tmp_path / "jobs.jsonl"), "--model-dir", str(CKPT), "--out", str(tmp_path / "b"),
                 "--device", "cpu", "--format", "wav"]) == 0
    assert main(["generate", "--model-dir", str(CKPT), "--tags", job["tags"], "--lyrics", job["lyrics"],
                 "--seconds", str(job["seconds"]), "--seed", str(job["seed"]), "--steps", "3", "--batch", "2",
                 "--device", "cpu", "--out", str(tmp_path / "g" / "x.wav"),
                 "--codes-out", str(tmp_path / "g" / "c.safetensors")]) == 0
    ours, theirs = load_codes(tmp_path / "b" / "song-1.codes.safetensors"), load_codes(tmp_path / "g" / "c.safetensors")
    assert ours[0].shape[0] == 2 and torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    for i in range(2):
        assert (tmp_path / "b" / f"song-1_{i}.wav").read_bytes() == (tmp_path / "g" / f"x_{i}.wav").read_bytes()


KILLED_RUN = """
import sys, time, soundfile
real, calls = soundfile.write, []
def write(file, *args, **kwargs):
    calls.append(file)
    if len(calls) == 3:  # the third song is being encoded, its temporary file made: hang until killed
        print("HUNG", flush=True)
        time.sleep(600)
    return real(file, *args, **kwargs)
soundfile.write = write
from heartmula_core.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_mid_run_then_rerun_finishes_the_rest_once(tmp_path):
    out = tmp_path / "out"
    argv = ["batch", str(write_jobs(tmp_path / "jobs.jsonl")), "--model-dir", str(CKPT), "--out", str(out),
            "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HUNG", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    first = manifest_lines(out)
    assert len(first) == 2
    assert [p.name for p in out.glob(".partial-*")]  # the half-written file the kill left behind
    assert len(output_files(out)) == 4  # two finished jobs; the third has no complete file

    assert main(argv) == 0
    check_complete(out)
    assert manifest_lines(out)[:2] == first  # the finished jobs were not run again


def test_a_failed_job_is_retried_once_then_reported(tmp_path, monkeypatch, capsys):
    make, calls = SongMaker.make, []

    def flaky(self, job):
        calls.append(job.id)
        if job.id == "song-1" and calls.count("song-1") == 1:
            raise RuntimeError("transient trouble")
        if job.id == "song-4":
            raise RuntimeError("always broken")
        return make(self, job)

    monkeypatch.setattr(SongMaker, "make", flaky)
    out = tmp_path / "out"
    argv = ["batch", str(write_jobs(tmp_path / "jobs.jsonl")), "--model-dir", str(CKPT), "--out", str(out),
            "--device", "cpu"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "job 'song-1' (line 2) failed, retrying once: RuntimeError: transient trouble" in captured.err
    assert "failed: song-4 (line 5): RuntimeError: always broken" in captured.err
    assert "5 job(s) done" in captured.out and "1 failed" in captured.out
    assert calls.count("song-1") == 2 and calls.count("song-4") == 2
    entries = {e["id"]: e for e in manifest_lines(out)}
    assert sorted(entries) == ["song-0", "song-1", "song-2", "song-3", "song-5"]
    assert entries["song-1"]["attempts"] == 2
    assert not list(out.glob("song-4*"))

    monkeypatch.setattr(SongMaker, "make", make)
    assert main(argv) == 0  # the failed job runs on the next run
    check_complete(out)


def test_prompt_too_long_is_reported_before_any_model_loads(tmp_path, monkeypatch):
    import heartmula_core.song.models as models

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "load_lm", no_load)
    monkeypatch.setattr(models, "load_codec", no_load)
    jobs = [SIX_JOBS[0], {**SIX_JOBS[1], "seconds": 170}]  # the tiny LM's context holds 2048 positions
    write_jobs(tmp_path / "jobs.jsonl", jobs)
    opts = BatchOptions(jobs=str(tmp_path / "jobs.jsonl"), model_dir=str(CKPT), out=str(tmp_path / "out"))
    with pytest.raises(Exception, match=r"line 2: job 'song-1': The prompt is \d+ tokens and 2125 frames"):
        run_batch(opts)
    assert manifest_lines(tmp_path / "out") == []


def test_manifest_lines_are_written_after_the_files(tmp_path, monkeypatch):
    """When the manifest line is written, that job's audio and codes are already complete on disk."""
    from heartmula_core.batch import manifest as manifest_module

    seen = []
    append = manifest_module.Manifest.append

    def checking_append(self, entry):
        out = self.path.parent
        codes, lengths = load_codes(out / entry["codes"])
        audio = soundfile.info(out / entry["audio"][0])
        seen.append(lengths.tolist() == entry["lengths_frames"] and audio.frames == lengths[0] * 3840)
        append(self, entry)

    monkeypatch.setattr(manifest_module.Manifest, "append", checking_append)
    summary = run_batch(_options(tmp_path), say=lambda m: None)
    assert len(summary.finished) == 6 and seen == [True] * 6
    assert json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])["id"] == "song-0"
