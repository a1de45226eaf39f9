"""The command line answers every bad input with exit status 2 and one `error:` line that names the
input and the fix, before any model loads; no traceback from torch, safetensors or libsndfile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from heartmula_core.__main__ import main
from heartmula_core.codes import load_codes, save_codes

ROOT = Path(__file__).resolve().parent.parent
CKPT = ROOT / "tests" / "data" / "tiny" / "ckpt"
MAX_SEED = str(2**64 - 1)


def sample(tmp_path, *extra):
    return ["sample", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", "la la", "--seconds", "0.4",
            "--device", "cpu", "--codes-out", str(tmp_path / "codes.safetensors"), *extra]


def decode(codes: Path, out: Path, *extra):
    return ["decode", "--model-dir", str(CKPT), "--codes", str(codes), "--steps", "1", "--device", "cpu",
            "--out", str(out), *extra]


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if any weights are loaded: settings and output paths are checked first. (The
    command line loads through the song path's model folders, song/models.py.)"""
    import heartmula_core.song.models as models

    def forbidden(*_a, **_k):
        raise AssertionError("a model was loaded before the settings and output paths were checked")

    monkeypatch.setattr(models, "load_lm", forbidden)
    monkeypatch.setattr(models, "load_codec", forbidden)


@pytest.mark.parametrize("flag,value,expect", [
    ("--seconds", "nan", "--seconds must be a positive, finite number"),
    ("--seconds", "inf", "--seconds must be a positive, finite number"),
    ("--seconds", "0", "--seconds must be a positive"),
    ("--seconds", "1e308", "--seconds must be a positive, finite number of seconds \\(at most 86400\\)"),
    ("--seconds", "0.01", "--seconds must allow at least one frame \\(0.08 s\\), got 0.01"),
    ("--cfg", "nan", "--cfg must be a finite number between 0 and 100"),
    ("--cfg", "inf", "--cfg must be a finite number"),
    ("--temperature", "nan", "--temperature must be a finite number"),
    ("--temperature", "inf", "--temperature must be a finite number"),
    ("--temperature", "0", "--temperature must be .* Use top-k 1 for greedy sampling"),
    ("--top-k", "0", "--top-k must be >= 1"),
    ("--batch", "0", "--batch must be >= 1"),
    ("--seed", str(2**64), "--seed must be between 0 and 18446744073709551615"),
    ("--seed", "-1", "--seed must be between 0"),
])
def test_bad_sampling_settings(tmp_path, capsys, no_model_loads, flag, value, expect):
    assert main(sample(tmp_path, flag, value)) == 2
    import re
    assert re.search(expect, one_error_line(capsys))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag,value,expect", [
    ("--steps", "0", "--steps must be between 1 and 1000, got 0"),
    ("--guidance", "nan", "--guidance must be a finite number"),
    ("--guidance=-inf", None, "--guidance must be a finite number"),
    ("--seed", str(2**64), "--seed must be between 0 and 18446744073709551615"),
])
def test_bad_decoding_settings(tmp_path, capsys, no_model_loads, flag, value, expect):
    save_codes(tmp_path / "codes.safetensors", torch.zeros(1, 8, 5, dtype=torch.long), torch.tensor([5]))
    assert main(decode(tmp_path / "codes.safetensors", tmp_path / "a.wav", *[a for a in (flag, value) if a])) == 2
    assert expect in one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["codes.safetensors"]


def test_largest_seed_works_and_is_reproducible_in_sample_and_decode(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(sample(tmp_path / name, "--seed", MAX_SEED)) == 0
    first, second = (load_codes(tmp_path / n / "codes.safetensors")[0] for n in ("a", "b"))
    assert torch.equal(first, second)
    assert main(sample(tmp_path / "c", "--seed", "0")) == 0
    assert not torch.equal(first, load_codes(tmp_path / "c" / "codes.safetensors")[0])
    for name in ("a", "b"):
        assert main(decode(tmp_path / "a" / "codes.safetensors", tmp_path / f"{name}.wav", "--seed", MAX_SEED)) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def codes_file(path: Path, codes, lengths) -> Path:
    save_file({"codes": codes, "lengths": lengths}, str(path))
    return path


@pytest.mark.parametrize("codes,lengths,expect", [
    (torch.zeros(1, 8, 5, dtype=torch.long), torch.tensor([float("nan")]), "lengths must be integers"),
    (torch.zeros(1, 8, 5, dtype=torch.long), torch.tensor([3.0]), "lengths must be integers"),
    (torch.zeros(1, 8, 5, dtype=torch.bool), torch.tensor([5]), "codes must be an integer tensor .* torch.bool"),
    (torch.zeros(1, 8, 5), torch.tensor([5]), "codes must be an integer tensor"),
    (torch.full((1, 8, 5), 66), torch.tensor([5]), r"codes\[0, 0, 0\] = 66 is outside the codebook"),
])
def test_bad_codes_files(tmp_path, capsys, codes, lengths, expect):
    path = codes_file(tmp_path / "codes.safetensors", codes, lengths)
    assert main(decode(path, tmp_path / "a.wav")) == 2
    import re
    assert re.search(expect, one_error_line(capsys))


def test_codes_path_that_is_a_folder_or_too_long(tmp_path, capsys):
    assert main(decode(tmp_path, tmp_path / "a.wav")) == 2
    assert "is not a regular file" in one_error_line(capsys)
    assert main(decode(tmp_path / ("x" * 5000), tmp_path / "a.wav")) == 2
    assert "File name too long" in one_error_line(capsys)


def test_batch_that_cannot_fit_says_how_much_memory_it_needs(tmp_path, capsys, no_model_loads, monkeypatch):
    import heartmula_core.runtime as runtime

    monkeypatch.setattr(runtime, "available_bytes", lambda _device: 2 * 10**9)  # the same on every machine
    assert main(sample(tmp_path, "--batch", "100000", "--seconds", "30")) == 2
    line = one_error_line(capsys)
    import re
    needed = float(re.search(r"needs about ([\d.]+) GB on cpu", line).group(1))
    assert "Sampling 100000 song(s) of up to 30 s" in line and 50 < needed < 70  # KV caches of 100000 songs
    assert "only 2.00 GB is available" in line
    assert "Lower --batch or --seconds" in line


def test_allocation_failure_while_sampling_becomes_an_error_line(tmp_path, capsys, monkeypatch):
    import heartmula_core.lm.layers as layers

    def no_memory(*_a, **_k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(layers.TransformerState, "allocate", no_memory)
    assert main(sample(tmp_path)) == 2
    line = one_error_line(capsys)
    assert "ran out of memory on cpu: it needs about" in line and "Lower --batch" in line


def test_invalid_utf8_in_argv(tmp_path):
    """Bytes that are not UTF-8: in the tags an error line; in a path, written and printed as given."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"}
    base = [sys.executable.encode(), b"-m", b"heartmula_core", b"sample", b"--model-dir", bytes(CKPT),
            b"--lyrics", b"la", b"--seconds", b"0.4", b"--device", b"cpu"]
    bad_tags = subprocess.run(base + [b"--tags", b"piano\xff", b"--codes-out", b"c.safetensors"], cwd=tmp_path,
                              env=env, capture_output=True, timeout=300)
    assert bad_tags.returncode == 2 and bad_tags.stderr.count(b"\n") == 1
    assert bad_tags.stderr.startswith(b"error: The tags are not valid text (character 6 is not UTF-8)")
    odd_name = subprocess.run(base + [b"--tags", b"piano", b"--codes-out", b"c\xff.safetensors"], cwd=tmp_path,
                              env=env, capture_output=True, timeout=300)
    assert odd_name.returncode == 0, odd_name.stderr
    assert odd_name.stdout.rstrip().endswith(b"wrote c\xff.safetensors")
    assert os.listdir(os.fsencode(tmp_path)) == [b"c\xff.safetensors"]


def test_codec_whose_codebook_does_not_fit_the_lm_is_refused_before_sampling(tmp_path, capsys, no_model_loads):
    import json
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(CKPT, ckpt)
    config = ckpt / "HeartCodec-oss" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "codebook_size": 128}))
    rc = main(["generate", "--model-dir", str(ckpt), "--tags", "piano", "--lyrics", "la", "--seconds", "0.4",
               "--device", "cpu", "--out", str(tmp_path / "song.wav")])
    assert rc == 2
    line = one_error_line(capsys)
    assert "end of audio 65 (gen_config.json audio_eos_id), codebook 128" in line and "belong to this LM" in line
