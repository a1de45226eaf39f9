"""Load an LM folder: config.json, gen_config.json and tokenizer.json checked and read, the model
built on the meta device (no weight initialisation) and filled tensor by tensor from disk, so
loading a float32 checkpoint as bf16 peaks near the bf16 size.

    <root>/HeartMuLa-oss-3B/{config.json, model.safetensors | model.safetensors.index.json + shards}
    <root>/tokenizer.json, <root>/gen_config.json   (or inside the LM folder)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints.folders import find_shared, resolve_folder, weight_files
from ..errors import CheckpointError
from ..quant.storage import CORE, HostLayout, WeightPlan, WeightStorage, lm_candidates, plan_for
from ..quant.source import WeightUpdates, prepare
from ..weights import TensorSource, load_into, tensor_shapes
from .config import GenConfig, HeartMuLaConfig
from .model import HeartMuLa


@dataclass
class LMFiles:
    folder: Path
    config: Path
    weights: list[Path]
    tokenizer: Path
    gen_config: Path


def resolve_lm_folder(path: str | Path) -> LMFiles:
    """The LM folder itself, or a root holding exactly one, and the files it loads from."""
    folder = resolve_folder(path, "lm")
    return LMFiles(folder, folder / "config.json", weight_files(folder, "lm"),
                   find_shared(folder, "tokenizer.json"), find_shared(folder, "gen_config.json"))


@dataclass
class LoadedLM:
    model: HeartMuLa
    tokenizer: object  # tokenizers.Tokenizer
    gen_config: GenConfig
    config: HeartMuLaConfig
    files: LMFiles


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception on bad files
        raise CheckpointError(f"{path} is not a valid tokenizer.json ({exc}). Re-download it.") from None


def build_lm(config: HeartMuLaConfig, operations=None, device="meta") -> HeartMuLa:
    """The LM with ``operations``' layers (torch.nn by default), its tensors on ``device``."""
    with torch.device(device):
        return HeartMuLa(config, operations)


def weight_plan(config: HeartMuLaConfig, fp8: torch.dtype | None,
                layout: HostLayout = CORE) -> tuple[dict, WeightPlan]:
    """The architecture's tensors (name -> shape, from a torch.nn build: a host's layers may be
    built weightless) and which of them are held in ``fp8`` (an fp8 dtype; None: none)."""
    reference = build_lm(config)
    return tensor_shapes(reference), plan_for(lm_candidates(reference), fp8, layout)


def load_lm(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32,
            storage: WeightStorage = WeightStorage(), updates: WeightUpdates | None = None) -> LoadedLM:
    """Load an LM folder onto ``device`` with floating weights in ``dtype``.

    ``storage`` says how the weights are held: with ``storage.fp8`` the Linear and Embedding
    weights are held in fp8 and cast to ``dtype`` per call, converted tensor by tensor while
    loading, in the layers ``storage`` names (the core's fp8 layers unless a host passes its own).
    An fp8 checkpoint loads either way (dequantized to ``dtype`` without ``storage.fp8``).
    ``updates`` (LoRAs: ``lora.Updates``) are added to their weights in float32 as they load, before
    those are rounded to ``dtype`` or fp8.
    """
    files = resolve_lm_folder(path)
    config = HeartMuLaConfig.from_file(files.config)
    gen_config = GenConfig.from_file(files.gen_config, config)
    tokenizer = load_tokenizer(files.tokenizer)
    model = build_lm(config, storage.layers(dtype))
    shapes, plan = weight_plan(config, storage.fp8, storage.layout)
    source = TensorSource.from_files(files.weights, ", ".join(str(f) for f in files.weights))
    load_into(model, **prepare(source, lambda _key: dtype, shapes, plan, updates), device=device)
    return LoadedLM(model, tokenizer, gen_config, config, files)
