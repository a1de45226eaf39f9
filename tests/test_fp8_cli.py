"""``--weight-dtype`` on the command line and ``quantize``: an fp8 run gives the core's fp8 codes and
audio, a quantized folder gives the codes of converting the float32 one, and the memory checks count
the weights as held (one byte per fp8 weight)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fp8_fixtures import greedy
from heartmula_core.__main__ import main
from heartmula_core.codec import decode, load_codec
from heartmula_core.codes import load_codes
from heartmula_core.errors import HeartMuLaError
from heartmula_core.lm.load import load_lm
from heartmula_core.settings import seeded_generator
from heartmula_core.quant.storage import WeightStorage

CKPT = Path(__file__).parent / "data" / "tiny" / "ckpt"
TINY_LM, TINY_CODEC = CKPT / "HeartMuLa-oss-3B", CKPT / "HeartCodec-oss"
E4M3 = torch.float8_e4m3fn


def sample(tmp_path, model_dir, out: str, *extra: str) -> list[str]:
    return ["sample", "--model-dir", str(model_dir), "--tags", "piano,happy", "--lyrics", "[verse]\nla la la\n",
            "--seconds", "1.28", "--top-k", "1", "--device", "cpu", "--codes-out", str(tmp_path / out), *extra]


def held(model) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def test_fp8_sampling_and_a_quantized_folder_give_the_cores_greedy_codes(tmp_path, capsys):
    assert main(sample(tmp_path, TINY_LM, "converted.safetensors", "--weight-dtype", "fp8_e4m3fn")) == 0
    assert main(["quantize", "--model-dir", str(TINY_LM), "--out", str(tmp_path / "fp8")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(sample(tmp_path, tmp_path / "fp8", "from_file.safetensors", "--weight-dtype", "fp8_e4m3fn")) == 0
    converted, _ = load_codes(tmp_path / "converted.safetensors")
    from_file, _ = load_codes(tmp_path / "from_file.safetensors")
    assert torch.equal(converted, from_file)
    core = greedy(load_lm(TINY_LM, storage=WeightStorage(E4M3)), frames=16)
    assert torch.equal(converted, core[:, :, :converted.shape[-1]])
    assert (tmp_path / "fp8" / "model.safetensors").stat().st_size < 0.27 * (TINY_LM / "model.safetensors").stat().st_size


def test_generate_with_fp8_weights_decodes_with_the_fp8_codec(tmp_path):
    out = tmp_path / "song.wav"
    assert main(["generate", "--model-dir", str(CKPT), "--tags", "piano", "--lyrics", "la la", "--seconds", "0.8",
                 "--seed", "3", "--device", "cpu", "--steps", "2", "--weight-dtype", "fp8_e5m2", "--out", str(out),
                 "--codes-out", str(tmp_path / "codes.safetensors"),
                 "--waveform-out", str(tmp_path / "raw.safetensors")]) == 0
    codes, lengths = load_codes(tmp_path / "codes.safetensors")
    codec = load_codec(TINY_CODEC, storage=WeightStorage(torch.float8_e5m2))
    expected = decode(codec, codes, lengths, steps=2, guidance=1.25, generator=seeded_generator(3, "cpu"))
    assert torch.equal(load_file(tmp_path / "raw.safetensors")["waveform"], expected)


@pytest.fixture
def asked(monkeypatch):
    """The bytes each memory check asks for; the check then stops the command (no model loads)."""
    import heartmula_core.song.models as checks  # where the command line checks RAM/VRAM before loading

    needed = []

    def record(total, device, what, fix):
        needed.append(total)
        raise HeartMuLaError(f"stopped after the memory check of {what}")

    monkeypatch.setattr(checks, "check_memory", record)
    return needed


def test_memory_checks_count_the_weights_as_held(tmp_path, asked, capsys):
    for weights in ("default", "fp8_e4m3fn"):
        assert main(sample(tmp_path, TINY_LM, "c.safetensors", "--weight-dtype", weights)) == 2
    assert asked[0] - asked[1] == held(load_lm(TINY_LM).model) - held(load_lm(TINY_LM, storage=WeightStorage(E4M3)).model)
    codes = tmp_path / "codes.safetensors"
    from heartmula_core.codes import save_codes

    save_codes(codes, torch.zeros(1, 8, 10, dtype=torch.long), torch.tensor([10]))
    for weights in ("default", "fp8_e4m3fn"):
        assert main(["decode", "--model-dir", str(TINY_CODEC), "--codes", str(codes), "--device", "cpu",
                     "--out", str(tmp_path / "a.wav"), "--weight-dtype", weights]) == 2
    assert asked[2] - asked[3] == held(load_codec(TINY_CODEC)) - held(load_codec(TINY_CODEC, storage=WeightStorage(E4M3)))
    assert "stopped after the memory check" in capsys.readouterr().err


def test_weight_dtype_choices_and_quantize_refusals(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(sample(tmp_path, TINY_LM, "c.safetensors", "--weight-dtype", "int8"))
    assert "invalid choice: 'int8'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quantize", "--model-dir", str(TINY_LM), "--out", str(tmp_path / "o"), "--weight-dtype", "default"])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    assert main(["quantize", "--model-dir", str(TINY_CODEC), "--out", str(tmp_path / "busy")]) == 2
    assert "busy exists and is not an empty folder" in capsys.readouterr().err
    assert main(["quantize", "--model-dir", str(TINY_CODEC), "--out", str(tmp_path / "codec")]) == 0
    assert "codec with" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "codec").iterdir()) == ["config.json", "model.safetensors"]
