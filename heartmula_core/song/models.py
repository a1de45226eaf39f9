"""The models a song is made with, as the song path sees them: what can be read before the weights
(config, tokenizer), a memory check before they load, and ``ready(needed)``, which returns the model
and the device to run on once ``needed`` bytes beyond the weights are available.

``LMFolder`` / ``CodecFolder`` are the command line's and the batch runner's: the folder is read at
once, the weights load on the first ``ready`` (after ``check_memory`` said they fit in RAM or
VRAM) and stay loaded for the next song. Inside ComfyUI the nodes hand the song path their own
models with the same three members (nodes/types.py), whose ``ready`` asks ComfyUI's model
management to load the model (``load_models_gpu``), evicting whatever does not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from ..checkpoints.folders import resolve_folder
from ..codec.config import CodecConfig
from ..codec.load import dtype_for as codec_dtype_for
from ..codec.load import load_codec
from ..codec.load import weight_plan as codec_weight_plan
from ..lm.config import GenConfig, HeartMuLaConfig
from ..lm.load import load_lm, load_tokenizer, resolve_lm_folder
from ..lm.load import weight_plan as lm_weight_plan
from ..lora import Updates, load_adapter, merge_bytes
from ..quant.storage import WeightStorage, held_bytes
from ..runtime import check_memory


class LMModel(Protocol):
    """What the song path needs of an LM."""

    name: str
    config: HeartMuLaConfig
    gen_config: GenConfig
    tokenizer: object
    dtype: torch.dtype  # the compute dtype

    def check_memory(self, needed: int, what: str, fix: str) -> None: ...

    def ready(self, needed: int) -> tuple[torch.nn.Module, torch.device]: ...


class CodecModel(Protocol):
    """What the song path needs of a codec."""

    name: str
    config: CodecConfig
    dtype: torch.dtype  # the transformer's

    def check_memory(self, needed: int, what: str, fix: str) -> None: ...

    def ready(self, needed: int) -> tuple[torch.nn.Module, torch.device]: ...


class _Folder:
    """A model folder whose weights load on the first ``ready``, after ``check_memory`` said they fit."""

    device: torch.device
    model = None

    def weight_bytes(self) -> int:
        raise NotImplementedError

    def _load(self) -> torch.nn.Module:
        raise NotImplementedError

    def check_memory(self, needed: int, what: str, fix: str) -> None:
        """``needed`` bytes (plus the weights, before they load) fit in free RAM / VRAM."""
        check_memory(needed + (0 if self.model is not None else self.weight_bytes()), self.device, what, fix)

    def load(self) -> torch.nn.Module:
        if self.model is None:
            self.model = self._load()
        return self.model

    def ready(self, needed: int) -> tuple[torch.nn.Module, torch.device]:
        return self.load(), self.device


class LMFolder(_Folder):
    """An LM folder (or a root holding one) on ``device``: config.json, gen_config.json and
    tokenizer.json read and checked now, and so are the ``loras`` ((file or folder, strength), ...),
    against the LM's architecture; the weights, held as ``storage`` says, on the first ``ready``,
    with the LoRAs added to each weight as it loads (rounded to its dtype once, after the sum)."""

    def __init__(self, path: str | Path, device: torch.device, dtype: torch.dtype,
                 storage: WeightStorage = WeightStorage(), loras: tuple = ()):
        self.files = resolve_lm_folder(path)
        self.name = self.files.folder.name
        self.config = HeartMuLaConfig.from_file(self.files.config)
        self.gen_config = GenConfig.from_file(self.files.gen_config, self.config)
        self.tokenizer = load_tokenizer(self.files.tokenizer)
        self.device, self.dtype, self.storage = device, dtype, storage
        self.adapters = [(load_adapter(p, self.config, self.files.weights), s) for p, s in loras]

    def weight_bytes(self) -> int:
        """The weights as they will be held (fp8 ones at a byte each), plus what merging LoRAs needs."""
        shapes, plan = lm_weight_plan(self.config, self.storage.fp8)
        return held_bytes(shapes, plan, lambda _name: self.dtype) + merge_bytes(self.adapters, shapes)

    def _load(self) -> torch.nn.Module:
        model = load_lm(self.files.folder, device=self.device, dtype=self.dtype, storage=self.storage,
                        updates=Updates(self.adapters)).model
        self.adapters = []  # added: their tensors are not needed any more
        return model


class LMForChecks(LMFolder):
    """An LM folder read only to check song plans before any weights load anywhere (the batch driver,
    for every pending job): its config, tokenizer and LoRAs, and no memory check, which belongs to
    whoever loads the weights on its own device (a batch worker)."""

    def check_memory(self, needed: int, what: str, fix: str) -> None:
        pass


class CodecFolder(_Folder):
    """A HeartCodec folder (or a root holding one) on ``device``: config.json read now, the weights
    (the transformer in ``dtype``, held as ``storage`` says) on the first ``ready``."""

    def __init__(self, path: str | Path, device: torch.device, dtype: torch.dtype,
                 storage: WeightStorage = WeightStorage()):
        self.folder = resolve_folder(path, "codec")
        self.name = self.folder.name
        self.config = CodecConfig.from_folder(self.folder)
        self.device, self.dtype, self.storage = device, dtype, storage

    def weight_bytes(self) -> int:
        shapes, plan = codec_weight_plan(self.config, self.storage.fp8)
        return held_bytes(shapes, plan, lambda name: codec_dtype_for(name, self.dtype))

    def _load(self) -> torch.nn.Module:
        return load_codec(self.folder, device=self.device, dtype=self.dtype, storage=self.storage)
