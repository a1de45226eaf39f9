"""Load an LM or codec folder with fp8 weights: the lines ``checkpoints.load_lm`` and
``codec.load_codec`` gain when they take ``weight_dtype`` (see docs/FP8_INTEGRATION.md). Until
then benchmarks, tests and the ComfyUI prototype load through here; afterwards this file goes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints import LoadedLM, build_lm, load_tokenizer, resolve_lm_folder, weight_files
from ..codec.config import CodecConfig
from ..codec.estimator import FlowEstimator
from ..codec.layout import is_ignored_key
from ..codec.model import SUPPORTED_DTYPES, build_codec, resolve_codec_folder
from ..codec.weight_norm import WeightNormFoldingSource
from ..lm.config import GenConfig, HeartMuLaConfig
from ..weights import TensorSource, load_into, tensor_shapes
from . import layers, store


def load_lm(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32, operations=None,
            weight_dtype: torch.dtype | None = None, layout: store.HostLayout = store.CORE) -> LoadedLM:
    """``checkpoints.load_lm`` plus ``weight_dtype``: Linear/Embedding weights in fp8 (None: as
    ``dtype``); ``operations`` default to the core's fp8-capable layers; ``layout`` says how they
    take scales."""
    files = resolve_lm_folder(path)
    config = HeartMuLaConfig.from_file(files.config)
    gen_config = GenConfig.from_file(files.gen_config, config)
    tokenizer = load_tokenizer(files.tokenizer)
    model = build_lm(config, operations or layers.operations(dtype))
    reference = build_lm(config)  # torch.nn layers: the architecture's tensors and the fp8 candidates
    plan = store.plan_for(store.lm_candidates(reference), weight_dtype, layout)
    source = TensorSource.from_files(files.weights, ", ".join(str(f) for f in files.weights))
    load_into(model, **store.prepare(source, lambda _key: dtype, tensor_shapes(reference), plan), device=device)
    return LoadedLM(model, tokenizer, gen_config, config, files)


def load_codec(folder: str | Path, device="cpu", dtype: torch.dtype = torch.float32, operations=None,
               weight_dtype: torch.dtype | None = None, layout: store.HostLayout = store.CORE):
    """``codec.load_codec`` plus ``weight_dtype`` for the flow-matching transformer's Linear weights."""
    folder = resolve_codec_folder(folder)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, got {dtype}")
    config = CodecConfig.from_folder(folder)
    model = build_codec(config, operations or layers.operations(torch.float32))
    reference = build_codec(config)
    plan = store.plan_for(store.codec_candidates(reference), weight_dtype, layout)
    source = WeightNormFoldingSource(TensorSource.from_files(weight_files(folder, "codec")))

    def dtype_for(key: str) -> torch.dtype:
        return dtype if key.startswith("flow_matching.estimator.") else torch.float32

    load_into(model, **store.prepare(source, dtype_for, tensor_shapes(reference), plan), ignore=is_ignored_key,
              device=device)
    model.folder = folder
    model.flow_matching.estimator.__class__ = _ComputeDtypeEstimator
    return model


class _ComputeDtypeEstimator(FlowEstimator):
    """Stand-in for the one-line integration fix: ``FlowEstimator.dtype`` reads a Linear weight's
    dtype, which is fp8 (core layers) or the host's compute dtype (ComfyUI's quantized weights)
    once the Linears are quantized; the modulation table keeps the transformer's dtype."""

    @property
    def dtype(self) -> torch.dtype:
        return self.scale_shift_table.dtype
