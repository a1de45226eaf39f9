"""Checks and loading options for the Hugging Face model folders used by the listening models.

Whisper (HeartTranscriptor) and CLAP are loaded with ``transformers``. Before handing a folder to
``from_pretrained`` we check that it holds the files that loader needs and that its config names the
expected model type, so a wrong folder gets one message listing what is missing instead of a deep
``transformers`` traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from .errors import CheckpointError

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
# transformers < 5 writes the feature extractor settings to the first, 5.x to the second.
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def read_model_type(folder: Path) -> str | None:
    """``model_type`` from a folder's config.json, or None when there is no readable config."""
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def check_hf_folder(folder: str | Path, what: str, model_types: Sequence[str]) -> Path:
    """Raise CheckpointError unless ``folder`` is a loadable Hugging Face folder of ``model_types``."""
    folder = Path(folder)
    expected = (
        f"A {what} folder in Hugging Face format holds config.json (model_type "
        f"{' or '.join(repr(t) for t in model_types)}), weights ({' or '.join(WEIGHT_FILES[::2])}), "
        f"preprocessor_config.json and a tokenizer ({' or '.join(TOKENIZER_FILES)})."
    )
    if not folder.is_dir():
        raise CheckpointError(f"{what}: folder {folder} does not exist. {expected}")
    problems = []
    if not (folder / "config.json").is_file():
        problems.append("config.json is missing")
    else:
        model_type = read_model_type(folder)
        if model_type not in model_types:
            problems.append(f"config.json has model_type {model_type!r}")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        problems.append("no weight file")
    if not any((folder / name).is_file() for name in PROCESSOR_FILES):
        problems.append("preprocessor_config.json is missing")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        problems.append("no tokenizer file")
    if problems:
        raise CheckpointError(
            f"{what}: {folder} is not in a format this pack can load ({'; '.join(problems)}). {expected}"
        )
    return folder


def from_pretrained_options(dtype: torch.dtype) -> dict:
    """Keyword arguments for ``from_pretrained`` that work on transformers 4.x and 5.x.

    Never touches the network (the folder was checked above), and asks for the requested dtype under
    the argument name the installed version understands (``dtype`` since 4.56, ``torch_dtype`` before).
    ``from_pretrained`` builds the module without running random initialisation for weights it loads.
    """
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    options = {"local_files_only": True}
    if (major, minor) >= (4, 56):
        options["dtype"] = dtype
    else:
        options["torch_dtype"] = dtype
        options["low_cpu_mem_usage"] = True
    return options
