"""fp8 weights in the host's own layers (nodes/fp8_ops.py), in process.

On the stand-in (tests/host) the pack falls back to the core's layers; with COMFYUI_DIR set the
real ``comfy.ops`` are used: ``mixed_precision_ops`` (0.28+: fp8 Linear and Embedding with
``weight_scale`` + ``comfy_quant``) or ``scaled_fp8_ops`` (0.3.64: fp8 Linear with
``scale_weight``, embeddings held in the compute dtype but rounded through fp8). Every host must
give the same greedy codes and the same waveform as the core's layers, from float32 files and
from fp8 files with or without scales, also with DynamicVRAM's weightless layers.
"""

from __future__ import annotations

import importlib
import shutil
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import real_host
from fp8_fixtures import greedy
from lm_fixtures import TINY_CKPT, TINY_LM
from test_weightless_layers import switch_to_weightless

TINY_CODEC = TINY_CKPT / "HeartCodec-oss"
FP8 = [torch.float8_e4m3fn, torch.float8_e5m2]


@pytest.fixture
def host(pack):
    """(fp8_ops, the core's loaders, the core's fp8 plans) as the pack imported them."""
    core = f"{pack.__name__}.heartmula_core"
    loaders = SimpleNamespace(load_lm=importlib.import_module(f"{core}.lm.load").load_lm,
                              load_codec=importlib.import_module(f"{core}.codec.load").load_codec)
    return (importlib.import_module(f"{pack.__name__}.nodes.fp8_ops"), loaders,
            importlib.import_module(f"{core}.quant.storage"))


def expected_layout():
    if not real_host():
        return "core layers"
    import comfy.ops

    return "mixed_precision_ops" if hasattr(comfy.ops, "mixed_precision_ops") else "scaled_fp8_ops"


def host_fp8_keys(model, fp8) -> set[str]:
    return {k for k, v in model.state_dict().items() if v.dtype == fp8}


@pytest.mark.parametrize("fp8", FP8)
def test_lm_in_host_layers_samples_as_in_core_layers(pack, host, fp8):
    fp8_ops, core, store = host
    storage = fp8_ops.weight_storage(fp8, torch.float32)
    layout = storage.layout
    assert expected_layout() in layout.name
    in_host = core.load_lm(TINY_LM, storage=storage)
    in_core = core.load_lm(TINY_LM, storage=store.WeightStorage(fp8))
    held = host_fp8_keys(in_host.model, fp8)
    assert "backbone.layers.0.mlp.w1.weight" in held
    assert ("text_embeddings.weight" in held) == (layout is not fp8_ops.COMFY_SCALED_FP8)
    assert torch.equal(greedy(in_host, 20), greedy(in_core, 20))
    memory = importlib.import_module(f"{pack.__name__}.nodes.memory")
    assert memory.partial_load_safe(in_host.model) == real_host(), "host layers can be loaded partially"
    reference = importlib.import_module(f"{pack.__name__}.heartmula_core.lm.load").build_lm(in_host.config)
    shapes = importlib.import_module(f"{pack.__name__}.heartmula_core.weights").tensor_shapes(reference)
    plan = store.plan_for(store.lm_candidates(reference), fp8, layout)
    assert memory.module_bytes(in_host.model) == store.held_bytes(shapes, plan, lambda _k: torch.float32)


@pytest.mark.parametrize("fp8", FP8)
def test_codec_in_host_layers_decodes_as_in_core_layers(pack, host, fp8):
    fp8_ops, core, store = host
    codec = core.load_codec(TINY_CODEC, storage=fp8_ops.weight_storage(fp8, torch.float32))
    core = core.load_codec(TINY_CODEC, storage=store.WeightStorage(fp8))
    assert "flow_matching.estimator.transformer_blocks.0.mlp.up.weight" in host_fp8_keys(codec, fp8)
    assert codec.flow_matching.cond_feature_emb.weight.dtype == torch.float32
    decode = importlib.import_module(f"{pack.__name__}.heartmula_core.codec").decode
    codes = torch.randint(0, 64, (1, 8, 30), generator=torch.Generator().manual_seed(0))
    a = decode(codec, codes, generator=torch.Generator().manual_seed(3), steps=3)
    b = decode(core, codes, generator=torch.Generator().manual_seed(3), steps=3)
    assert float((a - b).norm() / b.norm()) < 1e-3


def test_weightless_host_layers_take_fp8_weights(pack, host, monkeypatch):
    if not real_host():
        pytest.skip("the stand-in builds the core's own fp8 layers, which DynamicVRAM does not touch")
    switch_to_weightless(monkeypatch)
    fp8_ops, core, store = host
    lm = core.load_lm(TINY_LM, storage=fp8_ops.weight_storage(torch.float8_e4m3fn, torch.float32))
    core = core.load_lm(TINY_LM, storage=store.WeightStorage(torch.float8_e4m3fn))
    assert torch.equal(greedy(lm), greedy(core))


@pytest.mark.parametrize("scales", [True, False])
def test_fp8_files_with_and_without_scales_in_host_layers(pack, host, tmp_path, scales):
    fp8_ops, core, store = host
    quantize = importlib.import_module(f"{pack.__name__}.heartmula_core.cli.quantize").quantize
    fp8 = torch.float8_e4m3fn
    quantize(TINY_LM, tmp_path / "lm", "fp8_e4m3fn")
    if not scales:  # plain fp8 weights, no scale, no marker (ComfyUI's unscaled fp8 files)
        f = tmp_path / "lm" / "model.safetensors"
        t = load_file(str(f))
        t = {k: (v.float() * t[store.scale_key(k)]).to(fp8) if v.dtype == fp8 else v for k, v in t.items()
             if not k.endswith(("weight_scale", "comfy_quant", "_scale"))}
        save_file(t, str(f))
    in_host = core.load_lm(tmp_path / "lm", storage=fp8_ops.weight_storage(torch.float8_e4m3fn, torch.float32))
    in_core = core.load_lm(tmp_path / "lm", storage=store.WeightStorage(fp8))
    assert torch.equal(greedy(in_host), greedy(in_core))
    shutil.rmtree(tmp_path / "lm")
