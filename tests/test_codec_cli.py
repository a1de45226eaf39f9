"""`python -m heartmula_core decode | generate` on the tiny checkpoints."""

import errno
from pathlib import Path

import pytest
import soundfile
import torch
from safetensors.torch import load_file

from heartmula_core.__main__ import main
from heartmula_core.codes import load_codes, save_codes

CKPT = Path(__file__).parent / "data" / "tiny" / "ckpt"
LYRICS = "[Verse]\nla la la\n"


def _generate(out_dir: Path, *extra: str) -> int:
    return main([
        "generate", "--model-dir", str(CKPT), "--tags", "piano,happy", "--lyrics", LYRICS,
        "--seconds", "1.6", "--seed", "3", "--device", "cpu", "--steps", "2",
        "--out", str(out_dir / "song.wav"), "--codes-out", str(out_dir / "codes.safetensors"), *extra,
    ])


def test_generate_writes_playable_file_bit_identical_twice(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert _generate(first, "--waveform-out", str(first / "raw.safetensors")) == 0
    assert _generate(second) == 0
    info = soundfile.info(first / "song.wav")
    _, lengths = load_codes(first / "codes.safetensors")
    assert info.samplerate == 48000 and info.channels == 2
    assert info.frames == int(lengths[0]) * 48000 * 2 // 25
    assert (first / "song.wav").read_bytes() == (second / "song.wav").read_bytes()
    raw = load_file(first / "raw.safetensors")["waveform"]
    assert raw.dtype == torch.float32 and raw.shape == (1, 2, info.frames)
    assert sorted(p.name for p in first.iterdir()) == ["codes.safetensors", "raw.safetensors", "song.wav"]


def test_decode_writes_one_file_per_song(tmp_path):
    codes = torch.randint(0, 64, (2, 8, 20))
    save_codes(tmp_path / "codes.safetensors", codes, torch.tensor([20, 12]))
    rc = main(["decode", "--model-dir", str(CKPT), "--codes", str(tmp_path / "codes.safetensors"),
               "--steps", "1", "--device", "cpu", "--out", str(tmp_path / "out.flac")])
    assert rc == 0
    assert soundfile.info(tmp_path / "out_0.flac").frames == 20 * 3840
    assert soundfile.info(tmp_path / "out_1.flac").frames == 12 * 3840


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    save_codes(tmp_path / "codes.safetensors", torch.zeros(1, 8, 5, dtype=torch.long), torch.tensor([5]))
    real_write = Path.write_bytes

    def half_then_full(self, data):
        real_write(self, bytes(data)[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    rc = main(["decode", "--model-dir", str(CKPT), "--codes", str(tmp_path / "codes.safetensors"),
               "--steps", "1", "--device", "cpu", "--out", str(tmp_path / "song.wav")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: Could not write --out") and "disk is full" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.safetensors"]


def test_unknown_extension_is_a_clear_error(tmp_path, capsys):
    save_codes(tmp_path / "codes.safetensors", torch.zeros(1, 8, 5, dtype=torch.long), torch.tensor([5]))
    rc = main(["decode", "--model-dir", str(CKPT), "--codes", str(tmp_path / "codes.safetensors"),
               "--out", str(tmp_path / "song.ogg")])
    assert rc == 2
    assert "unknown audio extension; use .wav, .flac or .mp3" in capsys.readouterr().err
