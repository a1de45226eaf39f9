"""Loading checks each weight while it reads it (``TensorSource.load``'s ``inspect``, a slab at a
time): the tensor must come out exactly as stored, and a bad value anywhere in it, in any slab, must
still be found."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartmula_core.errors import CheckpointError
from heartmula_core.quant import formats
from heartmula_core.quant.finite import Largest, check_float, check_fp8, largest_bits
from heartmula_core.weights import READ_SLAB_BYTES, TensorSource


def source_of(tmp_path, tensors: dict) -> TensorSource:
    path = tmp_path / "w.safetensors"
    save_file(tensors, str(path))
    return TensorSource.from_files([path])


def many_slabs(dtype: torch.dtype) -> torch.Tensor:
    """A tensor of 2.5 slabs: the last slab is a partial one."""
    count = int(2.5 * READ_SLAB_BYTES) // torch.empty((), dtype=dtype).element_size()
    g = torch.Generator().manual_seed(0)
    return (torch.randn(count // 64, 64, generator=g) * 0.02).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, formats.E4M3, formats.E5M2])
def test_a_tensor_read_a_slab_at_a_time_is_the_stored_tensor(tmp_path, dtype):
    src = source_of(tmp_path, {"w": many_slabs(dtype)})
    slabs = []
    got = src.load("w", inspect=lambda s: slabs.append(s.clone()))
    stored = load_file(str(tmp_path / "w.safetensors"))["w"]
    assert torch.equal(got.view(torch.uint8), stored.view(torch.uint8))
    assert [s.numel() * s.element_size() for s in slabs] == [READ_SLAB_BYTES, READ_SLAB_BYTES, READ_SLAB_BYTES // 2]
    assert all(s.dtype == dtype for s in slabs)
    assert torch.equal(torch.cat(slabs).view(torch.uint8), stored.view(-1).view(torch.uint8))
    seen = Largest()
    src.load("w", inspect=seen)
    assert seen.bits == largest_bits(stored) and seen.dtype == dtype


@pytest.mark.parametrize("where", [0, -1])
@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_a_bad_value_in_any_slab_is_found(tmp_path, where, bad):
    w = many_slabs(torch.float32)
    w.view(-1)[where] = bad
    src = source_of(tmp_path, {"w": w})
    seen = Largest()
    with pytest.raises(CheckpointError, match="tensor w holds NaN or infinite values: the file is corrupt"):
        check_float(src.load("w", torch.bfloat16, inspect=seen), "tensor w", seen)


@pytest.mark.parametrize("code", [0x7F, 0xFF])
def test_an_fp8_nan_code_in_the_last_slab_is_found(tmp_path, code):
    q = many_slabs(formats.E4M3)
    q.view(-1).view(torch.uint8)[-1] = code
    src = source_of(tmp_path, {"q": q})
    seen = Largest()
    with pytest.raises(CheckpointError, match="tensor q holds fp8 codes that stand for NaN"):
        check_fp8(src.load("q", inspect=seen), None, "tensor q", torch.float32, seen)


def test_narrowing_is_judged_from_the_largest_value_read(tmp_path):
    """65504 is float16's largest; 65519 still rounds to it, 65520 rounds to infinity."""
    for value, fits in ((65504.0, True), (65519.0, True), (65520.0, False), (-1e6, False)):
        w = many_slabs(torch.float32)
        w.view(-1)[-5] = value
        src = source_of(tmp_path, {"w": w})
        seen = Largest()
        loaded = src.load("w", torch.float16, inspect=seen)
        assert bool(torch.isfinite(loaded).all()) == fits
        if fits:
            check_float(loaded, "tensor w", seen)
        else:
            with pytest.raises(CheckpointError, match=r"once converted from float32 to float16: its largest value "
                                                      r"\(.*\) is beyond what float16 holds"):
                check_float(loaded, "tensor w", seen)


def test_a_tensor_no_slab_was_shown_for_is_measured_whole():
    """A source that makes its tensors (the codec's weight-norm folding, a benchmark's random
    weights) may not call ``inspect``: the check then measures the tensor itself."""
    t = torch.ones(10)
    t[7] = float("inf")
    with pytest.raises(CheckpointError, match="holds NaN or infinite values"):
        check_float(t, "tensor t", Largest())
