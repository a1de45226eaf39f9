"""The command line's first run: what a model folder (``--model-dir``) lacks of the official LM,
codec and shared files, fetched when the user asked (``--download``, from the Hugging Face Hub or
ModelScope: ``--source``) with the loader nodes' code (store.download), or named with the
``hf download`` and ``modelscope download`` commands that fetch it.

``--model-dir`` is the root of the official layout (kinds.py) or an LM folder in it: the LM, the
codec and tokenizer.json / gen_config.json sit in, or beside, that folder. A root without an LM gets
the default official one; an LM folder that does not exist yet but carries an official name gets
that model. Downloads are never started unasked: they are several GB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CheckpointError
from . import sources, store
from .folders import list_folders, missing_shared, refuse_a_file
from .kinds import KINDS

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
            return store.shared_commands(self.root, self.files)
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


def missing_models(model_dir: str | Path, with_codec: bool = True) -> list[Missing]:
    """The official folders and shared files ``model_dir`` lacks for sampling and decoding (without
    the codec when the caller was given a codec folder elsewhere)."""
    refuse_a_file(Path(model_dir).expanduser(), "The model folder")
    root, lm_names = _lm_folder(Path(model_dir).expanduser())
    codec = _check("codec", root, list_folders(root, "codec")) if with_codec else []
    return _check("lm", root, lm_names) + codec


def fetch_models(model_dir: str | Path, allow_download: bool, say: Callable[[str], None] = print,
                 how_to_allow: str = HOW_TO_ALLOW, source: str | None = None, with_codec: bool = True) -> None:
    """Fetch what ``model_dir`` lacks (``allow_download``) from ``source`` (None: the default,
    sources.pick_source), or raise one CheckpointError naming it all, with the commands that fetch
    it by hand and ``how_to_allow``. Nothing missing: no network, no download package imported."""
    source = sources.pick_source(source) if allow_download else None
    missing = missing_models(model_dir, with_codec)
    if missing and not allow_download:
        raise CheckpointError(f"The model folder {model_dir} lacks: {_listed(missing)}. Download them with:\n  "
                              f"{_commands(missing)}\nor {how_to_allow} (several GB, once).")
    if missing:
        sources.require(source)  # before the first announcement: a missing package is one line
    for index, item in enumerate(missing):
        repo = sources.shared_repository(source) if item.files else sources.repository(item.kind, item.name, source)
        say(f"downloading {item.describe()} from {sources.SOURCES[source]} ({repo})")
        try:
            store.download(item.kind, item.name, item.root, source)
        except CheckpointError as exc:  # its message names its own commands; name every one left
            cause = exc.__cause__ or exc
            raise CheckpointError(f"Downloading {item.describe()} from {sources.SOURCES[source]} failed"
                                  f"{sources.offline_note(source)}: {cause}\nDownload what is missing by hand "
                                  f"with:\n  {_commands(missing[index:])}") from cause


def _listed(missing: list[Missing]) -> str:
    return "; ".join(item.describe() for item in missing)


def _commands(missing: list[Missing]) -> str:
    """Every command once: the ``hf download`` ones, then the ``modelscope download`` ones."""
    found = dict.fromkeys(command for item in missing for command in item.commands())
    return "\n  ".join(sorted(found, key=lambda command: command.startswith("modelscope")))
