"""The command line's first run: what a model folder (``--model-dir``) lacks of the official LM,
codec and shared files, fetched when the user asked (``--download``) with the loader nodes' code
(store.download), or named with the ``hf download`` commands that fetch it.

``--model-dir`` is the root of the official layout (kinds.py) or an LM folder in it: the LM, the
codec and tokenizer.json / gen_config.json sit in, or beside, that folder. A root without an LM gets
the default official one; an LM folder that does not exist yet but carries an official name gets
that model. Downloads are never started unasked: they are several GB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CheckpointError
from . import store
from .folders import list_folders, missing_shared, refuse_a_file
from .kinds import KINDS, SHARED_REPO, hf_command

HOW_TO_ALLOW = "add --download to fetch them"  # the command line's switch


@dataclass(frozen=True)
class Missing:
    kind: str
    name: str  # the official folder name (its repository is in KINDS)
    root: Path  # the folder it belongs in
    files: tuple[str, ...] = ()  # only these shared files are missing (the folder itself is there)

    def describe(self) -> str:
        if self.files:
            return f"{' and '.join(self.files)} (beside {self.root / self.name})"
        shared = missing_shared(self.root / self.name, self.kind)
        return (f"{KINDS[self.kind].label} {self.name} ({self.root / self.name})"
                + (f" with {', '.join(shared)}" if shared else ""))

    def commands(self) -> list[str]:
        if self.files:
            return [hf_command(SHARED_REPO, self.root, self.files)]
        return store.download_commands(self.kind, self.name, self.root)


def _lm_folder(path: Path) -> tuple[Path, list[str]]:
    """(the root, the LM folder names to use): ``path`` itself when it is an LM folder or will be
    one (an official name holding no LM), else the LM folders in it."""
    if (path / "config.json").is_file() or (path.name in KINDS["lm"].repos and not list_folders(path, "lm")):
        return path.parent, [path.name]
    return path, list_folders(path, "lm")


def _check(kind: str, root: Path, names: list[str]) -> list[Missing]:
    """What of ``kind`` is missing in ``root``: its default official folder when there is none; an
    official folder a stopped download left incomplete; the shared files of the one in use."""
    if not names:
        return [Missing(kind, KINDS[kind].default_name, root)]
    if len(names) > 1:
        return []  # the loader asks which one
    name = names[0]
    if name in KINDS[kind].repos and not store.complete(root / name, kind):
        return [Missing(kind, name, root)]
    shared = missing_shared(root / name, kind)
    return [Missing(kind, name, root, tuple(shared))] if shared else []


def missing_models(model_dir: str | Path) -> list[Missing]:
    """The official folders and shared files ``model_dir`` lacks for sampling and decoding."""
    refuse_a_file(Path(model_dir).expanduser(), "The model folder")
    root, lm_names = _lm_folder(Path(model_dir).expanduser())
    return _check("lm", root, lm_names) + _check("codec", root, list_folders(root, "codec"))


def fetch_models(model_dir: str | Path, allow_download: bool, say: Callable[[str], None] = print,
                 how_to_allow: str = HOW_TO_ALLOW) -> None:
    """Fetch what ``model_dir`` lacks (``allow_download``), or raise one CheckpointError naming it
    all, with the commands that fetch it by hand and ``how_to_allow``. Nothing missing: no network."""
    missing = missing_models(model_dir)
    if missing and not allow_download:
        raise CheckpointError(f"The model folder {model_dir} lacks: {_listed(missing)}. Download them with:\n  "
                              f"{_commands(missing)}\nor {how_to_allow} (several GB, once).")
    for index, item in enumerate(missing):
        repo = SHARED_REPO if item.files else KINDS[item.kind].repos[item.name]
        say(f"downloading {item.describe()} from the Hugging Face Hub ({repo})")
        try:
            store.download(item.kind, item.name, item.root)
        except CheckpointError as exc:  # its message names its own commands; name every one left
            cause = exc.__cause__ or exc
            offline = " (HF_HUB_OFFLINE is set: downloads are switched off)" if _offline() else ""
            raise CheckpointError(f"Downloading {item.describe()} failed{offline}: {cause}\nDownload what is "
                                  f"missing by hand with:\n  {_commands(missing[index:])}") from cause


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _listed(missing: list[Missing]) -> str:
    return "; ".join(item.describe() for item in missing)


def _commands(missing: list[Missing]) -> str:
    return "\n  ".join(dict.fromkeys(command for item in missing for command in item.commands()))
