"""The progress bars of `sample`, `decode` and `generate` (tqdm): full at the end, also when the songs
end early, on the stderr of the moment they are made, silent off a terminal."""

from __future__ import annotations

import io
import json
import shutil
import sys

import torch

from heartmula_core.__main__ import main
from heartmula_core.cli.progress import StepBar
from heartmula_core.codes import load_codes, save_codes
from lm_fixtures import TINY_CKPT, expected, expected_inputs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def last_render(text: str) -> str:
    """What the terminal shows last: the text after the last carriage return."""
    return text.rstrip("\n").split("\r")[-1]


def test_bar_counts_to_the_total_and_ends_its_line():
    stream = Terminal()
    bar = StepBar("decoding", "step", stream=stream)
    for done in range(1, 7):
        bar(done, 6)
    text = stream.getvalue()
    assert text.endswith("\n") and "6/6" in last_render(text) and "100%" in last_render(text)
    assert "decoding" in last_render(text) and "step/s" in last_render(text)


def test_bar_ends_full_where_the_songs_ended_early():
    stream = Terminal()
    with StepBar("sampling", "frame", stream=stream) as bar:
        for done in range(1, 5):
            bar(done, 20)
        bar(4, 4)
    shown = last_render(stream.getvalue())
    assert "4/4" in shown and "100%" in shown and "/20" not in shown


def test_silent_off_a_terminal_and_on_a_closed_stream():
    pipe = io.StringIO()
    bar = StepBar("sampling", "frame", stream=pipe)
    bar(1, 2)
    bar(2, 2)
    assert pipe.getvalue() == ""
    closed = Terminal()
    closed.close()
    with StepBar("sampling", "frame", stream=closed) as bar:  # isatty raises ValueError: no bar, no error
        bar(1, 2)


def test_bar_writes_to_the_stderr_of_when_it_is_made(monkeypatch):
    """The module is imported long before (above); a bar made now must use today's sys.stderr, not
    the stream of import time (a capture that pytest has closed since)."""
    dead = Terminal()
    dead.close()
    monkeypatch.setattr(sys, "stderr", dead)
    StepBar("a", "frame")(1, 1)
    now = Terminal()
    monkeypatch.setattr(sys, "stderr", now)
    StepBar("b", "frame")(1, 1)
    assert "1/1" in now.getvalue()


def test_sample_bar_is_full_when_the_song_ends_before_its_limit(tmp_path, monkeypatch):
    """A greedy song on the tiny LM with an end-of-audio id it draws early: the bar ends at the
    frames run (the song's frames plus the one that drew the end), not at the 20 frames asked."""
    ckpt = tmp_path / "ckpt"
    shutil.copytree(TINY_CKPT, ckpt)
    eos = int(expected()["frames_greedy_cfg"].long()[:, :20].amax(dim=0)[1:].max())
    gen_config = ckpt / "gen_config.json"
    gen_config.write_text(json.dumps({**json.loads(gen_config.read_text()), "audio_eos_id": eos}))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    inputs = expected_inputs()
    assert main(["sample", "--model-dir", str(ckpt), "--tags", inputs["tags"], "--lyrics", inputs["lyrics"],
                 "--seconds", "1.6", "--seed", "3", "--top-k", "1", "--cfg", "1.5", "--device", "cpu",
                 "--codes-out", str(tmp_path / "codes.safetensors")]) == 0
    _, lengths = load_codes(tmp_path / "codes.safetensors")
    ends_at = int(lengths[0])
    assert 1 <= ends_at < 19
    shown = last_render(terminal.getvalue())
    assert f"{ends_at + 1}/{ends_at + 1}" in shown and "100%" in shown and "sampling" in shown


def test_decode_bar_on_a_terminal_and_nothing_but_the_summary_when_redirected(tmp_path, monkeypatch, capsys):
    save_codes(tmp_path / "codes.safetensors", torch.randint(0, 64, (1, 8, 10)), torch.tensor([10]))
    args = ["decode", "--model-dir", str(TINY_CKPT), "--codes", str(tmp_path / "codes.safetensors"),
            "--steps", "2", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "a.wav")]) == 0
    assert capsys.readouterr().err == ""  # pytest's capture is not a terminal
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(args + ["--out", str(tmp_path / "b.wav")]) == 0
    shown = last_render(terminal.getvalue())
    assert "decoding" in shown and "2/2" in shown and "100%" in shown
