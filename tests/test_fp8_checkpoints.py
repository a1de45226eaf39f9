"""fp8 checkpoints: ``quantize`` writes them (single file or shards, atomically), and loading reads
fp8 files with or without scales, in ComfyUI's and its 0.3.64-era conventions."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fp8_fixtures import greedy
from heartmula_core.cli.quantize import quantize
from heartmula_core.codec import decode, load_codec
from heartmula_core.errors import CheckpointError, OutputError
from heartmula_core.lm.load import load_lm
from heartmula_core.quant import formats, source
from heartmula_core.quant import storage as store
from heartmula_core.quant.storage import WeightStorage
from lm_fixtures import TINY_CKPT, TINY_LM, manifest

ROOT = Path(__file__).resolve().parents[1]
TINY_CODEC = TINY_CKPT / "HeartCodec-oss"


def lm_folder(tmp_path, tensors=None) -> Path:
    """A copy of the tiny LM (tokenizer/gen_config one level up, as released), with ``tensors`` if given."""
    folder = tmp_path / "in" / "HeartMuLa-oss-3B"
    shutil.copytree(TINY_LM, folder)
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(TINY_CKPT / name, folder.parent)
    if tensors is not None:
        save_file(tensors, str(folder / "model.safetensors"))
    return folder


def test_quantized_lm_is_small_loads_alike_and_gives_the_same_greedy_codes(tmp_path):
    out = tmp_path / "fp8"
    done = quantize(TINY_LM, out, "fp8_e4m3fn")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "gen_config.json", "model.safetensors", "tokenizer.json"]
    assert done["out_bytes"] == (out / "model.safetensors").stat().st_size
    assert done["out_bytes"] < 0.27 * (TINY_LM / "model.safetensors").stat().st_size
    tensors = load_file(str(out / "model.safetensors"))
    assert tensors["backbone.layers.0.attn.q_proj.weight"].dtype == formats.E4M3
    assert tensors["backbone.layers.0.attn.q_proj.weight_scale"].shape == ()
    assert json.loads(bytes(tensors["backbone.layers.0.attn.q_proj.comfy_quant"].tolist())) == {"format": "float8_e4m3fn"}
    assert tensors["audio_head"].dtype == formats.E4M3 and "audio_head_scale" in tensors
    assert tensors["backbone.norm.scale"].dtype == torch.float32
    from_file = load_lm(out, storage=WeightStorage(formats.E4M3))
    converted = load_lm(TINY_LM, storage=WeightStorage(formats.E4M3))
    a, b = from_file.model.state_dict(), converted.model.state_dict()
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key].float(), b[key].float()), key
    assert torch.equal(greedy(from_file, 24), greedy(converted, 24))


def test_an_fp8_checkpoint_loads_without_fp8_as_dequantized_weights(tmp_path):
    quantize(TINY_LM, tmp_path / "fp8", "fp8_e5m2")
    wide = load_lm(tmp_path / "fp8", dtype=torch.bfloat16).model.state_dict()
    stored = load_file(str(tmp_path / "fp8" / "model.safetensors"))
    key = "decoder.layers.0.mlp.w2.weight"
    assert wide[key].dtype == torch.bfloat16
    assert torch.equal(wide[key], (stored[key].float() * stored[store.scale_key(key)]).to(torch.bfloat16))
    assert wide["audio_head"].dtype == torch.bfloat16 and "audio_head_scale" not in wide


def test_unscaled_and_old_convention_fp8_files_load(tmp_path):
    original = load_file(str(TINY_LM / "model.safetensors"))
    plain = {k: (v.to(formats.E4M3) if k.endswith("proj.weight") else v) for k, v in original.items()}
    lm = load_lm(lm_folder(tmp_path / "a", plain), storage=WeightStorage(formats.E4M3))
    key = "backbone.layers.1.attn.k_proj.weight"
    assert float(lm.model.state_dict()[store.scale_key(key)]) == 1.0
    assert torch.equal(lm.model.state_dict()[key].view(torch.uint8), plain[key].view(torch.uint8))
    old = dict(plain, scaled_fp8=torch.empty(0, dtype=formats.E4M3))
    q, scale = formats.quantize(original[key], formats.E4M3)
    old[key], old[store.scale_key(key, "scale_weight")] = q, scale
    old[store.scale_key(key, "scale_input")] = torch.ones(())
    lm = load_lm(lm_folder(tmp_path / "b", old), storage=WeightStorage(formats.E5M2))  # re-quantized to e5m2
    held = lm.model.state_dict()
    assert held[key].dtype == formats.E5M2
    assert torch.allclose(held[key].float() * held[store.scale_key(key)], q.float() * scale, rtol=0.13, atol=0)


@pytest.mark.parametrize("damage,message", [
    (lambda t, k: t.__setitem__(store.scale_key(k), torch.ones(4)), "only one scale per tensor"),
    (lambda t, k: t.__setitem__(store.scale_key(k), torch.tensor(float("nan"))), "positive finite number"),
    (lambda t, k: t.__setitem__(store.marker_key(k), torch.tensor(list(b'{"format": "nvfp4"}'), dtype=torch.uint8)),
     "'nvfp4'; the pack loads only"),
])
def test_bad_fp8_files_get_errors_that_name_the_tensor(tmp_path, damage, message):
    quantize(TINY_LM, tmp_path / "fp8", "fp8_e4m3fn")
    tensors = load_file(str(tmp_path / "fp8" / "model.safetensors"))
    damage(tensors, "backbone.layers.0.mlp.w3.weight")
    save_file(tensors, str(tmp_path / "fp8" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=message) as caught:
        load_lm(tmp_path / "fp8", storage=WeightStorage(formats.E4M3))
    assert "backbone.layers.0.mlp.w3" in str(caught.value)


def test_sharded_checkpoints_stay_sharded(tmp_path):
    tensors = load_file(str(TINY_LM / "model.safetensors"))
    folder = lm_folder(tmp_path)
    (folder / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(folder / shard))
    index = {"metadata": {}, "weight_map": {k: s for s, keys in shards.items() for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    quantize(folder.parent, tmp_path / "out", "fp8_e4m3fn")  # a root holding one LM folder
    written = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    for shard, keys in shards.items():
        held = set(load_file(str(tmp_path / "out" / shard)))
        assert {k for k, s in written["weight_map"].items() if s == shard} == held
        assert set(keys) <= held
    assert torch.equal(greedy(load_lm(tmp_path / "out", storage=WeightStorage(formats.E4M3))),
                       greedy(load_lm(TINY_LM, storage=WeightStorage(formats.E4M3))))


def test_quantized_codec_decodes_as_the_converted_one(tmp_path):
    quantize(TINY_CODEC, tmp_path / "codec", "fp8_e4m3fn")
    assert sorted(p.name for p in (tmp_path / "codec").iterdir()) == ["config.json", "model.safetensors"]
    codes = torch.randint(0, 1000, (1, 8, 30), generator=torch.Generator().manual_seed(0)) % 64
    a = decode(load_codec(tmp_path / "codec", storage=WeightStorage(formats.E4M3)), codes,
               generator=torch.Generator().manual_seed(2), steps=3)
    b = decode(load_codec(TINY_CODEC, storage=WeightStorage(formats.E4M3)), codes,
               generator=torch.Generator().manual_seed(2), steps=3)
    assert torch.equal(a, b)


def test_output_folder_rules_and_all_or_nothing(tmp_path, monkeypatch):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="busy exists and is not an empty folder"):
        quantize(TINY_LM, tmp_path / "busy", "fp8_e4m3fn")
    with pytest.raises(OutputError, match="fp8_e4m3fn, fp8_e5m2, got default"):
        quantize(TINY_LM, tmp_path / "new", "default")

    def fail(self, key, dtype=None):
        raise CheckpointError(f"boom at {key}")

    monkeypatch.setattr(source.QuantizingSource, "load", fail)
    with pytest.raises(CheckpointError, match="boom"):
        quantize(TINY_LM, tmp_path / "new", "fp8_e4m3fn")
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_the_command_line(tmp_path):
    run = [sys.executable, "-m", "heartmula_core", "quantize", "--model-dir", str(TINY_LM), "--weight-dtype", "fp8_e5m2"]
    ok = subprocess.run(run + ["--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "lm with 27 weights in fp8_e5m2" in ok.stdout
    bad = subprocess.run(run[:5] + [str(tmp_path / "nowhere"), "--out", str(tmp_path / "p")], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: HeartMuLa LM folder") and "hf download" in bad.stderr


def test_the_released_3b_checkpoint_would_shrink_below_027(tmp_path):
    """Exact bytes from the released manifest: fp8 for the plan's keys (+ scale and marker), the rest as stored."""
    from heartmula_core.lm.load import build_lm
    from heartmula_core.lm.config import FLAVORS, HeartMuLaConfig

    keys = manifest("heartmula-3B.json")
    model = build_lm(HeartMuLaConfig(backbone=FLAVORS["llama-3B"], decoder=FLAVORS["llama-300M"]))
    plan = store.plan_for(store.lm_candidates(model), formats.E4M3, store.CHECKPOINT)
    assert plan.keys <= set(keys)
    numel = {k: int(torch.tensor(v["shape"]).prod()) for k, v in keys.items()}
    before = 4 * sum(numel.values())
    after = sum(numel[k] * (1 if k in plan.keys else 4) for k in keys)
    after += sum(sum(4 if not s else s[0] for s in plan.extra_keys(k).values()) for k in plan.keys)
    assert after / before < 0.27, after / before


def test_a_quantized_medium_lm_gives_the_greedy_codes_of_converting_the_float32_one(tmp_path):
    """Acceptance on a medium LM (random float32 weights, 6 + 2 layers of 512): the file written by
    ``quantize`` is at most 0.27x the float32 one and samples exactly as the float32 one loaded as fp8."""
    from heartmula_core.lm.config import HeartMuLaConfig
    from heartmula_core.lm.load import build_lm
    from streaming_safetensors import write_random_checkpoint

    layers = lambda n: {"num_layers": n, "num_heads": 8, "num_kv_heads": 4, "embed_dim": 512,  # noqa: E731
                        "intermediate_dim": 1408, "max_seq_len": 2048}
    config = {"model_type": "heartmula", "backbone": layers(6), "decoder": layers(2), "text_vocab_size": 300,
              "audio_vocab_size": 1029}
    folder = lm_folder(tmp_path)
    (folder / "config.json").write_text(json.dumps(config))
    shapes = {k: tuple(v.shape) for k, v in build_lm(HeartMuLaConfig.from_dict(config)).state_dict().items()}
    size = write_random_checkpoint(folder / "model.safetensors", shapes)
    done = quantize(folder, tmp_path / "fp8", "fp8_e4m3fn")
    assert done["out_bytes"] <= 0.27 * size, done["out_bytes"] / size
    from_file = greedy(load_lm(tmp_path / "fp8", storage=WeightStorage(formats.E4M3)), 12)
    converted = greedy(load_lm(folder, storage=WeightStorage(formats.E4M3)), 12)
    assert from_file.shape[-1] > 1 and torch.equal(from_file, converted)
