"""Reading a LoRA: the file (or the folder PEFT's ``save_pretrained`` wrote) and the
``adapter_config.json`` beside it, before anything is checked against a model.

A LoRA is untrusted input from the web: safetensors is read after the safetensors library has vetted
its header (``safetensors_header``); any other file only through torch's weights-only loader, which
refuses to run code (a pickle that would is refused, never unpickled). What cannot be read is one
``LoraError`` naming the file and what to do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError, LoraError
from ..weights import TensorSource
from .adapter_config import AdapterConfig, read_adapter_config

SAFETENSORS = (".safetensors", ".sft")
PEFT_FILES = ("adapter_model.safetensors", "adapter_model.bin")  # what save_pretrained writes, newest first
MAX_LORA_BYTES = 8 << 30  # a rank-1024 LoRA of every 3B layer is ~7 GB in float32; more is not a LoRA


@dataclass(frozen=True)
class LoraFile:
    """A LoRA's tensors as the file names them, and its PEFT config (None: none beside the file)."""

    path: Path
    tensors: dict[str, torch.Tensor]
    config: AdapterConfig | None


def find_file(path: str | Path) -> Path:
    """The LoRA file ``path`` names: the file itself, or in a folder PEFT's adapter_model.safetensors
    (or .bin), else the folder's only .safetensors file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise LoraError(f"LoRA {path} does not exist. Give a LoRA file (.safetensors) or the folder a trainer "
                        "saved it in (with adapter_model.safetensors and adapter_config.json).")
    if not path.is_dir():
        return path
    for name in PEFT_FILES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.iterdir() if p.suffix in SAFETENSORS and p.is_file())
    if len(found) == 1:
        return found[0]
    what = "no .safetensors file" if not found else f"{len(found)} .safetensors files ({', '.join(p.name for p in found)})"
    raise LoraError(f"LoRA folder {path} holds {what}: name the LoRA file itself, or a folder with "
                    "adapter_model.safetensors (what PEFT and SimpleTuner save).")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        source = TensorSource.from_files([path], str(path))
    except CheckpointError:
        raise LoraError(f"LoRA {path} is not a readable safetensors file: it is damaged, incomplete or another "
                        "kind of file renamed. Download it again, or convert it to safetensors.") from None
    return {key: source.load(key) for key in source.keys()}


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    """A torch file, through the weights-only loader only (it refuses pickles that would run code)."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols above the error it raises
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for other files
        raise LoraError(f"LoRA {path} is not a torch weights file that loads safely ({type(exc).__name__}); files "
                        "that need an unsafe pickle are never loaded. Use the LoRA's .safetensors file.") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in loaded.items()):
        raise LoraError(f"LoRA {path} holds no plain name -> tensor dictionary, so it is not a LoRA file. "
                        "Use the LoRA's .safetensors file.")
    return dict(loaded)


def _check_values(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Floating-point tensors of finite values only: NaN weights would quietly make silent songs."""
    bad = [k for k, t in tensors.items() if not t.is_floating_point() or t.is_complex()]
    if bad:
        raise LoraError(f"LoRA {path}: {len(bad)} tensor(s) are not floating-point numbers ({', '.join(bad[:3])}), "
                        "so this is not a LoRA file.")
    bad = [k for k, t in tensors.items() if t.numel() and not bool(torch.isfinite(t).all())]
    if bad:
        raise LoraError(f"LoRA {path}: {len(bad)} tensor(s) hold NaN or infinite values ({', '.join(bad[:3])}); "
                        "the file is damaged or the training diverged. Use another checkpoint of the LoRA.")


def read_lora(path: str | Path) -> LoraFile:
    """The LoRA at ``path`` (a file or a folder) with its adapter_config.json, read and vetted:
    readable, at most MAX_LORA_BYTES, tensors of finite floating-point numbers, at least one."""
    file = find_file(path)
    if not file.is_file():
        raise LoraError(f"LoRA {file} is not a regular file (a pipe, device or folder is never read as weights).")
    size = file.stat().st_size
    if size > MAX_LORA_BYTES:
        raise LoraError(f"LoRA {file} is {size / 1e9:.1f} GB, larger than any LoRA of HeartMuLa ({MAX_LORA_BYTES >> 30} "
                        "GB at most): it is a whole model, not a LoRA.")
    tensors = _read_safetensors(file) if file.suffix in SAFETENSORS else _read_torch(file)
    if not tensors:
        raise LoraError(f"LoRA {file} holds no tensors. Download it again.")
    _check_values(file, tensors)
    return LoraFile(file, tensors, read_adapter_config(file.parent / "adapter_config.json"))

