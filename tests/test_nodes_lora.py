"""Load HeartMuLa LoRA on the stand-in and on a real ComfyUI (COMFYUI_DIR): the same codes as
``sample --lora`` with the same LoRA and strength (classic and DynamicVRAM's weightless layers), the
input LM and other branches untouched, chaining, strength changes without reloading the LM, fp8
weights within the fp8 tolerance, and one clear error for a bad LoRA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import real_host
from heartmula_core.__main__ import main
from heartmula_core.codes import load_codes
from heartmula_node_env import LM_NAME, comfy_home  # noqa: F401  (fixture)
from lm_fixtures import TINY_LM
from lora_fixtures import hand_lora, peft_lora
from test_weightless_layers import switch_to_weightless

TAGS, LYRICS = "piano,happy", "[verse]\nla la la"


@pytest.fixture
def loras(comfy_home, monkeypatch, tmp_path_factory):
    """ComfyUI's loras folder in the test home, holding a PEFT folder (style/), a kohya file and a
    second PEFT LoRA (voice/)."""
    import folder_paths

    folder = comfy_home.base / "models" / "loras"
    peft_lora(folder / "style", seed=1, r=4, alpha=12)
    peft_lora(folder / "voice", seed=2, r=2, alpha=3, targets=["q_proj", "v_proj", "down_proj"])
    hand_lora(folder / "kohya.safetensors")
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "loras",
                        ([str(folder)], set(folder_paths.supported_pt_extensions)))
    if hasattr(folder_paths, "filename_list_cache"):
        monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    return folder


@pytest.fixture
def nodes(pack):
    from heartmula_pack.nodes import conditioning, loaders, lora
    from heartmula_pack.nodes import sampler as sampling

    return loaders, lora, conditioning, sampling


def load_lm(home, nodes, weight_dtype="default"):
    return home.run(nodes[0].LoadHeartMuLaLM, model=LM_NAME, dtype="fp32", download_if_missing=False,
                    weight_dtype=weight_dtype)[0]


def with_lora(home, nodes, lm, name, strength=1.0):
    return home.run(nodes[1].LoadHeartMuLaLoRA, lm=lm, lora_name=name, strength=strength)[0]


def node_codes(home, nodes, lm) -> torch.Tensor:
    _, _, conditioning, sampling = nodes
    prompt, = home.run(conditioning.HeartMuLaLyricsTags, lm=lm, tags=TAGS, lyrics=LYRICS)
    codes, = home.run(sampling.HeartMuLaSampler, lm=lm, prompt=prompt, seed=0, seconds=2.0, temperature=1.0,
                      top_k=1, cfg_scale=1.5, batch_size=1)
    return codes.codes


def cli_codes(tmp_path: Path, *loras: str) -> torch.Tensor:
    out = tmp_path / f"cli{len(list(tmp_path.iterdir()))}.safetensors"
    args = ["sample", "--model-dir", str(TINY_LM), "--tags", TAGS, "--lyrics", LYRICS, "--seconds", "2",
            "--top-k", "1", "--device", "cpu", "--codes-out", str(out)]
    for lora in loras:
        args += ["--lora", lora]
    assert main(args) == 0
    return load_codes(out)[0]


def test_the_node_lists_comfyuis_loras_folder_and_takes_a_strength(nodes, loras):
    spec = nodes[1].LoadHeartMuLaLoRA.INPUT_TYPES()["required"]
    assert list(spec) == ["lm", "lora_name", "strength"]
    kind, options = spec["lora_name"][0], spec["lora_name"][1]
    listed = options["options"] if kind == "COMBO" else kind  # 0.28: ("COMBO", {options}); 0.3.64: ([...], {})
    assert {"style/adapter_model.safetensors", "voice/adapter_model.safetensors", "kohya.safetensors"} <= set(listed)
    options = spec["strength"][1]
    assert options["default"] == 1.0 and options["min"] == -100.0 and options["max"] == 100.0


@pytest.mark.parametrize("strength", [1.0, 0.5, -0.7])
def test_the_node_gives_the_codes_of_the_command_line(comfy_home, nodes, loras, tmp_path, strength):
    lm = load_lm(comfy_home, nodes)
    patched = with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors", strength)
    expected = cli_codes(tmp_path, f"{loras / 'style'}:{strength}")
    assert not torch.equal(expected, cli_codes(tmp_path))
    assert torch.equal(node_codes(comfy_home, nodes, patched), expected)


def test_a_full_load_holds_the_command_lines_merged_weights_as_plain_tensors(comfy_home, nodes, loras):
    """What the sampler's CUDA graph captures: after ComfyUI loads the patched LM fully, every weight
    is an ordinary tensor on the load device (no per-call patch function), bit for bit the command
    line's merge."""
    from heartmula_core.lm.capture import weights_on
    from heartmula_core.lm.load import load_lm as core_load
    from heartmula_core.lora import load_adapter, merge_adapters

    lm = load_lm(comfy_home, nodes)
    patched = with_lora(comfy_home, nodes, with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors", 0.5),
                        "kohya.safetensors", -1.0)
    node_codes(comfy_home, nodes, patched)
    model = patched.patcher.model
    assert weights_on(model, patched.patcher.load_device)
    assert not any(getattr(m, "weight_function", None) for m in model.modules())
    assert all(type(p.data) is torch.Tensor for p in model.parameters())
    reference = core_load(TINY_LM)
    merge_adapters(reference.model, [(load_adapter(loras / "style", reference.config), 0.5),
                                     (load_adapter(loras / "kohya.safetensors", reference.config), -1.0)])
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in reference.model.state_dict().items())


def test_other_branches_keep_the_base_weights_and_strength_changes_never_reload(comfy_home, nodes, loras, tmp_path,
                                                                                monkeypatch):
    from heartmula_pack.nodes import loaders

    lm = load_lm(comfy_home, nodes)
    base_weights = {k: v.clone() for k, v in lm.patcher.model.state_dict().items()}
    monkeypatch.setattr(loaders, "load_lm", lambda *a, **k: pytest.fail("the LM was loaded from disk again"))
    strong = with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors", 1.0)
    weak = with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors", 0.5)
    assert strong.patcher.model is lm.patcher.model is weak.patcher.model  # one model in memory
    runs = [node_codes(comfy_home, nodes, m) for m in (strong, lm, weak, lm, strong)]
    assert torch.equal(runs[1], cli_codes(tmp_path)) and torch.equal(runs[1], runs[3])
    assert torch.equal(runs[0], runs[4]) and not torch.equal(runs[0], runs[2])
    assert torch.equal(runs[2], cli_codes(tmp_path, f"{loras / 'style'}:0.5"))
    node_codes(comfy_home, nodes, lm)  # the base LM runs with the weights it was loaded with
    current = lm.patcher.model.state_dict()
    assert all(torch.equal(current[k], v) for k, v in base_weights.items())
    assert not lm.patcher.patches


def test_loras_stack_and_strength_0_is_the_input_lm(comfy_home, nodes, loras, tmp_path):
    lm = load_lm(comfy_home, nodes)
    assert with_lora(comfy_home, nodes, lm, "kohya.safetensors", 0.0) is lm
    both = with_lora(comfy_home, nodes, with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors"),
                     "voice/adapter_model.safetensors", 0.8)
    assert torch.equal(node_codes(comfy_home, nodes, both),
                       cli_codes(tmp_path, str(loras / "style"), f"{loras / 'voice'}:0.8"))


def test_dynamic_vrams_weightless_layers_give_the_same_codes(comfy_home, nodes, loras, tmp_path, monkeypatch):
    switch_to_weightless(monkeypatch)
    lm = load_lm(comfy_home, nodes)
    assert lm.patcher.model.backbone.layers[0].attn.q_proj.weight is not None
    patched = with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors", 0.5)
    assert torch.equal(node_codes(comfy_home, nodes, patched), cli_codes(tmp_path, f"{loras / 'style'}:0.5"))


def first_logits(model, config, lm_socket) -> torch.Tensor:
    from types import SimpleNamespace

    from benchmarks.bench_fp8 import first_logits as bench_first_logits
    from heartmula_core.lm.prompt import build_prompt

    prompt = build_prompt(lm_socket.tokenizer, lm_socket.gen_config, TAGS, LYRICS)
    return bench_first_logits(SimpleNamespace(model=model, config=config), prompt, torch.float32)


def test_fp8_weights_take_a_lora_within_the_fp8_tolerance(comfy_home, nodes, loras):
    """fp8 moves the LM's logits (README: 8 % on the medium random LM; the 64-wide tiny LM amplifies
    it ~10x, benchmarks/RESULTS.md). A LoRA patched into fp8 weights is rounded to fp8 once more, so
    README allows it up to a second rounding's worth (sqrt 2 = 1.41x fp8 alone); measured here
    0.74-0.92x on the stand-in, 0.3.64 and 0.28."""
    from heartmula_core.lm.load import load_lm as core_load
    from heartmula_core.lora import load_adapter, merge_adapters

    lm = load_lm(comfy_home, nodes, "fp8_e4m3fn")
    patched = with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors", 1.0)
    logits = {}
    for name, model in (("fp8", lm), ("fp8 + LoRA", patched)):
        node_codes(comfy_home, nodes, model)  # ComfyUI loads this clone: its weights are the model's now
        logits[name] = first_logits(model.patcher.model, lm.config, lm)
    for name, strength in (("float", 0.0), ("float + LoRA", 1.0)):
        reference = core_load(TINY_LM)
        merge_adapters(reference.model, [(load_adapter(loras / "style", reference.config), strength)])
        logits[name] = first_logits(reference.model, reference.config, lm)
    rel = lambda a, b: float((logits[a] - logits[b]).norm() / logits[b].norm())  # noqa: E731
    assert rel("float", "float + LoRA") > 0.5  # the LoRA moves the logits far more than fp8 does
    fp8_alone, with_lora_error = rel("fp8", "float"), rel("fp8 + LoRA", "float + LoRA")
    print(f"fp8 logits error: {fp8_alone:.3f} alone, {with_lora_error:.3f} with the LoRA")
    assert 1e-4 < with_lora_error < 1.5 * fp8_alone, (with_lora_error, fp8_alone)


def text_renamed(folder: Path) -> str:
    (folder / "text.safetensors").write_text("not weights\n")
    return "text.safetensors"


def dora(folder: Path) -> str:
    peft_lora(folder / "dora", seed=3, use_dora=True)
    return "dora/adapter_model.safetensors"


def wider(folder: Path) -> str:
    from safetensors.torch import save_file

    save_file({"base_model.model.backbone.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 3072),
               "base_model.model.backbone.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(3072, 4)},
              str(folder / "big.safetensors"))
    return "big.safetensors"


def image_model(folder: Path) -> str:
    from safetensors.torch import save_file

    save_file({"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
               "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight": torch.zeros(320, 4)},
              str(folder / "sdxl.safetensors"))
    return "sdxl.safetensors"


@pytest.mark.parametrize("make,expect", [
    (text_renamed, "is not a readable safetensors file"), (dora, "use_dora is true"),
    (wider, "another HeartMuLa size"), (image_model, "2 of its 2 keys name no layer of this LM"),
])
def test_a_bad_lora_is_one_clear_error_naming_the_file(comfy_home, nodes, loras, make, expect):
    from heartmula_pack.heartmula_core.errors import LoraError

    name = make(loras)
    lm = load_lm(comfy_home, nodes)
    with pytest.raises(LoraError) as caught:
        with_lora(comfy_home, nodes, lm, name, 1.0)
    assert expect in str(caught.value) and str(loras) in str(caught.value)
    assert type(caught.value).__module__ == "builtins"  # the front end's toast shows the message, not a path


def test_a_name_outside_the_loras_folder_is_refused(comfy_home, nodes, loras):
    from heartmula_pack.heartmula_core.errors import LoraError

    lm = load_lm(comfy_home, nodes)
    with pytest.raises(LoraError, match=r"'\.\./HeartMuLa/HeartMuLa-oss-3B/model.safetensors' is not in ComfyUI's "
                                        r"loras folder"):
        with_lora(comfy_home, nodes, lm, "../HeartMuLa/HeartMuLa-oss-3B/model.safetensors", 1.0)


@pytest.mark.skipif(not real_host(), reason="the stand-in loads models whole; partial loading is ComfyUI's own")
def test_a_partial_low_vram_load_patches_per_call_with_the_same_codes(comfy_home, nodes, loras, tmp_path, monkeypatch):
    """ComfyUI leaves layers that do not fit on the offload device and patches their weights per call
    (LowVramPatch): forced here on the CPU by loading with a tiny budget."""
    import comfy.model_management as mm

    lm = load_lm(comfy_home, nodes)
    patched = with_lora(comfy_home, nodes, lm, "style/adapter_model.safetensors", 0.5)
    real_load = mm.load_models_gpu

    def low_vram(models, memory_required=0, **kwargs):
        real_load(models, memory_required=memory_required, **kwargs)
        for patcher in models:
            patcher.detach()
            patcher.load(patcher.load_device, lowvram_model_memory=1, full_load=False)

    monkeypatch.setattr(mm, "load_models_gpu", low_vram)
    codes = node_codes(comfy_home, nodes, patched)
    layer = patched.patcher.model.backbone.layers[0].attn.q_proj
    assert getattr(layer, "weight_function", []), "the layer was not patched per call"
    assert torch.equal(codes, cli_codes(tmp_path, f"{loras / 'style'}:0.5"))
