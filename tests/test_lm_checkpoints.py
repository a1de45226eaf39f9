"""Checkpoint folders: layout rules, config defaults, key manifests, and every error message."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartmula_core.checkpoints.folders import list_folders
from heartmula_core.lm.load import build_lm, load_lm, resolve_lm_folder
from heartmula_core.errors import CheckpointError, PromptError
from heartmula_core.lm.config import FLAVORS, HeartMuLaConfig
from heartmula_core.lm.prompt import build_prompt
from heartmula_core.text_input import text_or_file
from lm_fixtures import TINY_CKPT, TINY_LM, manifest


def copy_root(tmp_path):
    root = tmp_path / "HeartMuLa"
    shutil.copytree(TINY_CKPT, root)
    for p in root.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return root


@pytest.mark.parametrize("flavors,name", [(("llama-3B", "llama-300M"), "heartmula-3B.json"),
                                          (("llama-7B", "llama-400M"), "heartmula-7B-assumed.json")])
def test_meta_model_matches_released_manifest(flavors, name):
    config = HeartMuLaConfig.from_dict({"backbone_flavor": flavors[0], "decoder_flavor": flavors[1]})
    state = build_lm(config).state_dict()
    want = manifest(name)
    assert sorted(state) == sorted(want)
    for key, tensor in state.items():
        assert list(tensor.shape) == want[key]["shape"], key
        assert str(tensor.dtype).replace("torch.", "") == want[key]["dtype"], key


def test_config_defaults_and_explicit_overrides():
    assert HeartMuLaConfig.from_dict({}) == HeartMuLaConfig()
    cfg = HeartMuLaConfig.from_dict({"backbone_flavor": "llama-3B", "backbone": {"num_layers": 2}})
    assert cfg.backbone.num_layers == 2 and cfg.backbone.embed_dim == FLAVORS["llama-3B"].embed_dim
    with pytest.raises(CheckpointError, match="not a known flavor"):
        HeartMuLaConfig.from_dict({"backbone_flavor": "llama-1T"})


def test_root_folder_resolves_to_the_only_lm_and_lists_it(tmp_path):
    root = copy_root(tmp_path)
    assert list_folders(root, "lm") == ["HeartMuLa-oss-3B"]
    files = resolve_lm_folder(root)
    assert files.folder.name == "HeartMuLa-oss-3B" and files.tokenizer.parent == root


def test_sharded_checkpoint_with_index_loads_identically(tmp_path):
    root = copy_root(tmp_path)
    lm_dir = root / "HeartMuLa-oss-3B"
    tensors = load_file(str(lm_dir / "model.safetensors"))
    keys = sorted(tensors)
    half = len(keys) // 2
    save_file({k: tensors[k] for k in keys[:half]}, str(lm_dir / "model-00001-of-00002.safetensors"))
    save_file({k: tensors[k] for k in keys[half:]}, str(lm_dir / "model-00002-of-00002.safetensors"))
    (lm_dir / "model.safetensors").unlink()
    weight_map = {k: f"model-0000{1 if i < half else 2}-of-00002.safetensors" for i, k in enumerate(keys)}
    (lm_dir / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    sharded = load_lm(lm_dir).model.state_dict()
    for k in keys:
        assert torch.equal(sharded[k], tensors[k])


def test_bf16_load_casts_every_weight(tmp_path):
    model = load_lm(TINY_LM, dtype=torch.bfloat16).model
    assert {t.dtype for t in model.state_dict().values()} == {torch.bfloat16}


def test_mismatched_weights_reported_together(tmp_path):
    root = copy_root(tmp_path)
    path = root / "HeartMuLa-oss-3B" / "model.safetensors"
    tensors = load_file(str(path))
    del tensors["backbone.norm.scale"]
    tensors["extra.weight"] = torch.zeros(2)
    tensors["codebook0_head.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(path))
    with pytest.raises(CheckpointError) as err:
        load_lm(root / "HeartMuLa-oss-3B")
    msg = str(err.value)
    assert str(path) in msg
    assert "1 missing: backbone.norm.scale" in msg
    assert "1 unexpected: extra.weight" in msg
    assert "codebook0_head.weight (file [3, 3], model [69, 64])" in msg


@pytest.mark.parametrize("remove,expect", [
    ("HeartMuLa-oss-3B/model.safetensors", "No weights in"),
    ("tokenizer.json", "tokenizer.json not found"),
    ("gen_config.json", "gen_config.json not found"),
])
def test_missing_files_named_with_download_command(tmp_path, remove, expect):
    root = copy_root(tmp_path)
    (root / remove).unlink()
    with pytest.raises(CheckpointError, match=expect) as err:
        load_lm(root / "HeartMuLa-oss-3B")
    assert "hf download" in str(err.value)


def test_missing_folder_and_broken_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist.*hf download HeartMuLa/HeartMuLa-oss-3B"):
        load_lm(tmp_path / "HeartMuLa-oss-3B")
    root = copy_root(tmp_path)
    (root / "HeartMuLa-oss-3B" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        load_lm(root / "HeartMuLa-oss-3B")
    root2 = copy_root(tmp_path / "b")
    (root2 / "HeartMuLa-oss-3B" / "model.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_lm(root2 / "HeartMuLa-oss-3B")
    root3 = copy_root(tmp_path / "c")
    weights = root3 / "HeartMuLa-oss-3B" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="ends early|corrupt"):
        load_lm(root3 / "HeartMuLa-oss-3B")


def test_prompt_errors_and_file_inputs(tmp_path):
    lm = load_lm(TINY_LM)
    with pytest.raises(PromptError, match="tags are empty"):
        build_prompt(lm.tokenizer, lm.gen_config, "  ", "la")
    with pytest.raises(PromptError, match="lyrics are empty"):
        build_prompt(lm.tokenizer, lm.gen_config, "piano", "\n")
    tags, lyrics = tmp_path / "tags.txt", tmp_path / "lyrics.txt"
    tags.write_text("Piano,Happy")
    lyrics.write_text("[Verse]\nHello")
    from_files = build_prompt(lm.tokenizer, lm.gen_config, text_or_file(str(tags), "tags"),
                              text_or_file(str(lyrics), "lyrics"))  # the command line reads files
    from_text = build_prompt(lm.tokenizer, lm.gen_config, "piano,happy", "[verse]\nhello")
    assert torch.equal(from_files.tokens, from_text.tokens)
