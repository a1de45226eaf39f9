"""The model folders a user has, and fetching the official ones: list, resolve, download.

The same code serves the loader nodes (roots = the model folders ComfyUI has registered) and the
command line (roots = the folder it was given). Downloads come from the Hugging Face Hub or
ModelScope (sources.py); every error that a download could fix names the exact ``hf download`` and
``modelscope download`` commands, so they can be run by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import CheckpointError
from . import sources
from .folders import list_folders, missing_shared, weight_files
from .kinds import KINDS


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


def shared_commands(root: Path, files) -> list[str]:
    """What fetches the shared ``files`` (tokenizer.json, gen_config.json) into ``root``, from either source."""
    return sources.commands(sources.shared_repository(sources.HF), sources.shared_repository(sources.MODELSCOPE),
                            root, files)


def download_commands(kind: str, name: str, root: Path) -> list[str]:
    """What fetches official folder ``name`` (and the files its kind shares) into ``root``: the
    ``hf download`` commands, then the ``modelscope download`` ones (where ModelScope has them).
    For a folder of another name, only the shared files."""
    shared = shared_commands(root, KINDS[kind].shared_files) if KINDS[kind].shared_files else []
    hf_repo, modelscope_repo = (sources.repository(kind, name, source) for source in sources.CHOICES)
    folder = sources.commands(hf_repo, modelscope_repo, root / name) if hf_repo else []
    return shared[:1] + folder[:1] + shared[1:] + folder[1:]  # the hf commands, then the modelscope ones


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


def download(kind: str, name: str, root: Path, source: str = sources.HF) -> Path:
    """Fetch what folder ``name`` in ``root`` lacks from ``source``: the kind's shared files and,
    for an official folder, every file not complete yet. Nothing that is there is fetched again."""
    model, target = KINDS[kind], Path(root) / name
    repo, by_hand = sources.repository(kind, name, source), "\n  ".join(download_commands(kind, name, Path(root)))
    if repo is None and name in model.repos:
        raise CheckpointError(f"{model.label} {name} is not on {sources.SOURCES[source]} as far as this pack knows. "
                              f"Download it from the Hugging Face Hub (hf), or by hand with:\n  {by_hand}")
    sources.require(source)  # a missing optional package is its own one-line error
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for filename in missing_shared(target, kind):
            sources.fetch_file(source, sources.shared_repository(source), filename, Path(root))
        if repo is not None and not complete(target, kind):
            sources.fetch_folder(source, repo, target)
            if not complete(target, kind):  # huggingface_hub hands back a partial folder when offline
                raise OSError(f"{target} is still incomplete ({sources.SOURCES[source]} could not be reached?)")
    except Exception as exc:  # network, disk, auth: say what to run by hand
        raise CheckpointError(f"Downloading {model.label} {name} into {root} from {sources.SOURCES[source]} failed: "
                              f"{exc}\nDownload it by hand with:\n  {by_hand}") from exc
    return target


def resolve(kind: str, name: str, roots: list[Path], download_root: Path, allow_download: bool,
            how_to_allow: str, source: str | None = None) -> Path:
    """The folder of ``name``, downloading an official one from ``source`` (None: the default,
    sources.pick_source) when allowed; otherwise an error naming what is missing, the commands
    that fetch it, and ``how_to_allow`` (how the caller switches downloading on)."""
    model = KINDS[kind]
    source = sources.pick_source(source) if allow_download else None
    found = installed(kind, roots)
    where = ", ".join(str(r) for r in roots) or "(no model folder)"
    if name in found:
        folder = found[name]
        missing = missing_shared(folder, kind)
        if not missing and (not allow_download or name not in model.repos or complete(folder, kind)):
            return folder
        if allow_download:  # shared files, or an official folder a stopped download left incomplete
            return download(kind, name, folder.parent, source)
        commands = "\n  ".join(shared_commands(folder.parent, missing))
        raise CheckpointError(
            f"{model.label} folder {folder} was found, but {' and '.join(missing)} (shared by all of them) is "
            f"missing beside it. Download it with:\n  {commands}\nor {how_to_allow}."
        )
    if name not in model.repos:
        raise CheckpointError(
            f"{model.label} '{name}' was not found in {where}. Installed: {', '.join(found) or 'none'}. Pick one "
            f"of those, one of the official names ({', '.join(model.repos)}) to download it, or put a "
            f"{model.label} folder there."
        )
    if allow_download:
        return download(kind, name, download_root, source)
    commands = "\n  ".join(download_commands(kind, name, download_root))
    raise CheckpointError(
        f"{model.label} '{name}' is not downloaded yet: expected the folder {download_root / name} "
        f"(searched {where}). Download it with:\n  {commands}\nor {how_to_allow}."
    )
