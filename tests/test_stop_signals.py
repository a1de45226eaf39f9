"""SIGTERM / SIGHUP stop the command line as Ctrl-C does (one line, no temporary file left), and a
rerun after any stop, SIGKILL included, works: it removes its own kind's leftovers of dead runs,
never a file of the user's or of a run still writing."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from heartmula_core.__main__ import main
from heartmula_core.cli.stop_signals import Terminated, stop_like_ctrl_c
from heartmula_core.leftovers import HOST

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "tests" / "data" / "tiny" / "ckpt"

# Runs the command line with one function replaced by a hang, so a signal lands mid-write (after the
# temporary file was made): argv[1] is "module:function", the rest the command line's arguments.
HANG = """
import importlib, sys, time
module, name = sys.argv[1].split(":")
target = importlib.import_module(module)
def hang(*args, **kwargs):
    print("HUNG", flush=True)
    time.sleep(600)
setattr(target, name, hang)
from heartmula_core.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


def stopped(where: str, argv: list, stop: int) -> subprocess.CompletedProcess:
    """Run ``argv`` until it hangs in ``where``, then send ``stop``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", HANG, where, *map(str, argv)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = []
    try:
        for line in iter(proc.stdout.readline, ""):  # other lines (a summary) may come first
            if line.strip() == "HUNG":
                proc.send_signal(stop)
                break
            said.append(line)
        else:
            pytest.fail(f"{argv[0]} never reached {where}: {proc.stderr.read()}")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(argv, proc.returncode, "".join(said) + out, err)


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".partial-*"))


def test_the_signals_raise_once_and_the_old_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught:
        with stop_like_ctrl_c():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a point where Python runs the handler
    assert caught.value.signum == signal.SIGTERM and isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before
    with stop_like_ctrl_c():  # a second signal while cleaning up does not cut the cleanup short
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGHUP)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])
        os.kill(os.getpid(), signal.SIGHUP)
        signal.pthread_sigmask(signal.SIG_BLOCK, [])
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup: stays ignored
    try:
        with stop_like_ctrl_c():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_quantize_stopped_by_sigterm_leaves_nothing_and_sigkill_leftovers_do_not_block_a_rerun(tmp_path):
    out = tmp_path / "fp8"
    argv = ["quantize", "--model-dir", CKPT / "HeartMuLa-oss-3B", "--out", out]
    done = stopped("heartmula_core.quant.writer:_copy_raw", argv, signal.SIGTERM)
    assert done.returncode == 143
    assert done.stderr == "terminated (SIGTERM): files not complete yet were not written\n"
    assert not out.exists()  # not even the folder the write made
    done = stopped("heartmula_core.quant.writer:_copy_raw", argv, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL and len(partials(out)) == 1  # no handler runs on SIGKILL
    assert main([str(a) for a in argv]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "gen_config.json", "model.safetensors",
                                                     "tokenizer.json"]


@pytest.mark.parametrize("command", ["generate", "decode"])
def test_a_song_stopped_while_written_leaves_no_temporary_file(tmp_path, command):
    from heartmula_core.codes import save_codes
    import torch

    save_codes(tmp_path / "codes.safetensors", torch.randint(0, 64, (1, 8, 12)), torch.tensor([12]))
    args = {"generate": ["--model-dir", CKPT, "--tags", "piano", "--lyrics", "la la", "--seconds", "1"],
            "decode": ["--model-dir", CKPT / "HeartCodec-oss", "--codes", tmp_path / "codes.safetensors"]}[command]
    argv = [command, *args, "--steps", "2", "--device", "cpu", "--out", tmp_path / "song.wav"]
    done = stopped("soundfile:write", argv, signal.SIGTERM)
    assert done.returncode == 143 and done.stderr.endswith("terminated (SIGTERM): files not complete yet were not "
                                                           "written\n"), done.stderr
    assert partials(tmp_path) == [] and not (tmp_path / "song.wav").exists()


def test_a_rerun_removes_only_what_dead_runs_of_this_machine_left(tmp_path):
    argv = ["generate", "--model-dir", CKPT, "--tags", "piano", "--lyrics", "la la", "--seconds", "1", "--steps", "2",
            "--device", "cpu", "--out", tmp_path / "song.wav"]
    done = stopped("soundfile:write", argv, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    [killed] = partials(tmp_path)
    assert killed.startswith(f".partial-{HOST}-")
    kept = [f".partial-{HOST}-{os.getpid()}-mine.wav",  # a live process (this one) still writing
            f".partial-0000beef-{done_pid(killed)}-abc.wav",  # another machine's, on a shared disk
            ".partial-abc.wav", ".partial-x.wav"]  # the user's
    for name in kept:
        (tmp_path / name).write_text("not yours")
    assert main([str(a) for a in argv]) == 0
    assert (tmp_path / "song.wav").exists() and partials(tmp_path) == sorted(kept)


def done_pid(name: str) -> str:
    return name.split("-")[2]
