"""HeartCodec checkpoint loading: key layout vs the released manifest, both weight-norm namings,
config defaults, dtype rules, and the errors users see for bad checkpoints and bad codes."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartmula_core.codec import CodecConfig, checkpoint_layout, decode, estimate_decode_bytes, load_codec
from heartmula_core.errors import CheckpointError, CodesError
from heartmula_core.quant.storage import WeightStorage

DATA = Path(__file__).parent / "data"
CODEC_DIR = DATA / "tiny" / "ckpt" / "HeartCodec-oss"
MANIFEST = DATA / "manifests" / "heartcodec.json"


def _manifest(naming: str) -> dict:
    keys = json.loads(MANIFEST.read_text())["keys"]
    out = {}
    for key, info in keys.items():
        if naming == "weight_g":
            key = key.replace(".parametrizations.weight.original0", ".weight_g")
            key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = tuple(info["shape"])
    return out


@pytest.mark.parametrize("naming", ["parametrizations", "weight_g"])
def test_default_config_layout_matches_released_manifest(naming):
    layout = checkpoint_layout(CodecConfig(), naming)
    manifest = _manifest(naming)
    assert sorted(set(layout) ^ set(manifest)) == []
    assert {k: v for k, v in layout.items() if manifest[k] != v} == {}
    assert len(layout) == 818


def test_tiny_checkpoint_matches_its_layout():
    layout = checkpoint_layout(CodecConfig.from_folder(CODEC_DIR))
    stored = {k: tuple(v.shape) for k, v in load_file(CODEC_DIR / "model.safetensors").items()}
    assert stored == layout


def _copy_codec(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "HeartCodec-oss"
    folder.mkdir()
    shutil.copy(CODEC_DIR / "config.json", folder / "config.json")
    tensors = load_file(CODEC_DIR / "model.safetensors")
    save_file(edit(dict(tensors)), folder / "model.safetensors")
    return folder


def test_weight_g_checkpoint_loads_and_decodes_identically(tmp_path):
    def rename(tensors):
        return {
            k.replace(".parametrizations.weight.original0", ".weight_g").replace(".parametrizations.weight.original1", ".weight_v"): v
            for k, v in tensors.items()
        }

    folder = _copy_codec(tmp_path, rename)
    assert any(k.endswith(".weight_g") for k in load_file(folder / "model.safetensors"))
    old, new = load_codec(folder), load_codec(CODEC_DIR)
    for (name, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items()):
        assert torch.equal(a, b), name
    latent = torch.randn(2, 128, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(old.scalar_model(latent), new.scalar_model(latent))


def test_ema_state_and_encoder_are_optional(tmp_path):
    folder = _copy_codec(tmp_path, lambda t: {k: v for k, v in t.items()
                                              if "embed_avg" not in k and "encoder" not in k and "project_in" not in k})
    codec = load_codec(folder)
    assert "flow_matching.vq_embed.project_in.weight" not in codec.state_dict()


def test_missing_extra_and_misshaped_keys_in_one_error(tmp_path):
    def damage(t):
        del t["flow_matching.cond_feature_emb.bias"]
        t["flow_matching.surprise"] = torch.zeros(3)
        t["flow_matching.zero_cond_embedding1"] = torch.zeros(7)
        return t

    folder = _copy_codec(tmp_path, damage)
    with pytest.raises(CheckpointError) as err:
        load_codec(folder)
    msg = str(err.value)
    assert "model.safetensors" in msg
    assert "1 missing: flow_matching.cond_feature_emb.bias" in msg
    assert "1 unexpected: flow_matching.surprise" in msg
    assert "flow_matching.zero_cond_embedding1 (file [7], model [32])" in msg


def test_half_of_a_weight_norm_pair_is_reported(tmp_path):
    folder = _copy_codec(tmp_path, lambda t: {k: v for k, v in t.items()
                                              if k != "scalar_model.decoder.0.parametrizations.weight.original1"})
    with pytest.raises(CheckpointError, match=r"decoder\.0\.parametrizations\.weight\.original0 has no partner"):
        load_codec(folder)


def test_missing_folder_config_and_weights(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_codec(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="has no config.json; point to a HeartCodec folder"):
        load_codec(tmp_path)
    shutil.copy(CODEC_DIR / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="No weights in .*expected model.safetensors"):
        load_codec(tmp_path)


def test_root_folder_with_one_codec_is_accepted():
    codec = load_codec(CODEC_DIR.parent)
    assert codec.folder == CODEC_DIR


def test_config_defaults_and_bad_fields(tmp_path):
    cfg = CodecConfig.from_dict({"num_layers": 2, "extra_field": 1})
    assert cfg.num_layers == 2 and cfg.num_layers_2 == 6 and cfg.codebook_size == 8192
    assert cfg.upsample_factors == (5, 4, 4, 4, 3) and cfg.samples_per_latent_frame == 1920
    (tmp_path / "config.json").write_text(json.dumps({"in_channels": 100}))
    with pytest.raises(CheckpointError, match=r"config.json: field 'in_channels' \(100\) must equal"):
        CodecConfig.from_folder(tmp_path)


def test_reduced_dtype_applies_to_transformer_only():
    codec = load_codec(CODEC_DIR, dtype=torch.bfloat16)
    assert codec.transformer_dtype == torch.bfloat16
    for name, tensor in codec.state_dict().items():
        expected = torch.bfloat16 if name.startswith("flow_matching.estimator.") else torch.float32
        assert tensor.dtype == expected, name


@pytest.fixture(scope="module")
def codec():
    return load_codec(CODEC_DIR)


@pytest.mark.parametrize("codes, lengths, message", [
    (torch.zeros(1, 7, 5, dtype=torch.long), None, r"shape \[batch, 8, frames\].*got \[1, 7, 5\]"),
    (torch.zeros(1, 8, 5), None, "must hold integers"),
    (torch.full((1, 8, 5), 64), None, r"codes\[0, 0, 0\] = 64 is outside the codebook \(0..63\)"),
    (torch.full((1, 8, 5), -1), None, "outside the codebook"),
    (torch.zeros(2, 8, 5, dtype=torch.long), [5], "lengths has 1 entries for a batch of 2"),
    (torch.zeros(1, 8, 5, dtype=torch.long), [6], r"lengths\[0\] = 6 is outside 1..5"),
    ([[1, 2]], None, "must be a torch.Tensor"),
])
def test_bad_codes_are_rejected(codec, codes, lengths, message):
    with pytest.raises(CodesError, match=message):
        decode(codec, codes, lengths)


def test_decode_memory_estimate_grows_with_batch_and_size():
    tiny = CodecConfig.from_folder(CODEC_DIR)
    real = CodecConfig()
    one, four = (estimate_decode_bytes(real, b) for b in (1, 4))
    assert 1e9 < one < four < 20e9  # a few GB for one real-size song, as float32
    assert estimate_decode_bytes(tiny, 1) < one
    assert estimate_decode_bytes(real, 16, torch.bfloat16) < estimate_decode_bytes(real, 16)


def test_operations_namespace_builds_every_linear_and_conv():
    from types import SimpleNamespace

    class Linear(torch.nn.Linear):
        pass

    class Conv1d(torch.nn.Conv1d):
        pass

    class ConvTranspose1d(torch.nn.ConvTranspose1d):
        pass

    ops = SimpleNamespace(Linear=Linear, Conv1d=Conv1d, ConvTranspose1d=ConvTranspose1d)
    codec = load_codec(CODEC_DIR, storage=WeightStorage(operations=ops))
    layers = [m for m in codec.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.ConvTranspose1d))]
    assert layers and all(type(m) in (Linear, Conv1d, ConvTranspose1d) for m in layers)
    assert any(type(m) is ConvTranspose1d for m in layers)


def test_decode_works_when_a_partial_load_leaves_the_small_weights_elsewhere():
    """ComfyUI's partial load cannot move parameters held by modules with children or by plain layers;
    those modules (casts_own_weights) move them per call. A different dtype stands in for a device."""
    codec = load_codec(CODEC_DIR)
    codes = torch.randint(0, codec.config.codebook_size, (1, 8, 30), generator=torch.Generator().manual_seed(0))
    reference = decode(codec, codes, steps=2, generator=torch.Generator().manual_seed(0))
    for module in codec.modules():
        if getattr(module, "casts_own_weights", False):
            for name, param in module.named_parameters(recurse=False):
                setattr(module, name, torch.nn.Parameter(param.detach().double(), requires_grad=False))
    moved = decode(codec, codes, steps=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(moved, reference, rtol=1e-4, atol=1e-4 * reference.abs().max().item())
