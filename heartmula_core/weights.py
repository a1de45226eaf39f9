"""Read safetensors weights straight into modules built on the meta device.

Why not ``safetensors.torch.load_file`` + ``load_state_dict``: that holds the whole file in memory
and then copies it into already-initialised parameters (two or three copies of a 16 GB checkpoint).
Here each tensor is read from disk with ``readinto`` into its final dtype one at a time, so peak
memory is the size of the loaded model plus the largest single tensor, and no page of the file
stays mapped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from .errors import CheckpointError
from .safetensors_header import TensorEntry, read_entries

READ_SLAB_BYTES = 4 << 20  # what TensorSource.load hands its ``inspect`` at a time: stays in the CPU cache


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
            for name, entry in read_entries(f).items():
                if name in entries:
                    raise CheckpointError(f"Tensor {name} is in both {entries[name].file} and {f}: shards must not "
                                          "overlap. Re-download the checkpoint folder.")
                entries[name] = entry
        return cls(entries, description or ", ".join(str(f) for f in files))

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return self.entries[key].shape

    def dtype(self, key: str) -> torch.dtype:
        """The dtype the file stores ``key`` in."""
        return self.entries[key].dtype

    def load(self, key: str, dtype: torch.dtype | None = None,
             inspect: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        """Read one tensor from disk into CPU memory, converted to ``dtype`` if given.

        ``inspect`` sees the tensor as the file stores it, a slab (``READ_SLAB_BYTES``) at a time as
        each slab is read: a check made there finds the values in the CPU cache, while one made on
        a tensor larger than the cache afterwards takes a second trip through memory (for 25 MB
        tensors that doubled the check's cost: as long as the read itself).
        """
        e = self.entries[key]
        out = torch.empty(e.shape, dtype=e.dtype)
        nbytes = e.end - e.start
        if nbytes != out.numel() * out.element_size():
            raise CheckpointError(f"{e.file}: tensor {key} has {nbytes} bytes for shape {list(e.shape)}; the file is corrupt.")
        if nbytes:
            flat = out.view(-1).view(torch.uint8)
            step = nbytes if inspect is None else READ_SLAB_BYTES  # a multiple of every element size
            with open(e.file, "rb") as f:
                f.seek(e.start)
                for start in range(0, nbytes, step):
                    slab = flat[start:start + step]
                    if f.readinto(memoryview(slab.numpy())) != slab.numel():
                        raise CheckpointError(f"{e.file} ends early inside tensor {key}; the download is incomplete.")
                    if inspect is not None:
                        inspect(slab.view(e.dtype))
        if dtype is not None and dtype != out.dtype and out.is_floating_point():
            out = out.to(dtype)
        return out


def _first(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" (and {len(items) - n} more)" if len(items) > n else "")


def check_keys(expected: Mapping[str, tuple[int, ...]], source: TensorSource,
               ignore: Callable[[str], bool] = lambda k: False,
               dtype_for: Callable[[str], torch.dtype | None] = lambda k: None) -> None:
    """Raise one CheckpointError listing missing keys, unexpected keys, wrong shapes and integer data
    where the model wants floating-point weights (``dtype_for``), together."""
    present = {k for k in source.keys() if not ignore(k)}
    missing = sorted(set(expected) - present)
    unexpected = sorted(present - set(expected))
    misshaped = sorted(
        f"{k} (file {list(source.shape(k))}, model {list(expected[k])})"
        for k in set(expected) & present
        if tuple(source.shape(k)) != tuple(expected[k])
    )
    not_float = sorted(
        f"{k} ({str(source.dtype(k)).replace('torch.', '')})"
        for k in set(expected) & present
        if dtype_for(k) is not None and dtype_for(k).is_floating_point and not source.dtype(k).is_floating_point
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_first(unexpected)}")
    if misshaped:
        problems.append(f"{len(misshaped)} with the wrong shape: {_first(misshaped)}")
    if not_float:
        problems.append(f"{len(not_float)} stored as integers where the model needs floating-point weights: "
                        f"{_first(not_float)}")
    if problems:
        raise CheckpointError(
            f"Weights in {source.description} do not match the model built from its config.json: "
            + "; ".join(problems)
            + ". Check that config.json belongs to these weights, or re-download the checkpoint folder."
        )


def tensor_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter and persistent buffer ``module`` holds now.

    For the architecture's list, call it on the model built with plain torch.nn layers: a host's
    layers may hold no tensor until they are loaded (ComfyUI's DynamicVRAM ops build Linear with
    ``weight = None``), so their state_dict is no guide to what the checkpoint must contain.
    """
    return {k: tuple(v.shape) for k, v in module.state_dict(keep_vars=True).items()}


def _by_owner(keys: Iterable[str]) -> dict[str, list[str]]:
    """Keys grouped by the module that owns them ('' = the root), in first-seen order."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.rpartition(".")[0], []).append(key)
    return groups


def assign_to_module(owner: nn.Module, prefix: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Give ``owner`` its own tensors (full names, e.g. ``prefix + "weight"``) as
    ``load_state_dict(..., assign=True)`` does for one module: through the module's own
    ``_load_from_state_dict``, which a host's layers override to create weights they were built
    without. Only this module is visited, never its children (a lazily built child layer that saw
    no weight key would allocate a placeholder)."""
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []
    owner._load_from_state_dict(dict(tensors), prefix, {"assign_to_params_buffers": True}, True,
                                missing, unexpected, errors)
    if missing or unexpected or errors:
        raise CheckpointError(
            f"The {type(owner).__name__} layer {prefix[:-1] or '(root)'} refused its weights "
            f"(missing {missing}, unexpected {unexpected}{'; ' + '; '.join(errors) if errors else ''}). "
            "This layer type is not one the pack knows how to load."
        )


def _check_loaded(module: nn.Module, expected: Mapping[str, tuple[int, ...]]) -> None:
    """After loading, the module must hold exactly the architecture's tensors, none left on meta."""
    held = {k: v for k, v in module.state_dict(keep_vars=True).items()}
    wrong = sorted(k for k in set(held) ^ set(expected))
    wrong += sorted(k for k in set(held) & set(expected)
                    if held[k].is_meta or tuple(held[k].shape) != tuple(expected[k]))
    if wrong:
        raise CheckpointError(
            f"After loading, {_first(wrong)} {'is' if len(wrong) == 1 else 'are'} not the architecture's "
            "tensors: a layer type built by the host did not take its weights as expected."
        )


def load_into(
    module: nn.Module,
    source: TensorSource,
    dtype_for: Callable[[str], torch.dtype | None],
    ignore: Callable[[str], bool] = lambda k: False,
    device: torch.device | str = "cpu",
    expected: Mapping[str, tuple[int, ...]] | None = None,
) -> nn.Module:
    """Fill a module built on the meta device (with any layer ``operations``) from ``source``, one
    module's tensors at a time, each staged through CPU memory and then placed on ``device``.

    ``expected`` (name -> shape) is the architecture's list of tensors, checked against the file
    before anything is read; by default the module's own, which is right for torch.nn layers only
    (see ``tensor_shapes``). ``ignore`` drops checkpoint keys that inference does not need;
    ``dtype_for(key)`` picks each tensor's dtype (None keeps the file's). A source whose names differ
    from the module's (weight-norm folding, say) is a TensorSource subclass overriding keys/shape/load.
    """
    expected = dict(expected) if expected is not None else tensor_shapes(module)
    check_keys(expected, source, ignore, dtype_for)  # from here on the file holds exactly the expected keys
    for owner_name, keys in _by_owner(expected).items():  # the architecture's order, as torch.nn registers
        owner = module.get_submodule(owner_name) if owner_name else module
        tensors = {k: source.load(k, dtype_for(k)).to(device) for k in keys}
        assign_to_module(owner, owner_name + "." if owner_name else "", tensors)
        del tensors
    _check_loaded(module, expected)
    return module.eval().requires_grad_(False)


def module_bytes(module: nn.Module, dtype_for: Callable[[str], torch.dtype] | None = None) -> int:
    """Bytes of the module's tensors; with ``dtype_for(name)``, what they will take once loaded in
    those dtypes (for a model built on the meta device)."""
    def size(name: str, tensor: torch.Tensor) -> int:
        return tensor.element_size() if dtype_for is None else torch.empty((), dtype=dtype_for(name)).element_size()

    return sum(t.numel() * size(name, t) for name, t in module.state_dict().items())
