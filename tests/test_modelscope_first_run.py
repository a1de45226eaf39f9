"""A first run of the command line from ModelScope: `generate --download --source modelscope` and
`batch --download` with HEARTMULA_DOWNLOAD_SOURCE=modelscope fetch the official models with the real
`modelscope` client, here from a stand-in of ModelScope on 127.0.0.1 (modelscope_standin.py) that
it finds through its own MODELSCOPE_ENDPOINT; the Hub's stand-in runs beside it to show that
nothing is asked of the Hub. Without the modelscope package, choosing it is one error line."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub_standin import CKPT, StandInHub, hub_env
from modelscope_standin import StandInModelScope, hiding_modelscope, modelscope_env, needs_modelscope
from test_first_run import CODEC, LM, error_text, generate, run, song_frames

OFFICIAL_FILES = ("tokenizer.json", "gen_config.json", f"{LM}/config.json", f"{LM}/model.safetensors",
                  f"{CODEC}/config.json", f"{CODEC}/model.safetensors")


def both_env(ms_url: str | None, hub_url: str, home: Path, **extra: str) -> dict[str, str]:
    """A subprocess's environment with ModelScope at ``ms_url`` and the Hub at ``hub_url``."""
    env = modelscope_env(ms_url, home / "ms")
    env.update({k: v for k, v in hub_env(hub_url, home / "hf").items() if k.startswith("HF_")})
    env.update(extra)
    return env


@needs_modelscope
def test_generate_download_source_modelscope_into_an_empty_folder_then_nothing_twice(tmp_path):
    models = tmp_path / "models" / "HeartMuLa"
    with StandInModelScope() as ms, StandInHub() as hub:
        env = both_env(ms.url, hub.url, tmp_path)
        first = run(generate(models, tmp_path / "a.wav", "--download", "--source", "modelscope"), env)
        assert first.returncode == 0, first.stderr
        assert f"downloading HeartMuLa LM {LM}" in first.stderr and "from ModelScope (HeartMuLa/" in first.stderr
        fetched = sorted(ms.file_downloads())
        ms.requests.clear()
        second = run(generate(models, tmp_path / "b.wav", "--download", "--source", "modelscope"), env)
        assert second.returncode == 0, second.stderr
        assert ms.requests == [] and "downloading" not in second.stderr  # present: not even asked
        assert hub.requests == []
    assert fetched == sorted([f"HeartMuLa/HeartMuLaGen/{f}" for f in ("tokenizer.json", "gen_config.json")]
                             + [f"HeartMuLa/{name}/{f}" for name in (LM, CODEC)
                                for f in ("config.json", "model.safetensors")])
    for name in OFFICIAL_FILES:
        assert (models / name).read_bytes() == (CKPT / name).read_bytes(), name
    extra = [p for p in models.rglob("*") if p.is_file() and p.relative_to(models).as_posix() not in OFFICIAL_FILES]
    assert not [p for p in extra if not any(part.startswith(".") for part in p.relative_to(models).parts)], extra
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


@needs_modelscope
def test_a_stopped_modelscope_download_is_completed_where_it_stopped(tmp_path):
    """The tokenizer is missing and the codec's weights stopped after 1000 bytes (modelscope keeps
    them in model.safetensors.incomplete): only those are fetched, the rest of the weights asked
    from byte 1000; the LM already there is left alone."""
    models = tmp_path / "HeartMuLa"
    shutil.copytree(CKPT, models)
    (models / "tokenizer.json").unlink()
    weights = models / CODEC / "model.safetensors"
    weights.rename(weights.with_name("model.safetensors.incomplete"))
    with open(weights.with_name("model.safetensors.incomplete"), "r+b") as partial:
        partial.truncate(1000)
    with StandInModelScope() as ms, StandInHub() as hub:
        done = run(generate(models, tmp_path / "a.wav", "--download", "--source", "modelscope"),
                   both_env(ms.url, hub.url, tmp_path))
        assert done.returncode == 0, done.stderr
        fetched, requests = ms.file_downloads(), ms.requests
        assert hub.requests == []
    assert sorted(fetched) == ["HeartMuLa/HeartCodec-oss/model.safetensors", "HeartMuLa/HeartMuLaGen/tokenizer.json"]
    assert [r for _, path, r in requests if "model.safetensors" in path] == ["bytes=1000-"]
    assert weights.read_bytes() == (CKPT / CODEC / "model.safetensors").read_bytes()
    assert (models / "tokenizer.json").read_bytes() == (CKPT / "tokenizer.json").read_bytes()
    assert song_frames(tmp_path / "a.wav") > 0


@needs_modelscope
def test_batch_download_takes_its_source_from_the_environment_variable(tmp_path):
    models = tmp_path / "HeartMuLa"
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "one", "tags": "rock", "lyrics": "[Verse]\nhey\n", "seconds": 0.8, "seed": 1,
                                "decode_steps": 2}) + "\n")
    args = ["batch", str(jobs), "--model-dir", str(models), "--out", str(tmp_path / "out"), "--device", "cpu",
            "--download"]
    with StandInModelScope() as ms, StandInHub() as hub:
        done = run(args, both_env(ms.url, hub.url, tmp_path, HEARTMULA_DOWNLOAD_SOURCE="modelscope"))
        assert done.returncode == 0, done.stderr
        assert len(ms.file_downloads()) == 6 and hub.requests == []
    assert "from ModelScope" in done.stderr and "1 job(s) done" in done.stdout
    assert song_frames(tmp_path / "out" / "one.flac") > 0


@needs_modelscope
def test_unreachable_modelscope_gives_the_error_line_with_the_commands_of_both_sources(tmp_path):
    models = tmp_path / "HeartMuLa"
    with StandInHub() as hub:
        env = both_env(None, hub.url, tmp_path)
        text = error_text(run(generate(models, tmp_path / "a.wav", "--download", "--source", "modelscope"), env))
        assert hub.requests == []
    assert text.startswith(f"error: Downloading HeartMuLa LM {LM}") and "from ModelScope failed" in text
    for command in (f'hf download HeartMuLa/HeartMuLaGen tokenizer.json gen_config.json --local-dir "{models}"',
                    f'hf download HeartMuLa/{CODEC} --local-dir "{models / CODEC}"',
                    f'modelscope download --model HeartMuLa/HeartMuLaGen tokenizer.json gen_config.json '
                    f'--local_dir "{models}"',
                    f'modelscope download --model HeartMuLa/{LM} --local_dir "{models / LM}"',
                    f'modelscope download --model HeartMuLa/{CODEC} --local_dir "{models / CODEC}"'):
        assert command in text
    assert text.index("hf download") < text.index("modelscope download")
    assert not (tmp_path / "a.wav").exists() and not (models / LM / "config.json").exists()


def test_without_the_modelscope_package_choosing_it_is_one_error_line(tmp_path):
    models = tmp_path / "HeartMuLa"
    with StandInModelScope() as ms, StandInHub() as hub:
        env = both_env(ms.url, hub.url, tmp_path)
        env["PYTHONPATH"] = hiding_modelscope(tmp_path / "hidden") + ":" + env["PYTHONPATH"]
        result = run(generate(models, tmp_path / "a.wav", "--download", "--source", "modelscope"), env)
        assert ms.requests == [] and hub.requests == []
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: Downloading from ModelScope needs the modelscope package, which is not installed: pip install "
        "modelscope (in the Python that runs the pack), or download from the Hugging Face Hub (hf)."]
    assert not models.exists() and not (tmp_path / "a.wav").exists()


def test_an_unknown_source_in_the_environment_is_one_error_line_naming_the_choices(tmp_path):
    models = tmp_path / "HeartMuLa"
    with StandInModelScope() as ms, StandInHub() as hub:
        env = both_env(ms.url, hub.url, tmp_path, HEARTMULA_DOWNLOAD_SOURCE="modelscop")
        result = run(generate(models, tmp_path / "a.wav", "--download"), env)
        assert ms.requests == [] and hub.requests == []
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: Unknown HEARTMULA_DOWNLOAD_SOURCE='modelscop': use hf (the Hugging Face Hub) or modelscope "
        "(ModelScope)."]


def test_modelscope_is_imported_only_when_a_download_from_it_runs(tmp_path):
    """The library, the command line and a first run whose folder lacks nothing leave it alone."""
    shutil.copytree(CKPT, tmp_path / "HeartMuLa")
    code = ("import sys, heartmula_core.cli.main as m; m.build_parser()\n"
            "from heartmula_core.checkpoints.fetch import fetch_models\n"
            f"fetch_models({str(tmp_path / 'HeartMuLa')!r}, True, source='modelscope')\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('modelscope', 'modelscope_hub')))")
    out = subprocess.run([sys.executable, "-c", code], env=modelscope_env(None, tmp_path), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@needs_modelscope
def test_the_modelscope_commands_the_errors_print_fetch_the_official_layout(tmp_path):
    """Run by hand (here: by modelscope's own command line), they give what --download gives."""
    from heartmula_core.checkpoints.store import download_commands

    program = Path(sys.executable).with_name("modelscope")
    if not program.exists():
        pytest.skip(f"no modelscope command beside {sys.executable}")
    models = tmp_path / "HeartMuLa"
    commands = [c for c in download_commands("lm", LM, models) + download_commands("codec", CODEC, models)
                if c.startswith("modelscope ")]
    with StandInModelScope() as ms:
        for command in dict.fromkeys(commands):
            done = subprocess.run([str(program), *shlex.split(command)[1:]], env=modelscope_env(ms.url, tmp_path),
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (command, done.stderr)
    assert len(commands) == 3  # the shared files, the LM, the codec
    for name in OFFICIAL_FILES:
        assert (models / name).read_bytes() == (CKPT / name).read_bytes(), name
