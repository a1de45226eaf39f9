"""The model folders a user has, and fetching the official ones: list, resolve, download.

The same code serves the loader nodes (roots = the model folders ComfyUI has registered) and the
command line (roots = the folder it was given). Downloads use ``huggingface_hub``; every error that
a download could fix names the exact ``hf download`` commands, so they can be run by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import CheckpointError
from .folders import list_folders, missing_shared, weight_files
from .kinds import KINDS, SHARED_REPO, hf_command


def installed(kind: str, roots: Iterable[Path]) -> dict[str, Path]:
    """Folder name -> path of every folder of ``kind`` in ``roots``; the first root wins a name."""
    found: dict[str, Path] = {}
    for root in roots:
        try:
            names = list_folders(root, kind)
        except OSError:
            continue
        for name in names:
            found.setdefault(name, Path(root) / name)
    return found


def choices(kind: str, roots: Iterable[Path]) -> list[str]:
    """Installed folders first, then the official ones not downloaded yet."""
    try:
        names = list(installed(kind, roots))
    except Exception:  # a broken folder must never hide a choice list; loading reports the details
        names = []
    return names + [n for n in KINDS[kind].repos if n not in names]


def download_commands(kind: str, name: str, root: Path) -> list[str]:
    """What fetches official folder ``name`` (and the files its kind shares) into ``root``."""
    model = KINDS[kind]
    shared = [hf_command(SHARED_REPO, root, model.shared_files)] if model.shared_files else []
    return shared + [hf_command(model.repos[name], root / name)]


def complete(folder: Path, kind: str) -> bool:
    """A config.json and, for the models we load ourselves (LM, codec), every weight file: what a
    download stopped half way (Ctrl-C, a full disk) lacks."""
    if not (Path(folder) / "config.json").is_file():
        return False
    if kind not in ("lm", "codec"):
        return True
    try:
        weight_files(Path(folder), kind)
    except CheckpointError:
        return False
    return True


def _hub():
    import huggingface_hub

    return huggingface_hub


def download(kind: str, name: str, root: Path) -> Path:
    """Fetch official folder ``name`` into ``root`` (and the kind's shared files that are missing)."""
    model = KINDS[kind]
    hub = _hub()
    target = Path(root) / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for filename in missing_shared(target, kind):
            hub.hf_hub_download(repo_id=SHARED_REPO, filename=filename, local_dir=str(root))
        if not complete(target, kind):
            hub.snapshot_download(repo_id=model.repos[name], local_dir=str(target))
        if not complete(target, kind):  # huggingface_hub hands back a partial folder when offline
            raise OSError(f"{target} is still incomplete (the Hub could not be reached?)")
    except Exception as exc:  # network, disk, auth: say what to run by hand
        commands = "\n  ".join(download_commands(kind, name, Path(root)))
        raise CheckpointError(
            f"Downloading {model.label} {name} into {root} failed: {exc}\nDownload it by hand with:\n  {commands}"
        ) from exc
    return target


def resolve(kind: str, name: str, roots: list[Path], download_root: Path, allow_download: bool,
            how_to_allow: str) -> Path:
    """The folder of ``name``, downloading an official one when allowed; otherwise an error naming
    what is missing, the commands that fetch it, and ``how_to_allow`` (how the caller switches
    downloading on)."""
    model = KINDS[kind]
    found = installed(kind, roots)
    where = ", ".join(str(r) for r in roots) or "(no model folder)"
    if name in found:
        folder = found[name]
        missing = missing_shared(folder, kind)
        if not missing and (not allow_download or name not in model.repos or complete(folder, kind)):
            return folder
        if allow_download:  # shared files, or an official folder a stopped download left incomplete
            return download(kind, name, folder.parent)
        raise CheckpointError(
            f"{model.label} folder {folder} was found, but {' and '.join(missing)} (shared by all of them) is "
            f"missing beside it. Download it with:\n  {hf_command(SHARED_REPO, folder.parent, missing)}\n"
            f"or {how_to_allow}."
        )
    if name not in model.repos:
        raise CheckpointError(
            f"{model.label} '{name}' was not found in {where}. Installed: {', '.join(found) or 'none'}. Pick one "
            f"of those, one of the official names ({', '.join(model.repos)}) to download it, or put a "
            f"{model.label} folder there."
        )
    if allow_download:
        return download(kind, name, download_root)
    commands = "\n  ".join(download_commands(kind, name, download_root))
    raise CheckpointError(
        f"{model.label} '{name}' is not downloaded yet: expected the folder {download_root / name} "
        f"(searched {where}). Download it with:\n  {commands}\nor {how_to_allow}."
    )
