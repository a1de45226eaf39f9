"""Loading the listening models from Hugging Face folders with ``transformers``.

Whisper (HeartTranscriptor) and CLAP are loaded with ``from_pretrained``. Before handing it a folder
we check that it holds the files that loader needs and that its config names the expected model
type, so a wrong folder gets one message listing what is missing instead of a deep ``transformers``
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints.folders import read_model_type
from ..checkpoints.kinds import KINDS
from ..errors import CheckpointError

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
# transformers < 5 writes the feature extractor settings to the first, 5.x to the second.
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def check_hf_folder(folder: str | Path, kind: str) -> Path:
    """Raise CheckpointError unless ``folder`` is a loadable Hugging Face folder of ``kind``."""
    folder = Path(folder)
    what, model_type = KINDS[kind].label, KINDS[kind].model_type
    expected = (
        f"A {what} folder in Hugging Face format holds config.json (model_type "
        f"{model_type!r}), weights ({' or '.join(WEIGHT_FILES[::2])}), "
        f"preprocessor_config.json and a tokenizer ({' or '.join(TOKENIZER_FILES)})."
    )
    if not folder.is_dir():
        raise CheckpointError(f"{what}: folder {folder} does not exist. {expected}")
    problems = []
    if not (folder / "config.json").is_file():
        problems.append("config.json is missing")
    else:
        found = read_model_type(folder)
        if found != model_type:
            problems.append(f"config.json has model_type {found!r}")
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


@dataclass
class LoadedModel:
    model: torch.nn.Module  # e.g. WhisperForConditionalGeneration, ClapModel
    processor: object  # its processor: feature extractor + tokenizer
    folder: Path


def load_pretrained(folder: str | Path, kind: str, model_class: str, processor_class: str,
                    dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a checked folder of ``kind`` on the CPU in ``dtype`` with the named ``transformers`` classes."""
    folder = check_hf_folder(folder, kind)
    import transformers

    model = getattr(transformers, model_class).from_pretrained(str(folder), **from_pretrained_options(dtype))
    processor = getattr(transformers, processor_class).from_pretrained(str(folder), local_files_only=True)
    model.eval()
    return LoadedModel(model=model, processor=processor, folder=folder)
