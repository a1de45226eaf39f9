"""`batch --lora`: the run's LoRAs merged into the LM of every job, exactly as `generate --lora` does,
and a bad LoRA refused (one error line naming it) before any model loads."""

from __future__ import annotations

import pytest
import torch

from batch_jobs import CKPT, SIX_JOBS, write_jobs
from heartmula_core.__main__ import main
from heartmula_core.batch import driver
from heartmula_core.codes import load_codes
from lora_fixtures import hand_lora


def test_a_job_with_the_runs_loras_gives_what_generate_gives(tmp_path):
    job = SIX_JOBS[1]
    write_jobs(tmp_path / "jobs.jsonl", [job])
    a, b = hand_lora(tmp_path / "a.safetensors", seed=1), hand_lora(tmp_path / "b.safetensors", "ab", "hf", seed=2)
    loras = ["--lora", f"{a}:0.6", "--lora", str(b)]
    assert main(["batch", str(tmp_path / "jobs.jsonl"), "--model-dir", str(CKPT), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--format", "wav", *loras]) == 0
    common = ["--model-dir", str(CKPT), "--tags", job["tags"], "--lyrics", job["lyrics"], "--seconds",
              str(job["seconds"]), "--seed", str(job["seed"]), "--steps", "3", "--device", "cpu"]
    for name, extra in (("with", loras), ("without", [])):
        assert main(["generate", *common, "--out", str(tmp_path / name / "x.wav"),
                     "--codes-out", str(tmp_path / name / "c.safetensors"), *extra]) == 0
    ours = load_codes(tmp_path / "out" / "song-1.codes.safetensors")[0]
    assert torch.equal(ours, load_codes(tmp_path / "with" / "c.safetensors")[0])
    assert not torch.equal(ours, load_codes(tmp_path / "without" / "c.safetensors")[0])
    assert (tmp_path / "out" / "song-1.wav").read_bytes() == (tmp_path / "with" / "x.wav").read_bytes()


@pytest.mark.parametrize("lora,expect", [
    ("missing.safetensors", "missing.safetensors does not exist"),
    ("text.safetensors:0.5", "text.safetensors is not a readable safetensors file"),
    ("text.safetensors:inf", "--lora strength must be a finite number"),
])
def test_a_bad_lora_stops_the_run_before_any_model_loads(tmp_path, capsys, monkeypatch, lora, expect):
    write_jobs(tmp_path / "jobs.jsonl", SIX_JOBS[:2])
    (tmp_path / "text.safetensors").write_text("a text file\n")
    monkeypatch.setattr(driver, "make_runner", lambda opts: pytest.fail("models were loaded"))
    assert main(["batch", str(tmp_path / "jobs.jsonl"), "--model-dir", str(CKPT), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--lora", str(tmp_path / lora)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], lines
