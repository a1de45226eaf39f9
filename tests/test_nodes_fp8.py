"""The loader nodes' ``weight_dtype``: fp8 weights in the host's own layers (real ComfyUI) or the core's
(stand-in), the same codes as the core's fp8 loading, ComfyUI told the held size, and errors before
any download. Runs on the stand-in and on a real ComfyUI (COMFYUI_DIR)."""

from __future__ import annotations

import inspect

import pytest
import torch

from conftest import real_host
from fp8_fixtures import relative
from heartmula_node_env import CODEC_NAME, LM_NAME, TINY_CKPT, comfy_home  # noqa: F401  (fixture)

TAGS, LYRICS = "piano,happy", "[verse]\nla la la\n"
E4M3 = torch.float8_e4m3fn


@pytest.fixture
def nodes(pack):
    from heartmula_pack.nodes import conditioning, decoding, loaders
    from heartmula_pack.nodes import sampler as sampling

    return loaders, conditioning, sampling, decoding


def load(comfy_home, loaders, weight_dtype, lm_dtype="fp32", codec_dtype="fp32"):
    lm, = comfy_home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype=lm_dtype, download_if_missing=False,
                         weight_dtype=weight_dtype)
    codec, = comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype=codec_dtype, download_if_missing=False,
                            weight_dtype=weight_dtype)
    return lm, codec


def greedy_codes(comfy_home, nodes, lm, frames_seconds: float = 1.6):
    _, conditioning, sampling, _ = nodes
    prompt, = comfy_home.run(conditioning.HeartMuLaLyricsTags, lm=lm, tags=TAGS, lyrics=LYRICS)
    codes, = comfy_home.run(sampling.HeartMuLaSampler, lm=lm, prompt=prompt, seed=0, seconds=frames_seconds,
                            temperature=1.0, top_k=1, cfg_scale=1.5, batch_size=1)
    return prompt, codes


def fp8_keys(model) -> set[str]:
    return {k for k, v in model.state_dict().items() if v.dtype in (torch.float8_e4m3fn, torch.float8_e5m2)}


def test_weight_dtype_is_the_first_optional_input_of_both_loaders(nodes):
    loaders = nodes[0]
    for node in (loaders.LoadHeartMuLaLM, loaders.LoadHeartCodec):
        types = node.INPUT_TYPES()
        # saved workflows keep their order (widgets: required, then optional; download_source came
        # after it); API prompts written before weight_dtype existed still run
        assert list(types["required"])[-1] == "download_if_missing"
        assert list(types["optional"]) == ["weight_dtype", "download_source"]
        spec = types["optional"]["weight_dtype"][1]
        assert spec["options"] == ["default", "fp8_e4m3fn", "fp8_e5m2"] and spec["default"] == "default"
        assert "fp8" in spec["tooltip"] and "byte" in spec["tooltip"]


def test_expert_loader_inputs_are_advanced_where_the_host_has_them(pack, nodes):
    """As ComfyUI's own UNETLoader shows its weight_dtype (0.28+: folded under the node's advanced
    inputs), so do the LM and codec loaders, and every loader its download_source; the first-run
    switch download_if_missing, which the examples' notes point to, stays in view. On 0.3.64, whose
    inputs take no ``advanced``, the schema is as before."""
    from comfy_api.latest import io
    from heartmula_pack.nodes import scoring, transcription
    from heartmula_pack.nodes.base import advanced

    host_has_it = "advanced" in inspect.signature(io.Combo.Input.__init__).parameters
    assert advanced() == ({"advanced": True} if host_has_it else {})
    expert = {nodes[0].LoadHeartMuLaLM: ["weight_dtype", "download_source"],
              nodes[0].LoadHeartCodec: ["weight_dtype", "download_source"],
              transcription.LoadHeartTranscriptor: ["download_source"], scoring.LoadCLAP: ["download_source"]}
    for node, names in expert.items():
        types = node.INPUT_TYPES()
        assert list(types["optional"]) == names
        for name in names:
            assert types["optional"][name][1].get("advanced") is (True if host_has_it else None), (node, name)
        assert not any(spec[1].get("advanced") for spec in types["required"].values())


@pytest.mark.parametrize("fp8_name,fp8", [("fp8_e4m3fn", torch.float8_e4m3fn), ("fp8_e5m2", torch.float8_e5m2)])
def test_fp8_lm_loader_samples_as_the_core_and_tells_comfyui_the_held_size(pack, nodes, comfy_home, fp8_name, fp8):
    from heartmula_pack.heartmula_core.lm.budget import estimate_generation_bytes
    from heartmula_pack.heartmula_core.lm.generation import generate
    from heartmula_pack.heartmula_core.lm.load import load_lm, weight_plan
    from heartmula_pack.heartmula_core.quant.storage import WeightStorage, held_bytes
    from heartmula_pack.nodes.fp8_ops import weight_storage

    loaders = nodes[0]
    lm, _ = load(comfy_home, loaders, fp8_name)
    wide, _ = load(comfy_home, loaders, "default")
    assert "backbone.layers.0.attn.q_proj.weight" in fp8_keys(lm.model)
    assert all(v.dtype == fp8 for k, v in lm.model.state_dict().items() if k in fp8_keys(lm.model))
    held = sum(t.numel() * t.element_size() for t in lm.model.state_dict().values())
    layout = weight_storage(fp8, torch.float32).layout  # 0.3.64's layers hold the embeddings wide
    shapes, plan = weight_plan(lm.config, fp8, layout)
    assert lm.patcher.model_size() == held == held_bytes(shapes, plan, lambda _key: torch.float32)
    assert held < 0.6 * wide.patcher.model_size()
    assert lm.dtype == torch.float32  # the compute dtype: activations, and what the memory estimate counts in

    prompt, codes = greedy_codes(comfy_home, nodes, lm)
    core = load_lm(TINY_CKPT / LM_NAME, storage=WeightStorage(fp8))
    reference = generate(core.model, prompt, max_frames=20, eos_id=core.gen_config.audio_eos_id, top_k=1,
                         cfg_scale=1.5, seed=0, device="cpu", dtype=torch.float32)
    assert torch.equal(codes.codes, reference.codes)
    (patchers, memory_required), = comfy_home.loads
    assert patchers == [lm.patcher]
    assert memory_required == estimate_generation_bytes(lm.config, prompt.length, 20, 1, 1.5, torch.float32)


@pytest.mark.parametrize("codec_dtype", ["fp32", "bf16"])
def test_fp8_codec_loader_decodes_close_to_the_float_codec(pack, nodes, comfy_home, codec_dtype):
    loaders, _, _, decoding = nodes
    _, codec = load(comfy_home, loaders, "fp8_e4m3fn", codec_dtype=codec_dtype)
    _, wide = load(comfy_home, loaders, "default", codec_dtype=codec_dtype)
    keys = fp8_keys(codec.model)
    assert keys and all(k.startswith("flow_matching.estimator.") for k in keys)
    assert codec.model.flow_matching.estimator.dtype == wide.model.flow_matching.estimator.dtype
    assert codec.patcher.model_size() < wide.patcher.model_size()
    from heartmula_pack.nodes.types import HeartMuLaCodes

    codes = HeartMuLaCodes(torch.randint(0, 64, (1, 8, 20), generator=torch.Generator().manual_seed(0)),
                           torch.tensor([20]))
    audio = [comfy_home.run(decoding.HeartCodecDecode, codec=c, codes=codes, seed=0, steps=3, guidance=1.25)[0]
             for c in (codec, wide)]
    error = relative(audio[0]["waveform"], audio[1]["waveform"])
    assert 1e-5 < error < 0.1, error


def test_an_fp8_checkpoint_in_the_model_folder_loads_either_way(pack, nodes, comfy_home):
    """A folder written by ``quantize`` loads as fp8 (the same codes as converting the float32
    folder) and, with weight_dtype default, dequantized to the dtype."""
    from heartmula_pack.heartmula_core.cli.quantize import quantize

    loaders = nodes[0]
    quantize(TINY_CKPT / LM_NAME, comfy_home.models / "HeartMuLa-fp8", "fp8_e4m3fn")
    run = lambda name, weights: comfy_home.run(loaders.LoadHeartMuLaLM, model=name, dtype="fp32",  # noqa: E731
                                               download_if_missing=False, weight_dtype=weights)[0]
    from_file, converted = run("HeartMuLa-fp8", "fp8_e4m3fn"), run(LM_NAME, "fp8_e4m3fn")
    assert torch.equal(greedy_codes(comfy_home, nodes, from_file)[1].codes,
                       greedy_codes(comfy_home, nodes, converted)[1].codes)
    dequantized = run("HeartMuLa-fp8", "default")
    assert not fp8_keys(dequantized.model)
    assert dequantized.model.state_dict()["backbone.layers.0.mlp.w1.weight"].dtype == torch.float32


def test_a_bad_weight_dtype_is_refused_before_any_download(pack, nodes, comfy_home, monkeypatch):
    from heartmula_pack.heartmula_core.errors import SettingsError
    from heartmula_pack.nodes import model_folders

    loaders = nodes[0]
    monkeypatch.setattr(model_folders, "resolve", lambda *a, **k: pytest.fail("resolved before the check"))
    for node, folder in ((loaders.LoadHeartMuLaLM, {"model": "HeartMuLa-RL-oss-3B-20260123"}),
                         (loaders.LoadHeartCodec, {"codec": "HeartCodec-oss-20260123"})):
        with pytest.raises(SettingsError, match=r"weight_dtype must be one of default, fp8_e4m3fn, fp8_e5m2, "
                                                r"got 'fp8'"):
            comfy_home.run(node, **folder, dtype="fp32", download_if_missing=True, weight_dtype="fp8")


def test_fp8_layers_can_be_loaded_partially_on_a_real_host(pack, nodes, comfy_home):
    """ComfyUI's own fp8 layers cast per call, so a low-VRAM host may load the fp8 LM partially; the
    stand-in's fallback (the core's layers) is loaded whole."""
    from heartmula_pack.nodes import memory

    lm, codec = load(comfy_home, nodes[0], "fp8_e4m3fn")
    assert memory.partial_load_safe(lm.model) == real_host()
    assert memory.partial_load_safe(codec.model) == real_host()


def _corrupt(folder, code: int = 0x7F) -> str:
    """Put an fp8 code that stands for NaN into the first fp8 weight of a quantized folder; its key."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    key = sorted(k for k, v in tensors.items() if v.dtype == E4M3)[0]
    raw = tensors[key].view(torch.uint8).clone()
    raw.view(-1)[3] = code
    tensors[key] = raw.view(E4M3)
    save_file(tensors, str(folder / "model.safetensors"))
    return key


@pytest.mark.parametrize("weight_dtype", ["default", "fp8_e4m3fn", "fp8_e5m2"])
def test_fp8_checkpoints_with_nan_codes_are_refused_by_both_loaders(pack, nodes, comfy_home, weight_dtype):
    """A corrupt fp8 file is one error naming the tensor, whichever host layers hold the weights
    (ComfyUI's mixed_precision_ops on 0.28, scaled_fp8_ops on 0.3.64, the core's on the stand-in),
    not a model that writes silence (default) or reads NaN as 480 (fp8 on the CPU)."""
    from heartmula_pack.heartmula_core.cli.quantize import quantize
    from heartmula_pack.heartmula_core.errors import CheckpointError

    loaders = nodes[0]
    quantize(TINY_CKPT / LM_NAME, comfy_home.models / "HeartMuLa-nan", "fp8_e4m3fn")
    quantize(TINY_CKPT / CODEC_NAME, comfy_home.models / "HeartCodec-nan", "fp8_e4m3fn")
    lm_key, codec_key = _corrupt(comfy_home.models / "HeartMuLa-nan"), _corrupt(comfy_home.models / "HeartCodec-nan",
                                                                                0xFF)
    with pytest.raises(CheckpointError, match=f"tensor {lm_key} holds fp8 codes that stand for NaN or infinity"):
        comfy_home.run(loaders.LoadHeartMuLaLM, model="HeartMuLa-nan", dtype="fp32", download_if_missing=False,
                       weight_dtype=weight_dtype)
    with pytest.raises(CheckpointError, match=f"tensor {codec_key} holds fp8 codes that stand for NaN or infinity"):
        comfy_home.run(loaders.LoadHeartCodec, codec="HeartCodec-nan", dtype="fp32", download_if_missing=False,
                       weight_dtype=weight_dtype)
    load(comfy_home, loaders, weight_dtype)  # the sound folders still load
