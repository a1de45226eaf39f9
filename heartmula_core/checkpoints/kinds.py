"""The one table of model kinds: how a folder of each is recognised and where the official ones
come from.

Layout (the official one, shared with other HeartMuLa packs, so nothing is downloaded twice):

    HeartMuLa/                             (a model folder: ComfyUI's models/HeartMuLa, or --model-dir)
        tokenizer.json  gen_config.json    (HeartMuLa/HeartMuLaGen, shared by every LM)
        HeartMuLa-oss-3B/ ...              (one folder per model, named like its repository)
        HeartCodec-oss/ ...
        HeartTranscriptor-oss/ ...
    CLAP/larger_clap_music/ ...            (CLAP folders may also sit in a CLAP model folder)

A folder is recognised by the ``model_type`` in its config.json, so any checkpoint of a kind in
that format can sit beside the official ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEARTMULA_FOLDER = "HeartMuLa"  # the model folder name (ComfyUI: models/HeartMuLa)
CLAP_FOLDER = "CLAP"
SHARED_REPO = "HeartMuLa/HeartMuLaGen"  # holds the tokenizer.json and gen_config.json every LM uses


@dataclass(frozen=True)
class ModelKind:
    key: str
    label: str  # what messages call it
    model_type: str  # config.json "model_type" of its folders
    repos: dict[str, str]  # official folder name -> Hugging Face repository (the first is the default)
    name_prefix: str | None = None  # a folder whose config.json names no model_type counts when its name starts so
    shared_files: tuple[str, ...] = ()  # files beside its folders (or inside them), fetched from SHARED_REPO
    folders: tuple[str, ...] = (HEARTMULA_FOLDER,)  # model folders searched, in order
    download_folder: str = HEARTMULA_FOLDER  # where a download goes

    @property
    def default_name(self) -> str:
        return next(iter(self.repos))


KINDS: dict[str, ModelKind] = {
    "lm": ModelKind("lm", "HeartMuLa LM", "heartmula", {
        "HeartMuLa-oss-3B": "HeartMuLa/HeartMuLa-oss-3B",
        "HeartMuLa-RL-oss-3B-20260123": "HeartMuLa/HeartMuLa-RL-oss-3B-20260123",
        # recommended by the authors since 2026-02 (same architecture and files as HeartMuLa-oss-3B)
        "HeartMuLa-oss-3B-happy-new-year": "HeartMuLa/HeartMuLa-oss-3B-happy-new-year",
    }, name_prefix="heartmula", shared_files=("tokenizer.json", "gen_config.json")),
    "codec": ModelKind("codec", "HeartCodec", "heartcodec", {
        "HeartCodec-oss": "HeartMuLa/HeartCodec-oss",
        "HeartCodec-oss-20260123": "HeartMuLa/HeartCodec-oss-20260123",
    }, name_prefix="heartcodec"),
    "whisper": ModelKind("whisper", "HeartTranscriptor", "whisper",
                         {"HeartTranscriptor-oss": "HeartMuLa/HeartTranscriptor-oss"}),
    "clap": ModelKind("clap", "CLAP", "clap", {"larger_clap_music": "laion/larger_clap_music"},
                      folders=(HEARTMULA_FOLDER, CLAP_FOLDER), download_folder=CLAP_FOLDER),
}


def hf_command(repo: str, target: Path, files: tuple[str, ...] | list[str] = ()) -> str:
    """The ``hf download`` command that puts ``repo`` (or only ``files`` of it) into ``target``."""
    return " ".join(["hf download", repo, *files, f'--local-dir "{target}"'])


def download_hint(folder: Path, kind: str) -> str:
    """How to fetch ``folder``: its official repository by name, else the kind's default one."""
    model = KINDS[kind]
    repo = model.repos.get(folder.name, model.repos[model.default_name])
    return f"Download it with: {hf_command(repo, folder)}"
