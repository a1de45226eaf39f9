"""`sample --lora` against PEFT's own merge (issue 22's acceptance): a LoRA made by PEFT over a Hugging
Face-named twin of the tiny LM (lora_alpha != r), given as its folder or as the .safetensors file with
its config beside it, gives the greedy codes of the checkpoint PEFT's ``merge_and_unload`` wrote, at
strength 1 and 0.5; strength 0 gives the base codes; two LoRAs give both merged. And every bad LoRA
is one ``error:`` line naming the file, before any weight loads."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from heartmula_core.__main__ import main
from heartmula_core.codes import load_codes
from lm_fixtures import TINY_CKPT, TINY_LM
from lora_fixtures import edit_config, hand_lora, peft_lora, peft_merged


def greedy(tmp_path: Path, model_dir: Path, *loras: str, name: str = "codes") -> torch.Tensor:
    out = tmp_path / f"{name}.safetensors"
    args = ["sample", "--model-dir", str(model_dir), "--tags", "piano,happy", "--lyrics", "[verse]\nla la la",
            "--seconds", "2", "--top-k", "1", "--device", "cpu", "--codes-out", str(out)]
    for lora in loras:
        args += ["--lora", lora]
    assert main(args) == 0
    return load_codes(out)[0]


@pytest.fixture(scope="module")
def peft_loras(tmp_path_factory):
    base = tmp_path_factory.mktemp("peft")
    return (peft_lora(base / "style", seed=1, r=4, alpha=12),
            peft_lora(base / "voice", seed=2, r=2, alpha=3, targets=["q_proj", "v_proj", "down_proj"]))


@pytest.fixture(scope="module")
def base_codes(tmp_path_factory):
    return greedy(tmp_path_factory.mktemp("base"), TINY_LM)


@pytest.mark.parametrize("strength", [1.0, 0.5])
@pytest.mark.parametrize("given", ["folder", "file"])
def test_a_peft_lora_gives_the_codes_of_peft_merge_and_unload(tmp_path, peft_loras, base_codes, strength, given):
    style, _ = peft_loras
    assert json.loads((style / "adapter_config.json").read_text())["lora_alpha"] != 4  # alpha != r matters
    reference = greedy(tmp_path, peft_merged(tmp_path / "merged", [(style, strength)]), name="reference")
    lora = str(style if given == "folder" else style / "adapter_model.safetensors")
    codes = greedy(tmp_path, TINY_LM, f"{lora}:{strength:g}" if strength != 1 else lora)
    assert not torch.equal(reference, base_codes)  # the LoRA changes the song, so agreeing means something
    assert torch.equal(codes, reference)


def test_strength_0_gives_the_base_codes_and_two_loras_are_both_merged(tmp_path, peft_loras, base_codes):
    style, voice = peft_loras
    assert torch.equal(greedy(tmp_path, TINY_LM, f"{style}:0"), base_codes)
    both = greedy(tmp_path, peft_merged(tmp_path / "merged", [(style, 1.0), (voice, 1.0)]), name="reference")
    style_only = greedy(tmp_path, peft_merged(tmp_path / "style_only", [(style, 1.0)]), name="style_only")
    assert not torch.equal(both, style_only)
    assert torch.equal(greedy(tmp_path, TINY_LM, str(style), str(voice)), both)


def test_rslora_and_alpha_pattern_scale_as_peft_does(tmp_path, base_codes):
    lora = peft_lora(tmp_path / "rs", seed=3, r=4, alpha=6, use_rslora=True, alpha_pattern={"o_proj": 20})
    reference = greedy(tmp_path, peft_merged(tmp_path / "merged", [(lora, 1.0)]), name="reference")
    assert not torch.equal(reference, base_codes)
    assert torch.equal(greedy(tmp_path, TINY_LM, str(lora)), reference)


def test_modules_to_save_replace_the_module_as_peft_does(tmp_path, base_codes):
    lora = peft_lora(tmp_path / "heads", seed=4, modules_to_save=["codebook0_head"])
    with torch.no_grad():  # a trained copy of the head differs from the base one
        from safetensors.torch import load_file
        tensors = load_file(str(lora / "adapter_model.safetensors"))
        tensors["base_model.model.codebook0_head.weight"] += torch.randn_like(tensors["base_model.model.codebook0_head.weight"])
        save_file(tensors, str(lora / "adapter_model.safetensors"))
    reference = greedy(tmp_path, peft_merged(tmp_path / "merged", [(lora, 1.0)]), name="reference")
    assert torch.equal(greedy(tmp_path, TINY_LM, str(lora)), reference)


@pytest.mark.parametrize("layout,names", [("kohya", "checkpoint"), ("kohya", "hf"), ("comfy", "checkpoint"),
                                          ("comfy", "hf"), ("ab", "checkpoint"), ("ab", "hf")])
def test_kohya_and_comfyui_layouts_over_either_name_set_are_the_same_lora(tmp_path, layout, names, base_codes):
    reference = greedy(tmp_path, TINY_LM, str(hand_lora(tmp_path / "ref.safetensors")), name="ref")
    assert not torch.equal(reference, base_codes)
    lora = hand_lora(tmp_path / "x.safetensors", layout, names)
    assert torch.equal(greedy(tmp_path, TINY_LM, str(lora)), reference)


def test_a_pt_file_loads_through_the_weights_only_loader_and_a_pickle_never_runs(tmp_path, base_codes):
    from safetensors.torch import load_file

    tensors = load_file(str(hand_lora(tmp_path / "ref.safetensors")))
    torch.save(tensors, tmp_path / "lora.pt")
    assert torch.equal(greedy(tmp_path, TINY_LM, str(tmp_path / "lora.pt")),
                       greedy(tmp_path, TINY_LM, str(tmp_path / "ref.safetensors"), name="ref"))

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    torch.save({"x.lora_up.weight": Payload()}, tmp_path / "evil.pt", _use_new_zipfile_serialization=True)
    assert main(sample_args(tmp_path, str(tmp_path / "evil.pt"))) == 2
    assert not (tmp_path / "pwned").exists()
    import pickle

    (tmp_path / "evil4.pt").write_bytes(pickle.dumps({"x": Payload()}, protocol=4))  # torch warns, then refuses
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert main(sample_args(tmp_path, str(tmp_path / "evil4.pt"))) == 2
    assert not shown, [str(w.message) for w in shown]  # a warning prints lines of its own above the error
    assert not (tmp_path / "pwned").exists()


def sample_args(tmp_path: Path, lora: str, model_dir: Path = TINY_LM) -> list[str]:
    return ["sample", "--model-dir", str(model_dir), "--tags", "piano", "--lyrics", "la", "--seconds", "0.4",
            "--device", "cpu", "--codes-out", str(tmp_path / "out.safetensors"), "--lora", lora]


def another_model(tmp_path: Path) -> Path:
    """A LoRA of an image model (kohya keys of a UNet)."""
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(320, 4),
               "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)}, str(tmp_path / "sdxl.safetensors"))
    return tmp_path / "sdxl.safetensors"


def another_size(tmp_path: Path) -> Path:
    """A LoRA of a wider HeartMuLa (3B-shaped factors for the tiny LM's layers, and layers it lacks)."""
    tensors = {}
    for layer in range(4):
        prefix = f"base_model.model.backbone.layers.{layer}.self_attn.q_proj"
        tensors[f"{prefix}.lora_A.weight"], tensors[f"{prefix}.lora_B.weight"] = torch.zeros(8, 3072), torch.zeros(3072, 8)
    save_file(tensors, str(tmp_path / "big.safetensors"))
    return tmp_path / "big.safetensors"


def dora(tmp_path: Path) -> Path:
    return peft_lora(tmp_path / "dora", seed=5, use_dora=True)


def renamed_text(tmp_path: Path) -> Path:
    (tmp_path / "notes.safetensors").write_text("this is a text file, renamed\n")
    return tmp_path / "notes.safetensors"


@pytest.mark.parametrize("make,expect", [
    (another_model, r"3 of its 3 keys name no layer of this LM \(lora_unet_down_blocks_0"),
    (another_size, r"4 of its 8 keys name no layer.*backbone\.layers\.2.*2 layers have another shape "
                   r"\(backbone\.layers\.0\.attn\.q_proj \(LoRA \[3072, 8\] @ \[8, 3072\], layer \[64, 64\]\).*another "
                   r"HeartMuLa size"),
    (dora, r"use_dora is true\. DoRA"),
    (renamed_text, r"is not a readable safetensors file"),
])
def test_a_bad_lora_is_one_error_line_naming_the_file_before_any_weight_loads(tmp_path, capsys, monkeypatch, make,
                                                                               expect):
    import heartmula_core.song.models as models

    lora = make(tmp_path)
    monkeypatch.setattr(models, "load_lm", lambda *a, **k: pytest.fail("the LM loaded before the LoRA was checked"))
    assert main(sample_args(tmp_path, str(lora))) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert str(lora) in lines[0] and __import__("re").search(expect, lines[0]), lines[0]
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("how", ["huge factors", "huge alpha in the config", "huge strength on fp8"])
def test_a_lora_that_overflows_the_weights_is_one_error_line_and_writes_nothing(tmp_path, capsys, how):
    """(It merged to infinite weights and sampled a song of garbage, exit 0.)"""
    from safetensors.torch import load_file

    folder = tmp_path / "peft"
    lora = hand_lora(folder / "adapter_model.safetensors", alpha=None if "alpha" in how else 6.0)
    scale = {"huge factors": 1e30, "huge alpha in the config": 1.0, "huge strength on fp8": 1e19}[how]
    save_file({k: v * scale for k, v in load_file(str(lora)).items()}, str(lora))
    if "alpha" in how:
        (folder / "adapter_config.json").write_text('{"lora_alpha": 1e308}')
    model_dir = TINY_LM
    if "fp8" in how:
        model_dir = tmp_path / "fp8"
        assert main(["quantize", "--model-dir", str(TINY_LM), "--out", str(model_dir)]) == 0
        capsys.readouterr()
    assert main(sample_args(tmp_path, f"{folder}:{100 if 'strength' in how else 1}", model_dir)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: LoRA {lora} makes backbone.layers."), lines
    assert "beyond what float32 holds" in lines[0] and "Lower the strength, or use another LoRA." in lines[0]
    assert not (tmp_path / "out.safetensors").exists()


def test_a_dora_without_its_config_is_still_refused(tmp_path, capsys):
    folder = dora(tmp_path)
    (folder / "adapter_config.json").unlink()
    assert main(sample_args(tmp_path, str(folder))) == 2
    assert "is a DoRA" in capsys.readouterr().err


def test_modules_to_save_the_lm_lacks_is_an_error(tmp_path, capsys):
    folder = peft_lora(tmp_path / "lm_head", seed=6)
    edit_config(folder, modules_to_save=["lm_head", "embed_tokens"])
    assert main(sample_args(tmp_path, str(folder))) == 2
    err = capsys.readouterr().err
    assert "modules_to_save names lm_head, embed_tokens, which HeartMuLa does not have" in err
    assert str(folder / "adapter_config.json") in err


def test_generate_takes_lora_too(tmp_path):
    out = tmp_path / "song.wav"
    lora = hand_lora(tmp_path / "l.safetensors")
    assert main(["generate", "--model-dir", str(TINY_CKPT), "--tags", "piano,happy", "--lyrics", "[verse]\nla la la",
                 "--seconds", "0.4",
                 "--steps", "1", "--device", "cpu", "--top-k", "1", "--out", str(out), "--lora", f"{lora}:0.7",
                 "--codes-out", str(tmp_path / "codes.safetensors")]) == 0
    assert out.is_file()
    assert torch.equal(load_codes(tmp_path / "codes.safetensors")[0][:, :, :5],
                       greedy(tmp_path, TINY_LM, f"{lora}:0.7")[:, :, :5])


@pytest.mark.parametrize("weight_dtype", ["default", "fp8_e4m3fn"])
def test_a_lora_whose_sum_overflows_float32_is_one_error_and_no_song(tmp_path, capsys, weight_dtype):
    """Every value finite (so the file passes its checks), but alpha 3e38 makes the update infinite:
    refused while the LM loads, naming the LoRA and the layer, instead of a song of NaN logits."""
    lora = hand_lora(tmp_path / "huge.safetensors", alpha=3e38)
    assert main(sample_args(tmp_path, str(lora)) + ["--weight-dtype", weight_dtype]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: LoRA {lora} makes backbone.layers."), lines
    assert "beyond what float32 holds" in lines[0]
    assert not (tmp_path / "out.safetensors").exists()
