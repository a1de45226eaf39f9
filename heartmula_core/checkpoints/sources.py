"""Where official models are downloaded from: the Hugging Face Hub (the default) or ModelScope,
which serves the same repositories where the Hub is out of reach (mainland China).

Each source is used through its own package, so its cache, resume and endpoint settings apply as
for any other download (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``; ``MODELSCOPE_ENDPOINT``,
``MODELSCOPE_CACHE``). ``huggingface_hub`` is a dependency of the pack; ``modelscope`` is
optional and imported only when chosen. ``HEARTMULA_DOWNLOAD_SOURCE`` sets the default of every
front door (the loader nodes, ``--download``), so a user sets it once.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from .kinds import KINDS, MODELSCOPE_SHARED_REPO, SHARED_REPO, hf_command, modelscope_command

HF, MODELSCOPE = "hf", "modelscope"
SOURCES = {HF: "the Hugging Face Hub", MODELSCOPE: "ModelScope"}  # name -> what messages call it
SOURCE_ENV = "HEARTMULA_DOWNLOAD_SOURCE"
DEFAULT = "default"  # the loader nodes' choice that means: SOURCE_ENV, else HF
CHOICES = (HF, MODELSCOPE)


def pick_source(value: str | None = None) -> str:
    """``value`` (hf or modelscope); None, "" or "default" ask ``HEARTMULA_DOWNLOAD_SOURCE``, whose
    absence means hf. Anything else is one error naming the choices."""
    chosen, given = (value or "").strip().lower(), f"download source {value!r}"
    if chosen in ("", DEFAULT):
        given = f"{SOURCE_ENV}={os.environ.get(SOURCE_ENV, '')!r}"
        chosen = os.environ.get(SOURCE_ENV, "").strip().lower() or HF
    if chosen not in SOURCES:
        raise CheckpointError(f"Unknown {given}: use hf (the Hugging Face Hub) or modelscope (ModelScope).")
    return chosen


def repository(kind: str, name: str, source: str) -> str | None:
    """The repository of official folder ``name`` on ``source``; None where that source has none."""
    model = KINDS[kind]
    return (model.modelscope if source == MODELSCOPE else model.repos).get(name)


def shared_repository(source: str) -> str:
    """The repository of the files every LM shares (tokenizer.json, gen_config.json)."""
    return MODELSCOPE_SHARED_REPO if source == MODELSCOPE else SHARED_REPO


def commands(hf_repo: str, modelscope_repo: str | None, target: Path, files=()) -> list[str]:
    """The commands that fetch a repository (or ``files`` of it) by hand: ``hf download``, then
    ``modelscope download`` where ModelScope has it."""
    found = [hf_command(hf_repo, target, files)]
    return found + ([modelscope_command(modelscope_repo, target, files)] if modelscope_repo else [])


def require(source: str) -> None:
    """Before a download from ``source``: its package is there, else one error saying how to get it."""
    if source == MODELSCOPE:
        _modelscope()


def _hub():
    import huggingface_hub

    return huggingface_hub


def _modelscope():
    try:
        from modelscope.hub.file_download import model_file_download
        from modelscope.hub.snapshot_download import snapshot_download
    except ModuleNotFoundError as exc:
        if exc.name != "modelscope":
            raise CheckpointError(f"The modelscope package cannot be imported ({exc}): pip install -U modelscope") \
                from None
        raise CheckpointError("Downloading from ModelScope needs the modelscope package, which is not installed: "
                              "pip install modelscope (in the Python that runs the pack), or download from the "
                              "Hugging Face Hub (hf).") from None
    return model_file_download, snapshot_download


def fetch_file(source: str, repo: str, filename: str, root: Path) -> None:
    """``filename`` of ``repo`` into ``root`` (each client skips it when already there)."""
    if source == MODELSCOPE:
        model_file_download, _ = _modelscope()
        model_file_download(model_id=repo, file_path=filename, local_dir=str(root))
        return
    _hub().hf_hub_download(repo_id=repo, filename=filename, local_dir=str(root))


def fetch_folder(source: str, repo: str, target: Path) -> None:
    """Every file of ``repo`` into ``target``: files already complete there are skipped, one a
    stopped download left partial is resumed (each client keeps its own record of that)."""
    if source == MODELSCOPE:
        _, snapshot_download = _modelscope()
        snapshot_download(model_id=repo, local_dir=str(target))
        return
    _hub().snapshot_download(repo_id=repo, local_dir=str(target))


def offline_note(source: str) -> str:
    """What the user switched off, when a download failed because of it."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    return " (HF_HUB_OFFLINE is set: downloads are switched off)" if source == HF and offline else ""
