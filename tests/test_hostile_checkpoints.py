"""Checkpoint folders written by someone careless or hostile: every case is one CheckpointError at
load time, naming the file (and the field), before any tensor is read or allocated; shard names
never leave the model folder; a pipe named model.safetensors never blocks."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import struct
import time
from pathlib import Path

import pytest

from heartmula_core import weights
from heartmula_core.lm.load import load_lm
from heartmula_core.codec import load_codec
from heartmula_core.errors import CheckpointError
from heartmula_core.lm.config import GenConfig, HeartMuLaConfig
from lm_fixtures import TINY_CKPT, TINY_LM

TINY_CODEC = TINY_CKPT / "HeartCodec-oss"


@pytest.fixture
def root(tmp_path):
    """A copy of the tiny LM folder with its shared tokenizer / gen_config beside it."""
    shutil.copytree(TINY_LM, tmp_path / TINY_LM.name)
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(TINY_CKPT / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def no_tensor_read(monkeypatch):
    """Fail the test if any tensor is read: rejection must come from the header alone."""
    def refuse(self, key, dtype=None):
        raise AssertionError(f"tensor {key} was read before the header was rejected")

    monkeypatch.setattr(weights.TensorSource, "load", refuse)


def write_file(path: Path, header, data: bytes = b"\0" * 32, header_len: int | None = None) -> None:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)


def f32(offsets, shape=(4,), dtype="F32"):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": offsets}


DEEP = 100_000
HOSTILE = {
    "negative offset": ({"a": f32([-8, 8]), "b": f32([8, 32], (6,))}, None),
    "overlapping offsets": ({"a": f32([0, 32], (8,)), "b": f32([16, 32])}, None),
    "duplicate key": (b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                      b'"a":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}', None),
    "size does not match dtype x shape": ({"a": f32([0, 16], (4,), "F16"), "b": f32([16, 32])}, None),
    "huge shape": ({"a": f32([0, 32], (1 << 30, 1 << 30))}, None),
    "missing dtype": ({"a": {"shape": [8], "data_offsets": [0, 32]}}, None),
    "string offsets": ({"a": {"dtype": "F32", "shape": [8], "data_offsets": ["0", "32"]}}, None),
    "list header": ([1, 2], None),
    "deep JSON": (b'{"a":' + b"[" * DEEP + b"]" * DEEP + b"}", None),
    "deep metadata": (b'{"__metadata__":' + b'{"a":' * DEEP + b'"x"' + b"}" * DEEP + b"}", None),
    "offsets past the end": ({"a": f32([0, 16]), "b": f32([16, 48], (8,))}, None),
    "gap before the first tensor": ({"a": f32([8, 24]), "b": f32([24, 32], (2,))}, None),
    "header length past the end": ({"a": f32([0, 32], (8,))}, 10 ** 12),
    "too short": (b"", 3),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_header_is_one_checkpoint_error_before_any_read(root, no_tensor_read, case):
    header, header_len = HOSTILE[case]
    weights_file = root / TINY_LM.name / "model.safetensors"
    if case == "too short":
        weights_file.write_bytes(b"\x05\x00")
    else:
        write_file(weights_file, header, header_len=header_len)
    started = time.monotonic()
    with pytest.raises(CheckpointError) as err:
        load_lm(root / TINY_LM.name)
    assert str(weights_file) in str(err.value) and "safetensors" in str(err.value)
    assert "Re-download" in str(err.value)
    assert time.monotonic() - started < 10


def relabel(path: Path, key: str, dtype: str) -> None:
    """Change one tensor's dtype label in place of the header (same bytes)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header[key]["dtype"] = dtype
    write_file(path, header, raw[8 + n:])


def test_float_weights_labelled_as_integers_are_refused_before_loading(root, no_tensor_read):
    weights_file = root / TINY_LM.name / "model.safetensors"
    relabel(weights_file, "backbone.layers.0.mlp.w1.weight", "I32")
    with pytest.raises(CheckpointError, match=r"1 stored as integers where the model needs floating-point "
                                              r"weights: backbone\.layers\.0\.mlp\.w1\.weight \(int32\)"):
        load_lm(root / TINY_LM.name)


def test_codec_weight_norm_half_labelled_as_integers_is_refused(tmp_path, no_tensor_read):
    folder = tmp_path / "HeartCodec-oss"
    shutil.copytree(TINY_CODEC, folder)
    raw = (folder / "model.safetensors").read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    g_key = next(k for k in header if k.endswith("original0") or k.endswith("weight_g"))
    relabel(folder / "model.safetensors", g_key, "I32")
    with pytest.raises(CheckpointError, match="stored as integers"):
        load_codec(folder)


def test_a_pipe_named_model_safetensors_is_refused_without_blocking(root):
    weights_file = root / TINY_LM.name / "model.safetensors"
    weights_file.unlink()
    os.mkfifo(weights_file)

    def hung(*_):
        raise AssertionError("opening the pipe blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(CheckpointError, match="not a regular file"):
            load_lm(root / TINY_LM.name)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def sharded(root: Path, weight_map: dict) -> Path:
    folder = root / TINY_LM.name
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


@pytest.mark.parametrize("name", ["/etc/passwd", "../tokenizer.json", "sub/model.safetensors", "..", "a\\b"])
def test_index_may_not_name_files_outside_the_model_folder(root, no_tensor_read, name):
    folder = sharded(root, {"text_embeddings.weight": "model.safetensors", "muq_linear.weight": name})
    with pytest.raises(CheckpointError, match="outside its folder"):
        load_lm(folder)


@pytest.mark.parametrize("index", ['{"weight_map": ["model.safetensors"]}', '{"weight_map": {"a": 5}}', "[1]",
                                   '{"weight_map": {"a": ' + "[" * DEEP + "]" * DEEP + "}}"])
def test_malformed_index_is_one_error(root, index):
    (root / TINY_LM.name / "model.safetensors.index.json").write_text(index)
    with pytest.raises(CheckpointError, match="index"):
        load_lm(root / TINY_LM.name)


def test_shards_that_hold_the_same_tensor_are_refused(root, no_tensor_read):
    folder = root / TINY_LM.name
    shutil.copy(folder / "model.safetensors", folder / "copy.safetensors")
    sharded(root, {"text_embeddings.weight": "model.safetensors", "muq_linear.weight": "copy.safetensors"})
    with pytest.raises(CheckpointError, match=r"is in both .*(copy|model)\.safetensors and "
                                              r".*(copy|model)\.safetensors: shards must not overlap"):
        load_lm(folder)


BAD_LM_CONFIGS = {
    "num_heads 0": ({"backbone": {"num_heads": 0}}, "'backbone'.num_heads"),
    "num_layers 1e6": ({"backbone": {"num_layers": 1e6}}, "'backbone'.num_layers"),
    "num_layers 5000": ({"decoder": {"num_layers": 5000}}, "'decoder'.num_layers"),
    "kv heads do not divide": ({"backbone": {"num_kv_heads": 5}}, "num_heads by num_kv_heads"),
    "odd head dim": ({"decoder": {"embed_dim": 3072 - 8 * 3, "num_heads": 8, "num_kv_heads": 4}}, "must be even"),
    "string dimension": ({"backbone": {"embed_dim": "3072"}}, "'backbone'.embed_dim"),
    "boolean dimension": ({"backbone": {"intermediate_dim": True}}, "'backbone'.intermediate_dim"),
    "nan norm eps": ({"backbone": {"norm_eps": math.nan}}, "'backbone'.norm_eps"),
    "equal frequency factors": ({"decoder": {"low_freq_factor": 4.0}}, "high_freq_factor"),
    "negative vocabulary": ({"audio_vocab_size": -1}, "'audio_vocab_size'"),
    "vocabulary as text": ({"text_vocab_size": "lots"}, "'text_vocab_size'"),
    "backbone as a list": ({"backbone": [1]}, "'backbone'"),
    "flavor as a list": ({"backbone_flavor": ["llama-3B"]}, "'backbone_flavor'"),
}


@pytest.mark.parametrize("case", BAD_LM_CONFIGS)
def test_bad_lm_config_names_the_file_and_field(root, case):
    change, field = BAD_LM_CONFIGS[case]
    path = root / TINY_LM.name / "config.json"
    config = json.loads(path.read_text())
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path.write_text(json.dumps(config))
    started = time.monotonic()
    with pytest.raises(CheckpointError) as err:
        load_lm(root / TINY_LM.name)
    assert str(path) in str(err.value) and field in str(err.value), str(err.value)
    assert time.monotonic() - started < 5  # refused before anything is built


BAD_GEN_CONFIGS = {
    "audio eos past the audio vocabulary": ({"audio_eos_id": 69},
                                            "'audio_eos_id' must be an id below the LM's audio_vocab_size (69)"),
    "negative text bos": ({"text_bos_id": -1}, "'text_bos_id'"),
    "text eos past the text vocabulary": ({"text_eos_id": 300}, "'text_eos_id'"),
    "id as text": ({"text_eos_id": "1"}, "'text_eos_id'"),
    "id as a float": ({"audio_eos_id": 65.5}, "'audio_eos_id'"),
    "boolean id": ({"empty_id": False}, "'empty_id'"),
}


@pytest.mark.parametrize("case", BAD_GEN_CONFIGS)
def test_bad_gen_config_names_the_file_and_field(root, case):
    change, message = BAD_GEN_CONFIGS[case]
    path = root / "gen_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(CheckpointError) as err:
        load_lm(root / TINY_LM.name)
    assert str(path) in str(err.value) and message in str(err.value), str(err.value)


def test_gen_config_that_is_not_an_object(root):
    (root / "gen_config.json").write_text("[65]")
    with pytest.raises(CheckpointError, match="gen_config.json must hold a JSON object"):
        load_lm(root / TINY_LM.name)


def test_the_released_configs_still_pass():
    assert HeartMuLaConfig.from_dict({}) == HeartMuLaConfig()
    GenConfig().check("defaults", HeartMuLaConfig())
    config = HeartMuLaConfig.from_file(TINY_LM / "config.json")
    assert GenConfig.from_file(TINY_CKPT / "gen_config.json", config).audio_eos_id == 65


def test_missing_codec_folder_gets_the_codec_download_command(tmp_path):
    for folder in (tmp_path / "my-codec", tmp_path / "HeartCodec-oss"):
        with pytest.raises(CheckpointError) as err:
            load_codec(folder)
        assert f'hf download HeartMuLa/HeartCodec-oss --local-dir "{folder}"' in str(err.value)
        assert "HeartMuLa-oss-3B" not in str(err.value)
    empty = tmp_path / "codec-without-weights"
    empty.mkdir()
    shutil.copy(TINY_CODEC / "config.json", empty / "config.json")
    with pytest.raises(CheckpointError, match=r"No weights in .*hf download HeartMuLa/HeartCodec-oss --local-dir"):
        load_codec(empty)
    with pytest.raises(CheckpointError, match=r"hf download HeartMuLa/HeartCodec-oss-20260123 "):
        load_codec(tmp_path / "HeartCodec-oss-20260123")
