"""Where the listening models live: Whisper folders (HeartTranscriptor) under the HeartMuLa model
folders, CLAP folders there or under models/CLAP, and fetching the official ones from the Hub.

A model folder is recognised by the ``model_type`` in its config.json, so any Whisper or CLAP
checkpoint in Hugging Face format can be dropped in beside the official ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..heartmula_core.errors import CheckpointError
from ..heartmula_core.hf_folders import read_model_type
from . import model_folders

CLAP_KEY = "CLAP"

KINDS = {
    # kind: (label, model_type in config.json, official name -> Hub repository)
    "whisper": ("HeartTranscriptor", "whisper", {"HeartTranscriptor-oss": "HeartMuLa/HeartTranscriptor-oss"}),
    "clap": ("CLAP", "clap", {"larger_clap_music": "laion/larger_clap_music"}),
}


def roots(kind: str) -> list[Path]:
    """Folders searched for ``kind``: the HeartMuLa model folders; for CLAP also models/CLAP and any
    ``CLAP:`` paths of extra_model_paths.yaml."""
    paths = [str(p) for p in model_folders.roots()]
    if kind == "clap":
        paths += [os.path.join(folder_paths.models_dir, CLAP_KEY)] + model_folders.registered_paths(CLAP_KEY)
    return model_folders.unique_folders(paths)


def installed(kind: str) -> dict[str, Path]:
    """Folder name -> path of every folder of ``kind`` (its config.json's model_type); first root wins."""
    _, model_type, _ = KINDS[kind]
    result: dict[str, Path] = {}
    for root in roots(kind):
        try:
            children = sorted(p for p in root.iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children:
            if child.name not in result and read_model_type(child) == model_type:
                result[child.name] = child
    return result


def choices(kind: str) -> list[str]:
    """Dropdown entries: installed folders first, then official ones not downloaded yet."""
    try:
        names = list(installed(kind))
    except Exception:  # never let a broken folder hide the node; the loader reports details
        names = []
    return names + [n for n in KINDS[kind][2] if n not in names]


def _download_root(kind: str) -> Path:
    if kind == "clap":
        return Path(folder_paths.models_dir) / CLAP_KEY
    return model_folders.download_root()


def resolve(kind: str, name: str, allow_download: bool) -> Path:
    """The folder of ``name``, downloading an official one when allowed; otherwise a clear error."""
    label, _, repos = KINDS[kind]
    found = installed(kind)
    if name in found:
        return found[name]
    where = ", ".join(str(r) for r in roots(kind)) or "(no model folder registered)"
    if name not in repos:
        listed = ", ".join(found) or "none"
        raise CheckpointError(
            f"{label} '{name}' was not found in {where}. Installed: {listed}. Put a {label} folder in "
            f"Hugging Face format (config.json, weights, preprocessor_config.json, tokenizer) there."
        )
    target = _download_root(kind) / name
    command = f'hf download {repos[name]} --local-dir "{target}"'
    if not allow_download:
        raise CheckpointError(
            f"{label} '{name}' is not downloaded yet: expected the folder {target} (searched {where}). "
            f"Switch on 'download if missing', or download it with:\n  {command}"
        )
    try:
        import huggingface_hub

        target.parent.mkdir(parents=True, exist_ok=True)
        huggingface_hub.snapshot_download(repo_id=repos[name], local_dir=str(target))
    except Exception as exc:  # network, disk, auth: say what to run by hand
        raise CheckpointError(
            f"Downloading {label} {name} into {target} failed: {exc}\nDownload it by hand with:\n  {command}"
        ) from exc
    return target
