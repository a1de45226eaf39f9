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

The official models come from the Hugging Face Hub and, under the same names (the official
README's ``modelscope download`` commands), from ModelScope; CLAP is a LAION model on the Hub only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEARTMULA_FOLDER = "HeartMuLa"  # the model folder name (ComfyUI: models/HeartMuLa)
CLAP_FOLDER = "CLAP"
SHARED_REPO = "HeartMuLa/HeartMuLaGen"  # holds the tokenizer.json and gen_config.json every LM uses
MODELSCOPE_SHARED_REPO = "HeartMuLa/HeartMuLaGen"  # the same files on ModelScope


@dataclass(frozen=True)
class ModelKind:
    key: str
    label: str  # what messages call it
    model_type: str  # config.json "model_type" of its folders
    repos: dict[str, str]  # official folder name -> Hugging Face repository (the first is the default)
    modelscope: dict[str, str]  # official folder name -> ModelScope repository, where ModelScope has one
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
    }, modelscope={  # the official README's `modelscope download` commands (2026-01 to 2026-03)
        "HeartMuLa-oss-3B": "HeartMuLa/HeartMuLa-oss-3B",
        "HeartMuLa-RL-oss-3B-20260123": "HeartMuLa/HeartMuLa-RL-oss-3B-20260123",
        "HeartMuLa-oss-3B-happy-new-year": "HeartMuLa/HeartMuLa-oss-3B-happy-new-year",
    }, name_prefix="heartmula", shared_files=("tokenizer.json", "gen_config.json")),
    "codec": ModelKind("codec", "HeartCodec", "heartcodec", {
        "HeartCodec-oss": "HeartMuLa/HeartCodec-oss",
        "HeartCodec-oss-20260123": "HeartMuLa/HeartCodec-oss-20260123",
    }, modelscope={
        "HeartCodec-oss": "HeartMuLa/HeartCodec-oss",
        "HeartCodec-oss-20260123": "HeartMuLa/HeartCodec-oss-20260123",
    }, name_prefix="heartcodec"),
    "whisper": ModelKind("whisper", "HeartTranscriptor", "whisper",
                         {"HeartTranscriptor-oss": "HeartMuLa/HeartTranscriptor-oss"},
                         modelscope={"HeartTranscriptor-oss": "HeartMuLa/HeartTranscriptor-oss"}),  # examples/README
    "clap": ModelKind("clap", "CLAP", "clap", {"larger_clap_music": "laion/larger_clap_music"},
                      modelscope={},  # LAION publishes it on the Hub; no ModelScope copy is known to be official
                      folders=(HEARTMULA_FOLDER, CLAP_FOLDER), download_folder=CLAP_FOLDER),
}


def hf_command(repo: str, target: Path, files: tuple[str, ...] | list[str] = ()) -> str:
    """The ``hf download`` command that puts ``repo`` (or only ``files`` of it) into ``target``."""
    return " ".join(["hf download", repo, *files, f'--local-dir "{target}"'])


def modelscope_command(repo: str, target: Path, files: tuple[str, ...] | list[str] = ()) -> str:
    """The ``modelscope download`` command (as the official README writes it) that puts ``repo``
    (or only ``files`` of it) into ``target``."""
    return " ".join(["modelscope download --model", repo, *files, f'--local_dir "{target}"'])


def download_hint(folder: Path, kind: str) -> str:
    """How to fetch ``folder``: its official repository by name, else the kind's default one."""
    model = KINDS[kind]
    name = folder.name if folder.name in model.repos else model.default_name
    hint = f"Download it with: {hf_command(model.repos[name], folder)}"
    if name in model.modelscope:
        hint += f" (or from ModelScope: {modelscope_command(model.modelscope[name], folder)})"
    return hint
