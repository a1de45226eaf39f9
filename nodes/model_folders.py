"""The model folders ComfyUI knows for the pack: ``models/HeartMuLa`` (registered here), the
``CLAP`` folder, and any paths a user gave for them in extra_model_paths.yaml. The core lists,
resolves and downloads model folders in them (heartmula_core/checkpoints/store.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..heartmula_core.checkpoints import store
from ..heartmula_core.checkpoints.kinds import HEARTMULA_FOLDER, KINDS

FOLDER_NAMES = ("HeartMuLa", "heartmula")  # under ComfyUI/models; the lower-case one is another pack's
HOW_TO_ALLOW = "switch on 'download if missing'"


def register() -> None:
    """Add models/HeartMuLa (and models/heartmula) to ComfyUI's model paths. Appends, so paths a
    user set in extra_model_paths.yaml stay and come first."""
    for name in FOLDER_NAMES:
        folder_paths.add_model_folder_path(HEARTMULA_FOLDER, os.path.join(folder_paths.models_dir, name))


def folder_paths_of(key: str) -> list[str]:
    """The paths ComfyUI knows for model folder ``key`` (either spelling), then models/<key>."""
    paths = []
    for name in (key, key.lower()):
        if name in folder_paths.folder_names_and_paths:
            paths += folder_paths.get_folder_paths(name)
    return paths + [os.path.join(folder_paths.models_dir, key)]


def unique_folders(paths) -> list[Path]:
    """Paths in order without duplicates (case-insensitive file systems make HeartMuLa and heartmula
    one folder; symlinks may point twice at one)."""
    found, seen = [], set()
    for path in paths:
        real = os.path.normcase(os.path.realpath(path))
        if real not in seen:
            seen.add(real)
            found.append(Path(path))
    return found


def roots(kind: str) -> list[Path]:
    """Every folder searched for a model of ``kind``, in ComfyUI's order."""
    return unique_folders(path for key in KINDS[kind].folders for path in folder_paths_of(key))


def download_root(kind: str) -> Path:
    return Path(folder_paths_of(KINDS[kind].download_folder)[0])


def choices(kind: str) -> list[str]:
    """Dropdown entries: installed folders first, then official ones not downloaded yet."""
    return store.choices(kind, roots(kind))


def resolve(kind: str, name: str, allow_download: bool, source: str = "default") -> Path:
    """The folder of ``name`` (the server does not check V3 combo values: any string arrives),
    downloaded from ``source`` when allowed; otherwise an error with the commands that fetch it."""
    return store.resolve(kind, name, roots(kind), download_root(kind), allow_download, HOW_TO_ALLOW, source)
