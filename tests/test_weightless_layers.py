"""Loading into layers the host builds without weights, as ComfyUI does with DynamicVRAM on.

With ``comfy.memory_management.aimdo_enabled`` (0.33 and later, on every OS; 0.28 also needs
``comfy.model_management.WINDOWS``, flipped here only where the host needs it), ``comfy.ops`` builds
Linear with ``weight = bias = None`` and Embedding with a meta weight; they get tensors only through
``_load_from_state_dict``. The switches are flipped here on the CPU, on the stand-in (tests/host) and
on a real ComfyUI 0.28+ (``COMFYUI_DIR``); ComfyUI 0.3.64 has no such construction and skips.
Loading must give the same tensors, the same errors and, through the nodes, the same codes and audio
as the classic layers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import COMFYUI_DIR, host_version
from heartmula_core.lm.load import load_lm
from heartmula_core.codec import load_codec
from heartmula_core.errors import CheckpointError
from heartmula_core.quant.storage import WeightStorage
from heartmula_core.weights import assign_to_module
from heartmula_node_env import CODEC_NAME, LM_NAME, comfy_home  # noqa: F401  (fixture)
from lm_fixtures import TINY_CKPT, TINY_LM, expected_inputs
from test_lm_load_memory import big_checkpoint  # noqa: F401  (fixture: a 1.6 GB float32 LM folder)

TINY_CODEC = TINY_CKPT / CODEC_NAME


def switch_to_weightless(monkeypatch):
    """Switch the host's layers to DynamicVRAM's weightless construction; returns comfy.ops' namespace."""
    try:
        import comfy.memory_management as memory_management
    except ImportError:
        pytest.skip("this ComfyUI has no DynamicVRAM (comfy.memory_management arrived after 0.3.64)")
    import comfy.model_management as mm
    import comfy.ops

    monkeypatch.setattr(memory_management, "aimdo_enabled", True)
    probe = comfy.ops.disable_weight_init.Linear(3, 4)
    if probe.weight is not None:  # 0.28 builds weightless on Windows only; 0.33 and later on every OS
        assert host_version() < (0, 33), "ComfyUI 0.33+ builds weightless layers whenever DynamicVRAM is on"
        monkeypatch.setattr(mm, "WINDOWS", True, raising=False)
        probe = comfy.ops.disable_weight_init.Linear(3, 4)
    assert probe.weight is None and probe.bias is None, "the switches did not make weightless layers"
    assert comfy.ops.disable_weight_init.Embedding(5, 2).weight.is_meta
    return comfy.ops.disable_weight_init


@pytest.fixture
def weightless(monkeypatch):
    return switch_to_weightless(monkeypatch)


def same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and sa[key].device == sb[key].device, key
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lm_loads_into_weightless_layers_as_into_torch_layers(weightless, dtype):
    classic = load_lm(TINY_LM, dtype=dtype).model
    lazy = load_lm(TINY_LM, dtype=dtype, storage=WeightStorage(operations=weightless)).model
    same_tensors(classic, lazy)
    assert type(lazy.backbone.layers[0].attn.q_proj).__module__.startswith("comfy")
    assert not any(p.requires_grad for p in lazy.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_codec_loads_into_weightless_layers_as_into_torch_layers(weightless, dtype):
    same_tensors(load_codec(TINY_CODEC, dtype=dtype), load_codec(TINY_CODEC, dtype=dtype, storage=WeightStorage(operations=weightless)))


def broken_copy(tmp_path: Path, source: Path, edit) -> Path:
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def lm_damage(t):
    t.pop("backbone.layers.0.attn.q_proj.weight")  # a weightless Linear would make a placeholder for it
    t["backbone.layers.0.attn.extra.weight"] = torch.zeros(2)
    t["muq_linear.bias"] = torch.zeros(t["muq_linear.bias"].shape[0] + 1)  # weightless layers check no shape


def codec_damage(t):
    t.pop("flow_matching.cond_feature_emb.bias")
    t["flow_matching.estimator.proj_in.ffn_2.weight"] = torch.zeros(3, 3)


@pytest.mark.parametrize("kind", ["lm", "codec"])
def test_a_damaged_checkpoint_gets_the_same_single_error_with_weightless_layers(weightless, tmp_path, kind):
    if kind == "lm":
        folder = broken_copy(tmp_path, TINY_LM, lm_damage)
        shutil.copy(TINY_CKPT / "tokenizer.json", tmp_path)
        shutil.copy(TINY_CKPT / "gen_config.json", tmp_path)

        def load(ops):
            return load_lm(folder, storage=WeightStorage(operations=ops))
    else:
        folder = broken_copy(tmp_path, TINY_CODEC, codec_damage)

        def load(ops):
            return load_codec(folder, storage=WeightStorage(operations=ops))
    with pytest.raises(CheckpointError) as classic:
        load(None)
    with pytest.raises(CheckpointError) as lazy:
        load(weightless)
    assert str(lazy.value) == str(classic.value)
    message = str(classic.value)
    assert "wrong shape" in message and "missing" in message
    assert ("1 unexpected" in message) == (kind == "lm")


def test_a_layer_that_refuses_its_weights_is_named():
    class Stubborn(torch.nn.Linear):
        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            missing.append(prefix + "weight")

    with torch.device("meta"):
        layer = Stubborn(2, 3)
    with pytest.raises(CheckpointError, match=r"Stubborn layer head refused its weights.*head\.weight"):
        assign_to_module(layer, "head.", {"head.weight": torch.zeros(3, 2), "head.bias": torch.zeros(3)})


MEASURE_WEIGHTLESS = """
import resource, sys, torch
sys.path.insert(0, sys.argv[3])
import comfy.memory_management, comfy.ops
comfy.memory_management.aimdo_enabled = True
from heartmula_core.lm.load import load_lm
from heartmula_core.quant.storage import WeightStorage
torch.set_num_threads(1)
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[2]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lm = load_lm(sys.argv[1], dtype=dtype, storage=WeightStorage(operations=comfy.ops.disable_weight_init))
assert lm.model.backbone.layers[0].attn.q_proj.weight.dtype == dtype
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before * 1024, peak * 1024)
"""


@pytest.mark.skipif(COMFYUI_DIR is not None, reason="measured once, on the stand-in's weightless layers")
@pytest.mark.parametrize("dtype,limit", [("fp32", 1.3), ("bf16", 0.8)])
def test_weightless_load_keeps_one_copy_in_memory(big_checkpoint, dtype, limit):  # noqa: F811
    folder, size = big_checkpoint
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", MEASURE_WEIGHTLESS, str(folder), dtype, str(repo / "tests" / "host")],
                         cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    before, peak = map(int, out.stdout.split())
    print(f"weightless {dtype}: file {size / 1e9:.2f} GB, load added {(peak - before) / 1e9:.2f} GB")
    assert peak - before < limit * size


def run_chain(pack, home):
    """Load both models through the nodes, sample a batch of two, decode: (codes, lengths, audio)."""
    from heartmula_pack.nodes import conditioning, decoding, loaders
    from heartmula_pack.nodes import sampler as sampling

    lm, = home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="auto", download_if_missing=False)
    codec, = home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=False)
    inputs = expected_inputs()
    prompt, = home.run(conditioning.HeartMuLaLyricsTags, lm=lm, tags=inputs["tags"], lyrics=inputs["lyrics"])
    codes, = home.run(sampling.HeartMuLaSampler, lm=lm, prompt=prompt, seed=5, seconds=1.6, temperature=1.0,
                      top_k=8, cfg_scale=1.5, batch_size=2)
    audio, = home.run(decoding.HeartCodecDecode, codec=codec, codes=codes, seed=1, steps=2, guidance=1.25)
    return codes.codes, codes.lengths, audio["waveform"], lm


def test_nodes_give_the_same_codes_and_audio_with_weightless_layers(pack, comfy_home, monkeypatch):
    classic_codes, classic_lengths, classic_audio, _ = run_chain(pack, comfy_home)
    switch_to_weightless(monkeypatch)
    codes, lengths, audio, lm = run_chain(pack, comfy_home)
    assert lm.patcher.model.backbone.layers[0].attn.q_proj.weight is not None
    assert torch.equal(codes, classic_codes) and torch.equal(lengths, classic_lengths)
    assert torch.equal(audio, classic_audio)
    assert audio.abs().max() > 0
