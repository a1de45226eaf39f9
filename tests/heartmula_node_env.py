"""Fixtures for node tests: a throw-away ComfyUI home with the tiny checkpoints, a spy on model
loading, progress and Cancel helpers. Works on the stand-in and on a real ComfyUI (COMFYUI_DIR)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TINY_CKPT = Path(__file__).resolve().parent / "data" / "tiny" / "ckpt"
LM_NAME = "HeartMuLa-oss-3B"
CODEC_NAME = "HeartCodec-oss"


@dataclass
class ComfyHome:
    base: Path
    models: Path  # models/HeartMuLa
    output: Path
    input: Path
    loads: list = field(default_factory=list)  # (patchers, memory_required) per load_models_gpu call
    full_loads: list = field(default_factory=list)  # force_full_load of each of those calls
    progress: list = field(default_factory=list)  # (value, total) per progress-bar update

    def run(self, node, **inputs):
        """Execute a node as the server does (classmethod with keyword inputs); its outputs as a tuple."""
        out = node.execute(**inputs)
        return out.args


def install_tiny(models: Path, lm=True, codec=True, root_files=True) -> None:
    models.mkdir(parents=True, exist_ok=True)
    if lm:
        shutil.copytree(TINY_CKPT / LM_NAME, models / LM_NAME)
    if codec:
        shutil.copytree(TINY_CKPT / CODEC_NAME, models / CODEC_NAME)
    if root_files:
        for name in ("tokenizer.json", "gen_config.json"):
            shutil.copy(TINY_CKPT / name, models / name)


@pytest.fixture
def comfy_home(tmp_path, monkeypatch, pack):
    """ComfyUI folders under tmp_path (models/HeartMuLa holds the tiny checkpoints), the pack's model
    folder registered there, load_models_gpu recorded, progress recorded, interrupt flag cleared."""
    import comfy.model_management as mm
    import comfy.utils
    import folder_paths

    base = tmp_path / "comfy"
    home = ComfyHome(base, base / "models" / "HeartMuLa", base / "output", base / "input")
    for d in (home.output, home.input, base / "temp"):
        d.mkdir(parents=True)
    install_tiny(home.models)

    monkeypatch.setattr(folder_paths, "models_dir", str(base / "models"))
    monkeypatch.setattr(folder_paths, "output_directory", str(home.output))
    monkeypatch.setattr(folder_paths, "input_directory", str(home.input))
    monkeypatch.setattr(folder_paths, "temp_directory", str(base / "temp"))
    for key in ("HeartMuLa", "heartmula"):
        if key in folder_paths.folder_names_and_paths:
            monkeypatch.delitem(folder_paths.folder_names_and_paths, key)
    pack.nodes.model_folders.register()

    real_load = mm.load_models_gpu

    def recording_load(models, memory_required=0, **kwargs):
        home.loads.append((list(models), memory_required))
        home.full_loads.append(kwargs.get("force_full_load", False))
        return real_load(models, memory_required=memory_required, **kwargs)

    monkeypatch.setattr(mm, "load_models_gpu", recording_load)

    def hook(value, total, preview, node_id=None):
        home.progress.append((value, total))

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    mm.interrupt_current_processing(False)
    yield home
    mm.interrupt_current_processing(False)
    if hasattr(mm, "unload_all_models"):
        mm.unload_all_models()
