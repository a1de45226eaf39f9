"""A first run of the command line: `generate --download` / `batch --download` fetch the official
models into the model folder with huggingface_hub, here from a stand-in of the Hub on 127.0.0.1
serving the tiny checkpoints (hub_standin.py), never the internet. Each run is a subprocess, so
huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE / HF_HOME as it does for a user."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from hub_standin import CKPT, StandInHub, hub_env

LM, CODEC = "HeartMuLa-oss-3B", "HeartCodec-oss"


def run(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heartmula_core", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def generate(models: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "--model-dir", str(models), "--tags", "piano,happy", "--lyrics", "[Verse]\nla la la\n",
            "--seconds", "0.8", "--seed", "3", "--steps", "2", "--device", "cpu", "--out", str(out), *extra]


def error_text(result: subprocess.CompletedProcess) -> str:
    """The error: line and the lines of its message (stderr also holds huggingface_hub's warnings)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr[result.stderr.index("error: "):]


def song_frames(path: Path) -> int:
    info = soundfile.info(path)
    assert info.samplerate == 48000 and info.channels == 2 and info.frames > 0
    return info.frames


def test_generate_download_into_an_empty_folder_then_nothing_twice(tmp_path):
    models = tmp_path / "models" / "HeartMuLa"
    with StandInHub() as hub:
        env = hub_env(hub.url, tmp_path / "hf")
        first = run(generate(models, tmp_path / "a.wav", "--download"), env)
        assert first.returncode == 0, first.stderr
        assert f"downloading HeartMuLa LM {LM}" in first.stderr and f"downloading HeartCodec {CODEC}" in first.stderr
        fetched = sorted(hub.file_downloads())
        hub.requests.clear()
        second = run(generate(models, tmp_path / "b.wav", "--download"), env)
        assert second.returncode == 0, second.stderr
        assert hub.requests == [] and "downloading" not in second.stderr  # present: not even asked
    assert sorted(p.rsplit("/", 1)[-1] for p in fetched) == sorted(
        ["config.json", "model.safetensors"] * 2 + ["gen_config.json", "tokenizer.json"])
    for name in ("tokenizer.json", "gen_config.json", f"{LM}/config.json", f"{LM}/model.safetensors",
                 f"{CODEC}/config.json", f"{CODEC}/model.safetensors"):
        source = CKPT / name
        assert (models / name).read_bytes() == source.read_bytes(), name
    assert song_frames(tmp_path / "a.wav") == song_frames(tmp_path / "b.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_without_download_a_missing_folder_names_every_command_and_the_switch(tmp_path):
    models = tmp_path / "HeartMuLa"
    with StandInHub() as hub:
        text = error_text(run(generate(models, tmp_path / "a.wav"), hub_env(hub.url, tmp_path / "hf")))
        assert hub.requests == []
    assert text.startswith(f"error: The model folder {models} lacks: HeartMuLa LM {LM}")
    assert f'hf download HeartMuLa/HeartMuLaGen tokenizer.json gen_config.json --local-dir "{models}"' in text
    assert f'hf download HeartMuLa/{LM} --local-dir "{models / LM}"' in text
    assert f'hf download HeartMuLa/{CODEC} --local-dir "{models / CODEC}"' in text
    assert f'modelscope download --model HeartMuLa/{LM} --local_dir "{models / LM}"' in text
    assert "add --download" in text
    assert not models.exists() and not (tmp_path / "a.wav").exists()


@pytest.mark.parametrize("how", ["offline", "unreachable"])
def test_offline_or_unreachable_hub_gives_the_error_line_with_the_commands(tmp_path, how):
    models = tmp_path / "HeartMuLa"
    env = hub_env(None, tmp_path / "hf", offline=how == "offline")  # unreachable: a port nothing listens on
    text = error_text(run(generate(models, tmp_path / "a.wav", "--download"), env))
    assert text.startswith(f"error: Downloading HeartMuLa LM {LM}")
    assert ("HF_HUB_OFFLINE is set" in text) == (how == "offline")
    for command in (f"hf download HeartMuLa/HeartMuLaGen tokenizer.json gen_config.json --local-dir \"{models}\"",
                    f'hf download HeartMuLa/{LM} --local-dir "{models / LM}"',
                    f'hf download HeartMuLa/{CODEC} --local-dir "{models / CODEC}"',
                    f'modelscope download --model HeartMuLa/HeartMuLaGen tokenizer.json gen_config.json '
                    f'--local_dir "{models}"',
                    f'modelscope download --model HeartMuLa/{LM} --local_dir "{models / LM}"',
                    f'modelscope download --model HeartMuLa/{CODEC} --local_dir "{models / CODEC}"'):
        assert command in text
    assert not (tmp_path / "a.wav").exists() and not (models / LM / "config.json").exists()


def test_a_partial_folder_is_completed(tmp_path):
    """The tokenizer is missing, and a stopped download left the codec without its weights: only
    those are fetched, the LM already there is left alone."""
    models = tmp_path / "HeartMuLa"
    shutil.copytree(CKPT, models)
    (models / "tokenizer.json").unlink()
    (models / CODEC / "model.safetensors").unlink()
    with StandInHub() as hub:
        env = hub_env(hub.url, tmp_path / "hf")
        refused = error_text(run(generate(models, tmp_path / "a.wav"), env))
        assert "tokenizer.json (beside" in refused and f"HeartCodec {CODEC}" in refused and f"LM {LM}" not in refused
        done = run(generate(models, tmp_path / "a.wav", "--download"), env)
        assert done.returncode == 0, done.stderr
        fetched = hub.file_downloads()
    assert "/HeartMuLa/HeartMuLaGen/resolve/main/tokenizer.json" in fetched
    assert any(p.startswith(f"/HeartMuLa/{CODEC}/") and p.endswith("/model.safetensors") for p in fetched)
    assert not any(f"/{LM}/" in p or p.endswith("gen_config.json") for p in fetched), fetched
    assert (models / "tokenizer.json").read_bytes() == (CKPT / "tokenizer.json").read_bytes()
    assert song_frames(tmp_path / "a.wav") > 0


def test_batch_download_into_an_empty_folder(tmp_path):
    models = tmp_path / "HeartMuLa"
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "one", "tags": "rock", "lyrics": "[Verse]\nhey\n", "seconds": 0.8, "seed": 1,
                                "decode_steps": 2}) + "\n")
    args = ["batch", str(jobs), "--model-dir", str(models), "--out", str(tmp_path / "out"), "--device", "cpu"]
    with StandInHub() as hub:
        env = hub_env(hub.url, tmp_path / "hf")
        refused = error_text(run(args, env))
        assert "add --download" in refused and hub.requests == []
        done = run(args + ["--download"], env)
        assert done.returncode == 0, done.stderr
    assert "downloading HeartMuLa LM" in done.stderr and "1 job(s) done" in done.stdout
    assert song_frames(tmp_path / "out" / "one.flac") > 0
