"""Corrupt or extreme weights are refused with one error naming the file and tensor, on every load
path (core loaders in each storage, the command line, ``quantize`` input), never loaded as a model
that writes songs of token 0 or, read through the CPU's fast fp8 cast, another model."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartmula_core.cli.quantize import quantize
from heartmula_core.codec import load_codec
from heartmula_core.errors import CheckpointError
from heartmula_core.lm.load import load_lm
from heartmula_core.quant import formats
from heartmula_core.quant.finite import code_value, largest_code
from heartmula_core.quant.storage import WeightStorage, scale_key
from lm_fixtures import TINY_CKPT, TINY_LM

ROOT = Path(__file__).resolve().parents[1]
TINY_CODEC = TINY_CKPT / "HeartCodec-oss"
KEY = "backbone.layers.0.mlp.w3.weight"
STORAGES = {"default": WeightStorage(), "fp8_e4m3fn": WeightStorage(formats.E4M3),
            "fp8_e5m2": WeightStorage(formats.E5M2)}


def copy_lm(tmp_path, fmt: str | None = "fp8_e4m3fn") -> Path:
    """The tiny LM, in fp8 (``quantize``) or float32 (a copy), in a folder of its own."""
    folder = tmp_path / "lm" / "HeartMuLa-oss-3B"
    if fmt is None:
        shutil.copytree(TINY_LM, folder)
        for name in ("tokenizer.json", "gen_config.json"):
            shutil.copy(TINY_CKPT / name, folder.parent)
    else:
        quantize(TINY_LM, folder, fmt)
    return folder


def damage(folder: Path, change) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


def set_code(tensors, key, code, index=5):
    raw = tensors[key].view(torch.uint8).clone()
    raw.view(-1)[index] = code
    tensors[key] = raw.view(tensors[key].dtype)


@pytest.mark.parametrize("fp8", [formats.E4M3, formats.E5M2])
def test_largest_code_reads_every_code_of_both_formats(fp8):
    for code in range(256):
        q = torch.tensor([0x80, code, 1], dtype=torch.uint8).view(fp8)
        assert largest_code(q) == max(code & 0x7F, 1)
        value = torch.tensor(code, dtype=torch.uint8).view(fp8).float().abs()
        if bool(torch.isfinite(value)):
            assert code_value(code & 0x7F, fp8) == float(value)
    assert largest_code(torch.empty(0, dtype=fp8)) == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_largest_bits_finds_the_largest_magnitude_and_every_nan_or_infinity(dtype):
    from heartmula_core.quant.finite import NON_FINITE, largest_bits

    g = torch.Generator().manual_seed(0)
    info = torch.finfo(dtype)
    wide = torch.float64
    for values in (torch.randn(1000, generator=g), -torch.rand(77, generator=g), torch.tensor([-0.0, 0.0]),
                   torch.tensor([info.max, -info.max, info.tiny], dtype=wide), torch.tensor([-info.max, 1.0], dtype=wide)):
        t = values.to(dtype)
        bits = largest_bits(t)
        assert bits < NON_FINITE[dtype]
        back = torch.tensor([bits], dtype=torch.int64).to({2: torch.int16, 4: torch.int32, 8: torch.int64}[
            t.element_size()]).view(dtype)
        assert float(back) == float(t.abs().max())
        for bad in (float("nan"), float("inf"), -float("inf"), -float("nan")):
            poisoned = t.clone()
            poisoned[len(t) // 2] = bad
            assert largest_bits(poisoned) >= NON_FINITE[dtype], (bad, t)


@pytest.mark.parametrize("fmt,code", [("fp8_e4m3fn", 0x7F), ("fp8_e4m3fn", 0xFF), ("fp8_e5m2", 0x7C),
                                      ("fp8_e5m2", 0xFD), ("fp8_e5m2", 0xFE)])
@pytest.mark.parametrize("held", list(STORAGES))
def test_nan_or_infinite_fp8_codes_are_refused_however_the_weights_are_held(tmp_path, fmt, code, held):
    folder = copy_lm(tmp_path, fmt)
    damage(folder, lambda t: set_code(t, KEY, code))
    with pytest.raises(CheckpointError, match=f"model.safetensors: tensor {KEY} holds fp8 codes that stand for NaN "
                                              "or infinity"):
        load_lm(folder, storage=STORAGES[held])


@pytest.mark.parametrize("held", list(STORAGES))
def test_a_finite_but_huge_scale_is_refused(tmp_path, held):
    folder = copy_lm(tmp_path)
    damage(folder, lambda t: t.__setitem__(scale_key(KEY), torch.tensor(3e38)))
    with pytest.raises(CheckpointError, match=rf"{KEY}: its largest weight \(448 x scale 3e\+38\) is beyond what "
                                              "float32 holds"):
        load_lm(folder, storage=STORAGES[held])


@pytest.mark.parametrize("scale", [float("nan"), 0.0, -2.0])
def test_a_scale_that_is_not_a_positive_number_names_the_file_and_tensor(tmp_path, scale):
    folder = copy_lm(tmp_path)
    damage(folder, lambda t: t.__setitem__(scale_key(KEY), torch.tensor(scale)))
    with pytest.raises(CheckpointError, match=rf"{folder / 'model.safetensors'}: tensor {scale_key(KEY)} is "
                                              rf"{scale}; a weight scale must be a positive finite number"):
        load_lm(folder, storage=STORAGES["fp8_e4m3fn"])


def test_the_limit_is_the_dtype_the_weight_is_used_in(tmp_path):
    """448 x 1000 fits float32 and bf16 but not fp16 (max 65504): refused only where it overflows."""
    folder = copy_lm(tmp_path)
    damage(folder, lambda t: t.__setitem__(scale_key(KEY), torch.tensor(1000.0)))
    load_lm(folder, dtype=torch.float32, storage=WeightStorage(formats.E4M3))
    load_lm(folder, dtype=torch.bfloat16)
    for storage in (WeightStorage(), WeightStorage(formats.E4M3)):
        with pytest.raises(CheckpointError, match="is beyond what float16 holds"):
            load_lm(folder, dtype=torch.float16, storage=storage)


@pytest.mark.parametrize("key,value", [("backbone.norm.scale", float("nan")), (KEY, float("inf")),
                                       ("unconditional_text_embedding.weight", float("-inf"))])
@pytest.mark.parametrize("held", list(STORAGES))
def test_nan_or_infinity_in_a_float32_file_is_refused(tmp_path, key, value, held):
    folder = copy_lm(tmp_path, None)

    def poison(t):
        t[key] = t[key].clone()
        t[key].view(-1)[3] = value
    damage(folder, poison)
    with pytest.raises(CheckpointError, match=f"tensor {key} holds NaN or infinite values"):
        load_lm(folder, storage=STORAGES[held])


def test_bf16_files_and_narrowing_casts_are_checked_too(tmp_path):
    folder = copy_lm(tmp_path, None)
    damage(folder, lambda t: t.update({k: v.to(torch.bfloat16) for k, v in t.items() if v.is_floating_point()}))
    load_lm(folder, dtype=torch.bfloat16)  # a sound bf16 file loads

    def big(t):
        t[KEY] = t[KEY].clone()
        t[KEY].view(-1)[0] = 1e6  # fine in bf16, beyond float16
    damage(folder, big)
    load_lm(folder, dtype=torch.float32)
    with pytest.raises(CheckpointError, match=f"tensor {KEY} holds NaN or infinite values once converted from "
                                              "bfloat16 to float16: .* or load it in a wider dtype"):
        load_lm(folder, dtype=torch.float16)
    damage(folder, lambda t: t[KEY].view(-1).__setitem__(1, float("inf")))
    with pytest.raises(CheckpointError, match=f"tensor {KEY} holds NaN or infinite values: the file is corrupt"):
        load_lm(folder, dtype=torch.bfloat16)


@pytest.mark.parametrize("held", ["default", "fp8_e4m3fn"])
def test_codec_weight_norm_and_fp8_transformer_weights_are_checked(tmp_path, held):
    folder = tmp_path / "HeartCodec-oss"
    shutil.copytree(TINY_CODEC, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    g = next(k for k in tensors if k.endswith("weight_g") or k.endswith("original0"))
    tensors[g] = torch.full_like(tensors[g], float("nan"))
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="holds NaN or infinite values"):
        load_codec(folder, storage=STORAGES[held])
    quantize(TINY_CODEC, tmp_path / "fp8", "fp8_e4m3fn")
    key = next(k for k, v in load_file(str(tmp_path / "fp8" / "model.safetensors")).items() if v.dtype == formats.E4M3)
    damage(tmp_path / "fp8", lambda t: set_code(t, key, 0x7F))
    with pytest.raises(CheckpointError, match=f"tensor {key} holds fp8 codes that stand for NaN"):
        load_codec(tmp_path / "fp8", storage=STORAGES[held])


@pytest.mark.parametrize("case", ["nan code", "nan norm", "inf embedding"])
def test_quantize_refuses_a_corrupt_input_and_writes_nothing(tmp_path, case):
    if case == "nan code":
        folder = copy_lm(tmp_path)  # an fp8 input, re-quantized: the code passes through unchanged
        damage(folder, lambda t: set_code(t, KEY, 0xFF))
        match = "holds fp8 codes that stand for NaN"
    else:
        folder = copy_lm(tmp_path, None)
        key = "backbone.norm.scale" if case == "nan norm" else "text_embeddings.weight"  # copied as is / converted

        def poison(t):
            t[key] = t[key].clone()
            t[key].view(-1)[0] = float("nan") if case == "nan norm" else float("inf")
        damage(folder, poison)
        match = f"tensor {key} holds NaN or infinite values"
    with pytest.raises(CheckpointError, match=f"^{folder / 'model.safetensors'}: .*{match}"):
        quantize(folder, tmp_path / "out", "fp8_e4m3fn")
    assert not (tmp_path / "out").exists()  # not even the folder the write made


def test_quantize_checks_the_weights_against_config_json(tmp_path):
    """LM weights beside a codec's config.json (and the other way round) are refused before anything
    is written, naming the weight file; so are a missing tensor and a wrong shape."""
    codec_cfg = tmp_path / "codec-config"
    codec_cfg.mkdir()
    shutil.copy(TINY_CODEC / "config.json", codec_cfg)
    shutil.copy(TINY_LM / "model.safetensors", codec_cfg)
    with pytest.raises(CheckpointError, match=r"codec-config/model.safetensors do not match the model built from its "
                                              r"config.json: \d+ missing: flow_matching.* \d+ unexpected: audio_"):
        quantize(codec_cfg, tmp_path / "o1")
    lm = copy_lm(tmp_path, None)
    shutil.copy(TINY_CODEC / "model.safetensors", lm)
    with pytest.raises(CheckpointError, match="HeartMuLa-oss-3B/model.safetensors do not match .* unexpected: flow_"):
        quantize(lm, tmp_path / "o2")
    shutil.copy(TINY_LM / "model.safetensors", lm)
    damage(lm, lambda t: t.pop("backbone.norm.scale"))
    with pytest.raises(CheckpointError, match="1 missing: backbone.norm.scale"):
        quantize(lm, tmp_path / "o3")
    shutil.copy(TINY_LM / "model.safetensors", lm)
    damage(lm, lambda t: t.__setitem__(KEY, t[KEY][:, :-1].contiguous()))
    with pytest.raises(CheckpointError, match=f"1 with the wrong shape: {KEY}"):
        quantize(lm, tmp_path / "o4")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heartmula_core", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_the_command_line_says_one_line_and_writes_nothing(tmp_path):
    folder = copy_lm(tmp_path)
    damage(folder, lambda t: set_code(t, KEY, 0x7F))
    done = run_cli("sample", "--model-dir", folder, "--tags", "piano", "--lyrics", "la", "--seconds", "1",
                   "--codes-out", tmp_path / "codes.safetensors")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and "holds fp8 codes" in done.stderr
    assert not (tmp_path / "codes.safetensors").exists()
    done = run_cli("quantize", "--model-dir", folder, "--out", tmp_path / "again")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "holds fp8 codes" in done.stderr


@pytest.mark.parametrize("command", ["quantize", "sample", "decode", "generate"])
def test_a_model_dir_that_is_a_file_is_named_as_such(tmp_path, command):
    weights = (TINY_CODEC if command == "decode" else TINY_LM) / "model.safetensors"
    args = {"quantize": ["--out", tmp_path / "q"],
            "sample": ["--tags", "a", "--lyrics", "b", "--codes-out", tmp_path / "c.safetensors"],
            "decode": ["--codes", tmp_path / "c.safetensors", "--out", tmp_path / "s.wav"],
            "generate": ["--tags", "a", "--lyrics", "b", "--out", tmp_path / "s.wav"]}[command]
    if command == "decode":
        from heartmula_core.codes import save_codes

        save_codes(tmp_path / "c.safetensors", torch.zeros(1, 8, 4, dtype=torch.long), torch.tensor([4]))
    for given in (weights, weights / "inside"):
        done = run_cli(command, "--model-dir", given, *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "is a file, not a folder" in done.stderr or f"lies inside the file {weights}" in done.stderr
        assert f"e.g. {weights.parent}" in done.stderr and "hf download" not in done.stderr
    assert json.loads((TINY_LM / "config.json").read_text())  # the input is untouched
