"""Read safetensors weights straight into modules built on the meta device.

Why not ``safetensors.torch.load_file`` + ``load_state_dict``: that holds the whole file in memory
and then copies it into already-initialised parameters (two or three copies of a 16 GB checkpoint).
Here each tensor is read from disk with ``readinto`` into its final dtype one at a time, so peak
memory is the size of the loaded model plus the largest single tensor, and no page of the file
stays mapped.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from .errors import CheckpointError

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class TensorEntry:
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int


def _read_header(path: Path) -> dict[str, TensorEntry]:
    try:
        with open(path, "rb") as f:
            raw_len = f.read(8)
            if len(raw_len) != 8:
                raise ValueError("file shorter than the 8-byte header length")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > 100_000_000:
                raise ValueError(f"implausible header length {header_len}")
            header = json.loads(f.read(header_len))
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}). Re-download it."
        ) from None
    base = 8 + header_len
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}.")
        begin, end = info["data_offsets"]
        entries[name] = TensorEntry(path, _DTYPES[info["dtype"]], tuple(info["shape"]), base + begin, base + end)
    return entries


class TensorSource:
    """The tensors of one checkpoint (a single file or the shards of an index), read lazily."""

    def __init__(self, entries: Mapping[str, TensorEntry], description: str):
        self.entries = dict(entries)
        self.description = description

    @classmethod
    def from_files(cls, files: Iterable[Path], description: str | None = None) -> "TensorSource":
        files = [Path(f) for f in files]
        entries: dict[str, TensorEntry] = {}
        for f in files:
            entries.update(_read_header(f))
        return cls(entries, description or ", ".join(str(f) for f in files))

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return self.entries[key].shape

    def load(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Read one tensor from disk into CPU memory, converted to ``dtype`` if given."""
        e = self.entries[key]
        out = torch.empty(e.shape, dtype=e.dtype)
        nbytes = e.end - e.start
        if nbytes != out.numel() * out.element_size():
            raise CheckpointError(f"{e.file}: tensor {key} has {nbytes} bytes for shape {list(e.shape)}; the file is corrupt.")
        if nbytes:
            with open(e.file, "rb") as f:
                f.seek(e.start)
                view = memoryview(out.view(-1).view(torch.uint8).numpy())
                if f.readinto(view) != nbytes:
                    raise CheckpointError(f"{e.file} ends early inside tensor {key}; the download is incomplete.")
        if dtype is not None and dtype != out.dtype and out.is_floating_point():
            out = out.to(dtype)
        return out


def _first(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" (and {len(items) - n} more)" if len(items) > n else "")


def check_keys(expected: Mapping[str, tuple[int, ...]], source: TensorSource, ignore: Callable[[str], bool] = lambda k: False) -> None:
    """Raise one CheckpointError listing missing keys, unexpected keys and wrong shapes together."""
    present = {k for k in source.keys() if not ignore(k)}
    missing = sorted(set(expected) - present)
    unexpected = sorted(present - set(expected))
    misshaped = sorted(
        f"{k} (file {list(source.shape(k))}, model {list(expected[k])})"
        for k in set(expected) & present
        if tuple(source.shape(k)) != tuple(expected[k])
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_first(unexpected)}")
    if misshaped:
        problems.append(f"{len(misshaped)} with the wrong shape: {_first(misshaped)}")
    if problems:
        raise CheckpointError(
            f"Weights in {source.description} do not match the model built from its config.json: "
            + "; ".join(problems)
            + ". Check that config.json belongs to these weights, or re-download the checkpoint folder."
        )


def set_tensor(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Replace a (meta) parameter or buffer by ``value`` without copying it."""
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if leaf in owner._parameters:
        owner._parameters[leaf] = nn.Parameter(value, requires_grad=False)
    elif leaf in owner._buffers:
        owner._buffers[leaf] = value
    else:
        raise KeyError(name)


def load_into(
    module: nn.Module,
    source: TensorSource,
    dtype_for: Callable[[str], torch.dtype | None],
    ignore: Callable[[str], bool] = lambda k: False,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Fill a module built on the meta device from ``source``, one tensor at a time, each staged
    through CPU memory and then placed on ``device``.

    ``ignore`` drops checkpoint keys that inference does not need; ``dtype_for(key)`` picks each
    tensor's dtype (None keeps the file's). A source whose names differ from the module's (weight-norm
    folding, say) is a TensorSource subclass overriding keys/shape/load.
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict(keep_vars=True).items()}
    check_keys(expected, source, ignore)
    for key in source.keys():
        if not ignore(key):
            set_tensor(module, key, source.load(key, dtype_for(key)).to(device))
    return module.eval().requires_grad_(False)


def module_param_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())
