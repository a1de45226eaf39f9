"""The core's fp8 layers and loading the tiny LM / codec with fp8 weights (from float32 files)."""

import pytest
import torch
import torch.nn.functional as F

from fp8_fixtures import greedy, relative
from heartmula_core.lm.load import load_lm
from heartmula_core.codec import decode, load_codec
from heartmula_core.errors import CheckpointError
from heartmula_core.quant import formats
from heartmula_core.quant import ops as layers
from heartmula_core.quant import storage as store
from heartmula_core.quant.storage import WeightStorage
from lm_fixtures import TINY_CKPT, TINY_LM

TINY_CODEC = TINY_CKPT / "HeartCodec-oss"


def loaded_linear(weight, scale=None, bias=None):
    with torch.device("meta"):
        layer = layers.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    tensors = {"l.weight": weight, **({"l.bias": bias} if bias is not None else {})}
    if scale is not None:
        tensors["l.weight_scale"] = scale
    missing, unexpected, errors = [], [], []
    layer._load_from_state_dict(tensors, "l.", {"assign_to_params_buffers": True}, True, missing, unexpected, errors)
    assert not (missing or unexpected or errors)
    return layer.requires_grad_(False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fp8", [formats.E4M3, formats.E5M2])
def test_fp8_linear_is_the_dequantized_linear(dtype, fp8):
    w, b = torch.randn(24, 40) * 0.05, torch.randn(24)
    q, scale = formats.quantize(w, fp8)
    layer = loaded_linear(q, scale, b)
    assert layer.weight.dtype == fp8 and set(layer.state_dict()) == {"weight", "bias", "weight_scale"}
    x = torch.randn(3, 5, 40).to(dtype)
    out = layer(x)
    assert out.dtype == dtype and out.shape == (3, 5, 24)
    reference = F.linear(x.float(), q.float() * scale, b)
    assert relative(out, reference) < {torch.float32: 1e-6, torch.bfloat16: 8e-3, torch.float16: 1e-3}[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_blocks_give_the_whole_matmul(monkeypatch, dtype):
    q, scale = formats.quantize(torch.randn(70, 16) * 0.05, formats.E4M3)
    layer = loaded_linear(q, scale, torch.randn(70))
    x = torch.randn(3, 16).to(dtype)
    whole = layer(x)
    monkeypatch.setattr(layers, "CPU_BLOCK_ELEMENTS", 16 * 8)  # 9 blocks of 8 rows (the last 6)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    assert torch.allclose(layer(x).float(), whole.float(), rtol=tolerance, atol=tolerance)
    assert torch.allclose(whole.float(), F.linear(x.float(), q.float() * scale, layer.bias), rtol=2e-2, atol=2e-2)


def test_fp8_linear_without_scale_and_float_linear():
    q = (torch.randn(6, 8) * 3).to(formats.E4M3)
    layer = loaded_linear(q)
    x = torch.randn(2, 8)
    assert not hasattr(layer, "weight_scale")
    assert torch.allclose(layer(x), x @ q.float().T, atol=1e-5)
    w = torch.randn(6, 8)
    plain = loaded_linear(w, bias=torch.ones(6))
    assert torch.equal(plain(x), F.linear(x, w, torch.ones(6)))


def test_fp8_embedding_gathers_rows_in_the_compute_dtype():
    table = torch.randn(50, 12) * 0.02
    q, scale = formats.quantize(table, formats.E4M3)
    ops = layers.operations(torch.bfloat16)
    with torch.device("meta"):
        emb = ops.Embedding(50, 12)
    emb._load_from_state_dict({"e.weight": q, "e.weight_scale": scale}, "e.", {"assign_to_params_buffers": True},
                              True, [], [], [])
    ids = torch.tensor([[3, 7, 49], [0, 0, 1]])
    out = emb(ids)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 3, 12)
    assert torch.equal(out, (q.float()[ids] * scale).to(torch.bfloat16))


@pytest.fixture(scope="module")
def fp32_lm():
    return load_lm(TINY_LM)


@pytest.mark.parametrize("fp8,logit_error", [(formats.E4M3, 0.05), (formats.E5M2, 0.1)])
def test_tiny_lm_loads_from_float32_with_fp8_linears_and_embeddings(fp32_lm, fp8, logit_error):
    lm = load_lm(TINY_LM, storage=WeightStorage(fp8))
    held = lm.model.state_dict()
    plan = store.plan_for(store.lm_candidates(fp32_lm.model), fp8)
    assert {k for k, v in held.items() if v.dtype == fp8} == set(plan.keys)
    assert "backbone.layers.0.attn.q_proj.weight" in plan.keys and "text_embeddings.weight" in plan.keys
    for kept in ("audio_head", "unconditional_text_embedding.weight", "backbone.norm.scale", "muq_linear.bias"):
        assert held[kept].dtype == torch.float32, kept
    q, scale = formats.quantize(fp32_lm.model.audio_head, fp8)  # held wide, but with the fp8 checkpoint's values
    assert torch.equal(held["audio_head"], q.float() * scale) and plan.rounded == {"audio_head"}
    assert torch.equal(held["unconditional_text_embedding.weight"], fp32_lm.model.unconditional_text_embedding.weight)
    from heartmula_core.weights import tensor_shapes

    held_bytes = sum(t.numel() * t.element_size() for t in held.values())
    assert held_bytes == store.held_bytes(tensor_shapes(fp32_lm.model), plan, lambda _k: torch.float32)
    for key in plan.keys:
        q, scale = formats.quantize(fp32_lm.model.state_dict()[key], fp8)
        assert torch.equal(held[key].view(torch.uint8), q.view(torch.uint8)) and torch.equal(held[store.scale_key(key)], scale)
    ids = torch.tensor([[5, 9, 2]])
    x = fp32_lm.model.text_embeddings(ids)
    assert relative(lm.model.codebook0_head(x), fp32_lm.model.codebook0_head(x)) < logit_error
    assert greedy(lm).shape == greedy(fp32_lm).shape


def test_fp8_lm_generates_in_bf16():
    lm = load_lm(TINY_LM, dtype=torch.bfloat16, storage=WeightStorage(formats.E4M3))
    assert lm.model.backbone.norm.scale.dtype == torch.bfloat16
    codes = greedy(lm, dtype=torch.bfloat16)
    assert codes.shape == (1, 8, 16) and (codes >= 0).all()


def test_tiny_codec_with_fp8_transformer():
    reference = load_codec(TINY_CODEC)
    codec = load_codec(TINY_CODEC, storage=WeightStorage(formats.E4M3))
    estimator = codec.flow_matching.estimator
    assert estimator.transformer_blocks[0].attn.q_proj.weight.dtype == formats.E4M3
    assert estimator.proj_in.ffn_1.weight.dtype == torch.float32  # convolutions stay
    assert codec.flow_matching.cond_feature_emb.weight.dtype == torch.float32  # outside the transformer
    assert estimator.dtype == torch.float32
    codes = torch.randint(0, reference.config.codebook_size, (1, 8, 40), generator=torch.Generator().manual_seed(0))
    wave = decode(codec, codes, generator=torch.Generator().manual_seed(1), steps=4)
    expected = decode(reference, codes, generator=torch.Generator().manual_seed(1), steps=4)
    assert 1e-4 < relative(wave, expected) < 0.1


def test_damaged_checkpoint_gets_the_usual_single_error(tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "HeartMuLa-oss-3B"
    shutil.copytree(TINY_LM, folder)
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(TINY_CKPT / name, tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors.pop("backbone.layers.0.attn.q_proj.weight")
    tensors["backbone.layers.0.mlp.w1.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError) as caught:
        load_lm(folder, storage=WeightStorage(formats.E4M3))
    message = str(caught.value)
    assert "missing: backbone.layers.0.attn.q_proj.weight" in message
    assert "backbone.layers.0.mlp.w1.weight (file [3, 3]" in message
