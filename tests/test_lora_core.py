"""heartmula_core/lora on its own: names, adapter_config.json, reading files, the check against the
LM's architecture, and the merge (float and fp8; into a loaded model, or while loading, rounding
each weight once) with the memory it needs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartmula_core.errors import LoraError, SettingsError
from heartmula_core.lm.load import load_lm
from heartmula_core.lora import Updates, load_adapter, merge_adapters, merge_bytes
from heartmula_core.lora.files import read_lora
from heartmula_core.lora.names import hf_name, split_key
from heartmula_core.quant import formats
from heartmula_core.quant.storage import WeightStorage
from heartmula_core.settings import SongSettings
from lm_fixtures import TINY_LM
from lora_fixtures import checkpoint_state, hand_lora

Q = "backbone.layers.0.attn.q_proj.weight"


@pytest.fixture(scope="module")
def config():
    return load_lm(TINY_LM).config


def test_checkpoint_names_and_their_hugging_face_twins():
    assert hf_name("backbone.layers.3.attn.output_proj") == "backbone.layers.3.self_attn.o_proj"
    assert hf_name("decoder.layers.0.mlp.w1") == "decoder.layers.0.mlp.gate_proj"
    assert hf_name("decoder.layers.0.mlp.w2") == "decoder.layers.0.mlp.down_proj"
    assert hf_name("backbone.layers.0.mlp.w3") == "backbone.layers.0.mlp.up_proj"
    assert hf_name("codebook0_head") == "codebook0_head"
    assert split_key("base_model.model.x.lora_A.default.weight") == ("base_model.model.x", "down", "lora_A.default.weight")
    assert split_key("lora_unet_x_y.lora_up.weight")[:2] == ("lora_unet_x_y", "up")
    assert split_key("x.alpha")[1] == "alpha" and split_key("x.weight")[1] == "whole"
    assert split_key("weight") is None and split_key("x.something") is None


def save(path: Path, tensors: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("config_text,expect", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"peft_type": "LOHA"}', "peft_type is 'LOHA'; only LoRA"),
    ('{"fan_in_fan_out": true}', "fan_in_fan_out is set"),
    ('{"lora_alpha": "eight"}', "lora_alpha must be a finite number"),
    ('{"lora_alpha": NaN}', "lora_alpha must be a finite number"),
    ('{"alpha_pattern": {"(": 2}}', "alpha_pattern key '\\(' is not a valid pattern"),
    ('{"modules_to_save": 3}', "modules_to_save must be a list"),
    ('{"use_rslora": "false"}', 'use_rslora must be true or false, got "false"'),  # was taken as true: rsLoRA
    ('{"use_dora": "no"}', "use_dora must be true or false"),
    ("[" * 100000 + "]" * 100000, "is not valid JSON \\(nested too deeply\\)"),  # was a RecursionError
])
def test_a_bad_adapter_config_is_named_with_its_field(tmp_path, config, config_text, expect):
    hand_lora(tmp_path / "adapter_model.safetensors")
    (tmp_path / "adapter_config.json").write_text(config_text)
    with pytest.raises(LoraError, match=expect) as caught:
        load_adapter(tmp_path, config)
    assert str(tmp_path / "adapter_config.json") in str(caught.value)


def test_alpha_comes_from_the_key_then_the_config_then_the_rank(tmp_path, config):
    with_key = load_adapter(hand_lora(tmp_path / "a" / "lora.safetensors", alpha=6.0, rank=3), config)
    (tmp_path / "a" / "adapter_config.json").write_text('{"lora_alpha": 99}')
    assert load_adapter(tmp_path / "a" / "lora.safetensors", config).low_rank[Q].alpha == 6.0 == with_key.low_rank[Q].alpha
    hand_lora(tmp_path / "b" / "lora.safetensors", "ab", alpha=None, rank=3)
    assert load_adapter(tmp_path / "b", config).low_rank[Q].alpha == 3.0  # no config: alpha = rank (scale 1)
    (tmp_path / "b" / "adapter_config.json").write_text(json.dumps(
        {"lora_alpha": 8, "use_rslora": True, "alpha_pattern": {"q_proj": 2}}))
    adapter = load_adapter(tmp_path / "b", config)
    assert adapter.low_rank[Q].alpha == pytest.approx(2 * math.sqrt(3))  # scale 2 / sqrt(3)
    assert adapter.low_rank["backbone.layers.0.attn.k_proj.weight"].alpha == pytest.approx(8 * math.sqrt(3))


@pytest.mark.parametrize("kind", ["folder", "huge"])
def test_an_adapter_config_that_is_no_small_file_is_refused_unread(tmp_path, config, kind):
    """(A folder was skipped in silence; a 20 GB file was read whole and the process killed for memory.)"""
    hand_lora(tmp_path / "adapter_model.safetensors")
    if kind == "folder":
        (tmp_path / "adapter_config.json").mkdir()
    else:
        with open(tmp_path / "adapter_config.json", "wb") as f:
            f.truncate(20 << 30)  # sparse
    with pytest.raises(LoraError, match="is not a file" if kind == "folder" else "is 21474.8 MB; PEFT's adapter config"):
        load_adapter(tmp_path, config)


def test_files_that_are_not_loras_are_refused(tmp_path, config):
    with pytest.raises(LoraError, match="does not exist"):
        read_lora(tmp_path / "nothing")
    hand_lora(tmp_path / "two" / "a.safetensors")
    hand_lora(tmp_path / "two" / "b.safetensors")
    with pytest.raises(LoraError, match=r"holds 2 \.safetensors files \(a\.safetensors, b\.safetensors\)"):
        read_lora(tmp_path / "two")
    cases = {"ints.safetensors": {"x.lora_A.weight": torch.zeros(2, 2, dtype=torch.int32)},
             "nan.safetensors": {"x.lora_A.weight": torch.tensor([[float("nan")]])},
             "empty.safetensors": {}}
    expect = {"ints.safetensors": "not floating-point", "nan.safetensors": "NaN or infinite",
              "empty.safetensors": "holds no tensors"}
    for name, tensors in cases.items():
        with pytest.raises(LoraError, match=expect[name]):
            read_lora(save(tmp_path / name, tensors))
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(LoraError, match="holds no plain name -> tensor dictionary"):
        read_lora(tmp_path / "list.pt")


def test_half_a_layer_whole_weights_and_missing_saved_modules_are_all_said_at_once(tmp_path, config):
    tensors = load_file(str(hand_lora(tmp_path / "x.safetensors", "ab")))
    tensors.pop("backbone.layers.0.attn.q_proj.lora_B.weight")
    tensors["backbone.layers.1.attn.q_proj.weight"] = torch.zeros(64, 64)  # a checkpoint's key
    save(tmp_path / "x.safetensors", tensors)
    with pytest.raises(LoraError) as caught:
        load_adapter(tmp_path / "x.safetensors", config)
    message = str(caught.value)
    assert "1 layers have only one of their two factors (backbone.layers.0.attn.q_proj.lora_A.weight (no lora_B" in message
    assert "1 keys are whole weights, not LoRA factors (backbone.layers.1.attn.q_proj.weight)" in message
    assert "nothing was applied" in message
    (tmp_path / "adapter_config.json").write_text('{"modules_to_save": ["codebook0_head"]}')
    tensors.pop("backbone.layers.1.attn.q_proj.weight")
    tensors["backbone.layers.0.attn.q_proj.lora_B.weight"] = torch.zeros(64, 3)
    save(tmp_path / "x.safetensors", tensors)
    with pytest.raises(LoraError, match=r"modules_to_save lists modules whose weights the file lacks \(codebook0_head.weight\)"):
        load_adapter(tmp_path / "x.safetensors", config)


def test_the_merge_is_the_lora_sum_and_strength_0_changes_nothing(tmp_path, config):
    adapter = load_adapter(hand_lora(tmp_path / "l.safetensors", alpha=6.0, rank=3), config)
    base = load_lm(TINY_LM).model
    lm = load_lm(TINY_LM).model
    merge_adapters(lm, [(adapter, 0.0)])
    assert all(torch.equal(a, b) for a, b in zip(lm.state_dict().values(), base.state_dict().values()))
    merge_adapters(lm, [(adapter, -0.5), (adapter, 1.5)])
    f = adapter.low_rank[Q]
    expected = base.state_dict()[Q] + 2.0 * (f.up @ f.down)  # (1.5 - 0.5) x alpha 6 / rank 3
    assert torch.allclose(lm.state_dict()[Q], expected, atol=1e-5)
    untouched = "backbone.layers.0.sa_norm.scale"
    assert torch.equal(lm.state_dict()[untouched], base.state_dict()[untouched])


def test_fp8_weights_are_widened_merged_and_stored_with_a_fresh_scale(tmp_path, config):
    adapter = load_adapter(hand_lora(tmp_path / "l.safetensors", alpha=6.0, rank=3), config)
    wide = load_lm(TINY_LM).model
    merge_adapters(wide, [(adapter, 1.0)])
    lm = load_lm(TINY_LM, storage=WeightStorage(formats.E4M3)).model
    layer = lm.backbone.layers[0].attn.q_proj
    old_scale = layer.weight_scale.clone()
    merge_adapters(lm, [(adapter, 1.0)])
    assert layer.weight.dtype == formats.E4M3 and not torch.equal(layer.weight_scale, old_scale)
    merged = formats.dequantize(layer.weight, layer.weight_scale, torch.float32)
    target = wide.state_dict()[Q]
    assert float((merged - target).abs().max()) <= float(target.abs().max()) / 16  # within e4m3's steps
    assert float(merged.abs().max()) == pytest.approx(float(target.abs().max()), rel=0.07)  # no saturation


@pytest.mark.parametrize("held", ["fp8_e4m3fn", "bf16"])
@pytest.mark.parametrize("file", ["float32 file", "fp8 file"])
def test_merging_while_loading_rounds_each_weight_once_after_the_sum(tmp_path, config, held, file):
    """``load_lm(updates=)`` (the command line's and batch's way) holds exactly the float32 sum
    rounded to the held format; ``merge_adapters`` on a loaded model rounds twice (before and after)."""
    adapter = load_adapter(hand_lora(tmp_path / "l.safetensors", alpha=6.0, rank=3), config)
    folder = TINY_LM
    if file == "fp8 file":
        from heartmula_core.cli.quantize import quantize
        folder = tmp_path / "fp8" / "HeartMuLa-oss-3B"
        quantize(TINY_LM, folder, "fp8_e4m3fn")
    exact = load_lm(folder).model  # float32 (an fp8 file dequantized)
    merge_adapters(exact, [(adapter, 0.5), (adapter, 0.25)])
    storage, dtype = (WeightStorage(formats.E4M3), torch.float32) if held == "fp8_e4m3fn" else (WeightStorage(), torch.bfloat16)
    once = load_lm(folder, dtype=dtype, storage=storage, updates=Updates([(adapter, 0.5), (adapter, 0.25)])).model
    twice = load_lm(folder, dtype=dtype, storage=storage).model
    merge_adapters(twice, [(adapter, 0.5), (adapter, 0.25)])
    errors = {"once": 0.0, "twice": 0.0}
    for key in adapter.keys:
        owner_name, _, name = key.rpartition(".")
        target = exact.state_dict()[key]
        for label, model in (("once", once), ("twice", twice)):
            owner = model.get_submodule(owner_name)
            weight = getattr(owner, name)
            if held == "fp8_e4m3fn":
                q, scale = formats.quantize(target, formats.E4M3, key)
                if label == "once":
                    assert torch.equal(weight.view(torch.uint8), q.view(torch.uint8)) and torch.equal(owner.weight_scale, scale)
                value = formats.dequantize(weight, owner.weight_scale, torch.float32)
            else:
                if label == "once":
                    assert torch.equal(weight, target.to(torch.bfloat16))
                value = weight.float()
            errors[label] += float((value - target).norm() ** 2)
    if file == "fp8 file" and held == "fp8_e4m3fn":  # the loaded fp8 codes were the file's: the same rounding
        assert errors["once"] == errors["twice"]
    else:
        assert errors["once"] < errors["twice"]
    untouched = "backbone.layers.0.sa_norm.scale"
    assert torch.equal(once.state_dict()[untouched], twice.state_dict()[untouched])


def test_merge_bytes_is_the_largest_layer_widened_twice(config, tmp_path):
    adapter = load_adapter(hand_lora(tmp_path / "l.safetensors"), config)
    shapes = {k: tuple(v.shape) for k, v in checkpoint_state().items()}
    largest = max(math.prod(shapes[k]) for k in adapter.keys)
    assert merge_bytes([(adapter, 1.0)], shapes) == 9 * largest
    assert merge_bytes([(adapter, 0.0)], shapes) == 0


@pytest.mark.parametrize("loras,expect", [
    ((("a.safetensors", float("nan")),), "loras strength must be a finite number between -100 and 100"),
    ((("a.safetensors", 101),), "loras strength must be a finite number between -100 and 100, got 101"),
    ((("a.safetensors", True),), "loras strength must be a number"),
    ("a.safetensors", "loras must be \\(LoRA file or folder, strength\\) pairs"),
    (((3, 1.0),), "is not a LoRA file or folder"),
])
def test_song_settings_check_the_loras_strengths(loras, expect):
    with pytest.raises(SettingsError, match=expect):
        SongSettings(loras=loras).checked()
    assert SongSettings(loras=(("a", 2),)).checked().loras == (("a", 2.0),)
