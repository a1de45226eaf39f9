"""fp8 formats: names, per-tensor scales, exact fast casts, slab-wise conversion from files."""

import json
import struct

import pytest
import torch

from heartmula_core.errors import CheckpointError, SettingsError
from heartmula_core.quant import formats
from heartmula_core.quant.reading import Arena, convert_entry
from heartmula_core.safetensors_header import read_entries

FP8 = [formats.E4M3, formats.E5M2]


def test_weight_dtype_names():
    assert formats.parse_weight_dtype("default") is None
    assert formats.parse_weight_dtype("fp8_e4m3fn") is torch.float8_e4m3fn
    assert formats.parse_weight_dtype("fp8_e5m2") is torch.float8_e5m2
    with pytest.raises(SettingsError, match="fp8_e4m3fn, fp8_e5m2.*'fp8'"):
        formats.parse_weight_dtype("fp8")


@pytest.mark.parametrize("dtype", FP8)
@pytest.mark.parametrize("target", [torch.float32, torch.bfloat16, torch.float16])
def test_fast_cpu_cast_is_exact_for_every_code(dtype, target):
    q = torch.arange(256, dtype=torch.uint8).view(dtype)
    reference = q.float()
    finite = torch.isfinite(reference)  # the quantizer saturates: NaN and infinity are never stored
    w, factor = formats.fp8_to(q, target)
    assert w.dtype == target
    got = w.float() * factor
    assert torch.equal(got[finite], reference[finite])
    assert finite.sum() == (254 if dtype == formats.E4M3 else 248)


@pytest.mark.parametrize("dtype", FP8)
def test_scale_puts_the_largest_weight_on_the_format_maximum(dtype):
    w = torch.randn(300, 40) * 0.02
    w[7, 3] = -0.5
    q, scale = formats.quantize(w, dtype)
    assert q.dtype == dtype and scale.dtype == torch.float32 and scale.shape == ()
    assert float(scale) == pytest.approx(0.5 / torch.finfo(dtype).max, rel=1e-6)
    assert float(q[7, 3].float()) == -torch.finfo(dtype).max
    error = float(((q.float() * scale - w).norm() / w.norm()))
    assert error < (0.035 if dtype == formats.E4M3 else 0.07)
    assert error > 0.005  # it is a lossy format


def test_scaled_e4m3_beats_unscaled_on_small_weights():
    w = torch.randn(256, 256) * 0.005  # mostly below e4m3's smallest normal (2**-6)
    q, scale = formats.quantize(w, formats.E4M3)
    scaled = float((q.float() * scale - w).norm() / w.norm())
    unscaled = float((w.to(formats.E4M3).float() - w).norm() / w.norm())
    assert scaled < 0.04 < unscaled


def test_zeros_and_non_finite_values():
    q, scale = formats.quantize(torch.zeros(4, 4), formats.E4M3)
    assert float(scale) == 1.0 and not q.float().any()
    bad = torch.ones(3, 3)
    bad[1, 1] = float("nan")
    with pytest.raises(CheckpointError, match="w.pt: tensor x holds NaN"):
        formats.quantize(bad, formats.E4M3, "w.pt: tensor x")
    bad[1, 1] = float("inf")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        formats.quantize(bad, formats.E4M3)


def test_slab_wise_conversion_matches_whole_tensor(monkeypatch):
    w = torch.randn(64, 33) * 0.1
    whole = formats.quantize(w, formats.E4M3)
    monkeypatch.setattr(formats, "ROWS_PER_CHUNK_BYTES", 4 * 33 * 5)  # 5 rows per slab
    assert len(formats.row_chunks(64, 33)) == 13
    sliced = formats.quantize(w, formats.E4M3)
    assert torch.equal(whole[0].view(torch.uint8), sliced[0].view(torch.uint8)) and torch.equal(whole[1], sliced[1])
    back = formats.dequantize(sliced[0], sliced[1], torch.bfloat16)
    assert back.dtype == torch.bfloat16
    assert torch.equal(back, (sliced[0].float() * sliced[1]).to(torch.bfloat16))


def write_tensor(path, t: torch.Tensor, code: str) -> None:
    header = json.dumps({"x": {"dtype": code, "shape": list(t.shape), "data_offsets": [0, t.numel() * t.element_size()]}})
    header += " " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + t.contiguous().view(torch.uint8).numpy().tobytes())


@pytest.mark.parametrize("code,dtype", [("F32", torch.float32), ("BF16", torch.bfloat16)])
@pytest.mark.parametrize("slab_rows", [8, 64])  # two passes over the file in 7 slabs, or one read
@pytest.mark.parametrize("arena", [False, True])
def test_conversion_from_a_file_in_slabs_is_the_in_memory_conversion(tmp_path, monkeypatch, code, dtype, slab_rows,
                                                                     arena):
    w = (torch.randn(50, 7, 3) * 0.03).to(dtype)
    write_tensor(tmp_path / "w.safetensors", w, code)
    entry = read_entries(tmp_path / "w.safetensors")["x"]
    expected_q, expected_scale = formats.quantize(w, formats.E5M2)
    monkeypatch.setattr(formats, "ROWS_PER_CHUNK_BYTES", 4 * 21 * slab_rows)
    shared = Arena() if arena else None
    for _ in range(2):  # an arena is reused from tensor to tensor
        q, scale = convert_entry(entry, formats.E5M2, "x", shared)
        assert torch.equal(q.view(torch.uint8), expected_q.view(torch.uint8)) and torch.equal(scale, expected_scale)


def test_conversion_refuses_integer_tensors(tmp_path):
    write_tensor(tmp_path / "w.safetensors", torch.arange(6, dtype=torch.int32).view(2, 3), "I32")
    with pytest.raises(CheckpointError, match="lm.safetensors: x is stored as int32"):
        convert_entry(read_entries(tmp_path / "w.safetensors")["x"], formats.E4M3, "lm.safetensors: x")


def test_comfy_quant_marker():
    marker = formats.comfy_quant_tensor(formats.E5M2)
    assert marker.dtype == torch.uint8
    assert json.loads(bytes(marker.tolist())) == {"format": "float8_e5m2"}
    formats.read_comfy_quant(marker, "a.comfy_quant", formats.E5M2)
    with pytest.raises(CheckpointError, match="a.comfy_quant says float8_e5m2 but the weight is stored as float8_e4m3fn"):
        formats.read_comfy_quant(marker, "a.comfy_quant", formats.E4M3)
    nvfp4 = torch.tensor(list(b'{"format": "nvfp4"}'), dtype=torch.uint8)
    with pytest.raises(CheckpointError, match="'nvfp4'; the pack loads only float8_e4m3fn, float8_e5m2"):
        formats.read_comfy_quant(nvfp4, "a.comfy_quant", formats.E4M3)
