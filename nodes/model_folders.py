"""Where checkpoints live: the ``HeartMuLa`` model folder(s) registered with ComfyUI, the LM and
codec folders inside them, and fetching the official ones from the Hugging Face Hub.

Layout (the official one, shared with other HeartMuLa packs, so nothing is downloaded twice):

    models/HeartMuLa/
        tokenizer.json  gen_config.json       (HeartMuLa/HeartMuLaGen)
        HeartMuLa-oss-3B/ ...                 (one folder per LM, named like its repository)
        HeartCodec-oss/ ...                   (one folder per codec)
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..heartmula_core import checkpoints
from ..heartmula_core.errors import CheckpointError

FOLDER_KEY = "HeartMuLa"
FOLDER_NAMES = ("HeartMuLa", "heartmula")  # under ComfyUI/models; the lower-case one is another pack's

LM_REPOS = {
    **checkpoints.LM_REPOS,
    # recommended by the authors since 2026-02 (same architecture and files as HeartMuLa-oss-3B)
    "HeartMuLa-oss-3B-happy-new-year": "HeartMuLa/HeartMuLa-oss-3B-happy-new-year",
}
CODEC_REPOS = dict(checkpoints.CODEC_REPOS)
ROOT_REPO = checkpoints.ROOT_REPO
ROOT_FILES = ("tokenizer.json", "gen_config.json")

KINDS = {
    "lm": ("HeartMuLa LM", LM_REPOS, checkpoints.list_lm_folders),
    "codec": ("HeartCodec", CODEC_REPOS, checkpoints.list_codec_folders),
}


def register() -> None:
    """Add models/HeartMuLa (and models/heartmula) to ComfyUI's model paths. Appends, so paths a
    user set in extra_model_paths.yaml stay and come first."""
    for name in FOLDER_NAMES:
        folder_paths.add_model_folder_path(FOLDER_KEY, os.path.join(folder_paths.models_dir, name))


def registered_paths(key: str) -> list[str]:
    """The paths ComfyUI knows for model folder ``key`` (and its lower-case spelling)."""
    paths = []
    for name in (key, key.lower()):
        if name in folder_paths.folder_names_and_paths:
            paths += folder_paths.get_folder_paths(name)
    return paths


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


def roots() -> list[Path]:
    """Every registered HeartMuLa folder, in ComfyUI's order."""
    return unique_folders(registered_paths(FOLDER_KEY))


def installed(kind: str) -> dict[str, Path]:
    """Folder name -> path of every LM ("lm") or codec ("codec") folder; the first root wins."""
    _, _, lister = KINDS[kind]
    result: dict[str, Path] = {}
    for root in roots():
        try:
            names = lister(root)
        except OSError:
            continue
        for name in names:
            result.setdefault(name, root / name)
    return result


def choices(kind: str) -> list[str]:
    """Dropdown entries: installed folders first, then official ones not downloaded yet."""
    try:
        names = list(installed(kind))
    except Exception:  # a broken folder must never hide the node; the loader reports details
        names = []
    _, repos, _ = KINDS[kind]
    return names + [n for n in repos if n not in names]


def download_root() -> Path:
    paths = roots()
    if not paths:
        raise CheckpointError("No HeartMuLa model folder is registered with ComfyUI (models/HeartMuLa).")
    return paths[0]


def _q(path: Path) -> str:
    return f'"{path}"'


def download_commands(kind: str, name: str, root: Path) -> list[str]:
    _, repos, _ = KINDS[kind]
    commands = [f"hf download {repos[name]} --local-dir {_q(root / name)}"]
    if kind == "lm":
        commands.insert(0, f"hf download {ROOT_REPO} {' '.join(ROOT_FILES)} --local-dir {_q(root)}")
    return commands


def _missing_root_files(folder: Path) -> list[str]:
    return [f for f in ROOT_FILES if not (folder / f).is_file() and not (folder.parent / f).is_file()]


def _hub():
    import huggingface_hub

    return huggingface_hub


def download(kind: str, name: str, root: Path) -> Path:
    """Fetch an official folder (and, for an LM, the shared tokenizer/gen_config) into ``root``."""
    label, repos, _ = KINDS[kind]
    hub = _hub()
    target = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        if kind == "lm":
            for filename in _missing_root_files(target):
                hub.hf_hub_download(repo_id=ROOT_REPO, filename=filename, local_dir=str(root))
        if not (target / "config.json").is_file():
            hub.snapshot_download(repo_id=repos[name], local_dir=str(target))
    except Exception as exc:  # network, disk, auth: say what to run by hand
        commands = "\n  ".join(download_commands(kind, name, root))
        raise CheckpointError(
            f"Downloading {label} {name} into {root} failed: {exc}\nDownload it by hand with:\n  {commands}"
        ) from exc
    return target


def resolve(kind: str, name: str, allow_download: bool) -> Path:
    """The folder of ``name``, downloading it when allowed; otherwise an error with the commands."""
    label, repos, _ = KINDS[kind]
    found = installed(kind)
    where = ", ".join(str(r) for r in roots()) or "(no HeartMuLa model folder registered)"
    if name in found:
        folder = found[name]
        missing = _missing_root_files(folder) if kind == "lm" else []
        if not missing:
            return folder
        if allow_download:
            download(kind, name, folder.parent)
            return folder
        raise CheckpointError(
            f"{label} folder {folder} was found, but {' and '.join(missing)} (shared by all HeartMuLa LMs) is "
            f"missing beside it. Download it with:\n  hf download {ROOT_REPO} {' '.join(missing)} "
            f"--local-dir {_q(folder.parent)}\nor switch on 'download if missing'."
        )
    if name not in repos:
        listed = ", ".join(found) or "none"
        raise CheckpointError(
            f"{label} '{name}' is not in the HeartMuLa model folders ({where}). Installed: {listed}. "
            f"Pick one of those, or one of the official names ({', '.join(repos)}) to download it."
        )
    root = download_root()
    if allow_download:
        return download(kind, name, root)
    commands = "\n  ".join(download_commands(kind, name, root))
    raise CheckpointError(
        f"{label} '{name}' is not downloaded yet: expected the folder {root / name} "
        f"(searched {where}). Switch on 'download if missing', or download it with:\n  {commands}"
    )
