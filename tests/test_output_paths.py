"""Output files: never replace what is not a regular file, refuse bad paths before any work, write
batches all-or-nothing, and turn a full disk into one `error:` line."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from heartmula_core import atomic
from heartmula_core.__main__ import main
from heartmula_core.atomic import atomic_write, atomic_write_all, output_target
from heartmula_core.codes import load_codes, save_codes
from heartmula_core.errors import OutputError
from test_cli_errors import no_model_loads  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
CKPT = ROOT / "tests" / "data" / "tiny" / "ckpt"


def device_node(path: Path, major: int, minor: int) -> Path:
    """A character device node in a test folder (never the system's own /dev entries)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create device nodes here: {exc}")
    return path


def write_text(text: str):
    return lambda tmp: Path(tmp).write_text(text)


def sample_args(out: Path, *extra: str) -> list[str]:
    return ["sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", "la la", "--seconds", "0.4",
            "--device", "cpu", "--codes-out", str(out), *extra]


def test_fifo_folder_and_device_are_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    zero = device_node(tmp_path / "zero", 1, 5)
    for path, kind in ((fifo, "FIFO"), (zero, "character device"), (tmp_path, "folder")):
        with pytest.raises(OutputError, match=kind):
            atomic_write(path, ".x", write_text("data"))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat(zero).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.safetensors", "zero"]


def test_null_device_is_written_through_by_writing_nothing(tmp_path):
    null = device_node(tmp_path / "null", 1, 3)
    calls = []
    assert atomic_write(null, ".x", lambda tmp: calls.append(tmp)) == null
    assert calls == [], "nothing is written to the null device"
    assert stat.S_ISCHR(os.stat(null).st_mode) and os.stat(null).st_rdev == os.makedev(1, 3)
    save_codes(null, torch.zeros(1, 8, 3, dtype=torch.long), torch.tensor([3]))
    assert stat.S_ISCHR(os.stat(null).st_mode), "safetensors' own rename must never reach the device"


def test_symlink_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "real.safetensors"
    real.write_text("old")
    link = tmp_path / "link.safetensors"
    link.symlink_to(real.name)
    codes = torch.randint(0, 64, (1, 8, 4))
    save_codes(link, codes, torch.tensor([4]))
    assert link.is_symlink() and os.readlink(link) == real.name
    assert torch.equal(load_codes(real)[0], codes)
    dangling = tmp_path / "dangling.safetensors"
    dangling.symlink_to("made/later.safetensors")
    save_codes(dangling, codes, torch.tensor([4]))
    assert dangling.is_symlink() and torch.equal(load_codes(tmp_path / "made" / "later.safetensors")[0], codes)


@pytest.mark.parametrize("bad,message", [("sub\x00name", "NUL"), ("x" * 5000, "too long|File name"),
                                         ("file.txt/inside", "not a folder")])
def test_impossible_names_are_refused(tmp_path, bad, message):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    with pytest.raises(OutputError, match=message):
        output_target(str(tmp_path / bad), "--out")


def test_read_only_file_system_is_refused_before_writing(tmp_path, monkeypatch):
    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, path):
            self._st = real_statvfs(path)
            self.f_flag = self._st.f_flag | os.ST_RDONLY

        def __getattr__(self, name):
            return getattr(self._st, name)

    monkeypatch.setattr(atomic.os, "statvfs", ReadOnly)
    with pytest.raises(OutputError, match="read-only file system"):
        output_target(tmp_path / "a.wav", "--out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="no permission"):
        output_target(locked / "a.wav", "--out")


def test_batch_is_all_or_nothing(tmp_path):
    def fail(_tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="b_1.wav: the disk is full"):
        atomic_write_all([(tmp_path / "b_0.wav", ".wav", write_text("song 0")), (tmp_path / "b_1.wav", ".wav", fail)])
    assert list(tmp_path.iterdir()) == [], "b_0 must not be left behind when b_1 fails"
    atomic_write_all([(tmp_path / "b_0.wav", ".wav", write_text("0")), (tmp_path / "b_1.wav", ".wav", write_text("1"))])
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["0", "1"]


def test_a_failed_write_removes_the_folders_it_made(tmp_path):
    """(quantize --out new/ refused for a NaN weight left an empty new/ behind.)"""
    def fail(_tmp):
        raise OSError(28, "No space left on device")

    (tmp_path / "had").mkdir()
    with pytest.raises(OutputError, match="the disk is full"):
        atomic_write_all([(tmp_path / "new" / "deep" / "a.wav", ".wav", write_text("a")),
                          (tmp_path / "had" / "b.wav", ".wav", fail)])
    assert [p.name for p in tmp_path.iterdir()] == ["had"] and not any((tmp_path / "had").iterdir())
    atomic_write_all([(tmp_path / "new" / "deep" / "a.wav", ".wav", write_text("a"))])
    assert (tmp_path / "new" / "deep" / "a.wav").read_text() == "a"


@pytest.mark.parametrize("make,message", [
    (lambda d: d, "is a folder; give the path of a file, e.g. .*codes.safetensors"),
    (lambda d: (os.mkfifo(d / "p"), d / "p")[1], "FIFO"),
    (lambda d: d / "nofolder.txt" / "x.safetensors", "is not a folder"),
])
def test_cli_checks_codes_out_before_loading_the_model(tmp_path, capsys, no_model_loads, make, message):
    (tmp_path / "nofolder.txt").write_text("x")
    rc = main(sample_args(make(tmp_path)))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: --codes-out")
    assert __import__("re").search(message, err[0]), err[0]


def test_cli_refuses_outputs_that_collide_or_overwrite_the_input(tmp_path, capsys, no_model_loads):
    save_codes(tmp_path / "codes.safetensors", torch.zeros(2, 8, 5, dtype=torch.long), torch.tensor([5, 4]))
    decode = ["decode", "--model-dir", str(CKPT), "--codes", str(tmp_path / "codes.safetensors"), "--steps", "1",
              "--device", "cpu"]
    assert main(decode + ["--out", str(tmp_path / "s.wav"), "--waveform-out", str(tmp_path / "s_1.wav")]) == 2
    assert "are the same file" in capsys.readouterr().err
    assert main(decode + ["--out", str(tmp_path / "s.wav"), "--waveform-out", str(tmp_path / "codes.safetensors")]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.safetensors"]


def test_cli_refuses_when_the_disk_is_too_small_before_sampling(tmp_path, capsys, monkeypatch, no_model_loads):
    monkeypatch.setattr(atomic, "free_bytes", lambda _path: 1000)
    assert main(sample_args(tmp_path / "codes.safetensors")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --codes-out") and "needs about" in err and "0.0 MB free" in err


def _limited_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("extra,flag", [([], "--out"), (["--waveform-out", "raw.safetensors"], "--waveform-out")])
def test_full_disk_while_writing_is_one_error_line_and_no_partial_file(tmp_path, extra, flag):
    """A real failing write: the process may not write files over 50 kB, as on a nearly full disk."""
    save_codes(tmp_path / "codes.safetensors", torch.randint(0, 64, (1, 8, 10)), torch.tensor([10]))
    command = [sys.executable, "-m", "heartmula_core", "decode", "--model-dir", str(CKPT), "--codes",
               "codes.safetensors", "--steps", "1", "--device", "cpu", "--out", "song.wav", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited_file_size(50_000))
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert err[0].startswith(f"error: Could not write {flag}") and "the disk is full" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.safetensors"]


def test_cli_batch_audio_is_all_or_nothing(tmp_path, capsys, monkeypatch):
    """b_0 written, then a failure on b_1: neither file is left (no half a batch, no traceback)."""
    save_codes(tmp_path / "codes.safetensors", torch.randint(0, 64, (2, 8, 6)), torch.tensor([6, 4]))
    real_write, calls = Path.write_bytes, []

    def second_fails(self, data):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", second_fails)
    rc = main(["decode", "--model-dir", str(CKPT), "--codes", str(tmp_path / "codes.safetensors"), "--steps", "1",
               "--device", "cpu", "--out", str(tmp_path / "b.flac")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: Could not write --out") and "b_1.flac" in err[0]
    assert len(calls) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["codes.safetensors"]


def test_ctrl_c_is_one_line_and_leaves_no_file(tmp_path, capsys, monkeypatch):
    import sys

    import heartmula_core.song.run  # noqa: F401 - the song path, where every door samples

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["heartmula_core.song.run"], "generate", interrupted)
    assert main(sample_args(tmp_path / "codes.safetensors")) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted: files not complete yet were not written"]
    assert list(tmp_path.iterdir()) == []
