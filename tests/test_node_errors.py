"""What a user sees when a pack node fails: ComfyUI's error toast names the exception's type, then
its message. The pack's errors must read like ComfyUI's own (`ValueError: <message>`), so the toast
itself says what is wrong and what to do; and bad settings fail before any model is loaded.

With COMFYUI_DIR set, the type name comes from the real host's execution.full_type_name."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import real_host
from heartmula_node_env import CODEC_NAME, LM_NAME, comfy_home  # noqa: F401  (fixture)

MAX_SEED = 2**64 - 1


def type_name(cls: type) -> str:
    """How ComfyUI names an exception type in the execution_error message."""
    if real_host():
        import execution

        return execution.full_type_name(cls)
    # the stand-in: the rule of ComfyUI 0.3.64 and 0.28 (execution.full_type_name)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def toast(exc: BaseException) -> str:
    return f"{type_name(type(exc))}: {exc}"


@pytest.fixture
def host_nodes(pack, comfy_home):
    """The node classes as ComfyUI receives them from the extension, by node id."""
    return {node.GET_SCHEMA().node_id: node for node in pack.node_classes()}


def raised(node, **inputs) -> BaseException:
    from heartmula_pack.heartmula_core.errors import HeartMuLaError

    with pytest.raises(HeartMuLaError) as err:
        node.execute(**inputs)
    return err.value


def test_every_pack_node_raises_host_readable_errors(host_nodes):
    assert len(host_nodes) >= 9
    for node_id, node in host_nodes.items():
        assert getattr(node.__dict__["execute"].__func__, "_heartmula_host_errors", False), node_id


def test_missing_checkpoint_toast_says_what_to_do(host_nodes):
    from heartmula_pack.heartmula_core.errors import CheckpointError, HeartMuLaError

    err = raised(host_nodes["HeartMuLaLMLoader"], model="HeartMuLa-RL-oss-3B-20260123", dtype="auto",
                 download_if_missing=False)
    assert isinstance(err, CheckpointError) and isinstance(err, HeartMuLaError)  # still catchable as before
    text = toast(err)
    assert text.startswith("CheckpointError: ")
    assert "'HeartMuLa-RL-oss-3B-20260123' is not downloaded yet" in text[:100]
    assert "download if missing" in text and "hf download HeartMuLa/HeartMuLa-RL-oss-3B-20260123" in text
    assert "heartmula_core" not in text and "heartmula_pack" not in text


@pytest.fixture
def chain(host_nodes, comfy_home):
    lm, = host_nodes["HeartMuLaLMLoader"].execute(model=LM_NAME, dtype="auto", download_if_missing=False).args
    codec, = host_nodes["HeartMuLaCodecLoader"].execute(codec=CODEC_NAME, dtype="fp32",
                                                        download_if_missing=False).args
    prompt, = host_nodes["HeartMuLaLyricsTags"].execute(lm=lm, tags="piano", lyrics="[verse]\nla la\n").args
    comfy_home.loads.clear()
    return host_nodes, lm, codec, prompt


def sampler_inputs(lm, prompt, **overrides):
    return {**dict(lm=lm, prompt=prompt, seed=3, seconds=0.8, temperature=1.0, top_k=8, cfg_scale=1.5,
                   batch_size=2), **overrides}


@pytest.mark.parametrize("setting,value,expect", [
    ("cfg_scale", math.nan, "cfg_scale must be a finite number"),
    ("cfg_scale", math.inf, "cfg_scale must be a finite number"),
    ("temperature", math.nan, "temperature must be a finite number"),
    ("temperature", math.inf, "temperature must be a finite number"),
    ("seconds", math.nan, "seconds must be a positive, finite number"),
    ("seconds", math.inf, "seconds must be a positive, finite number"),
    ("seed", MAX_SEED + 1, "seed must be between 0 and 18446744073709551615"),
])
def test_sampler_refuses_non_finite_settings_before_loading(chain, comfy_home, setting, value, expect):
    nodes, lm, _, prompt = chain
    err = raised(nodes["HeartMuLaSampler"], **sampler_inputs(lm, prompt, **{setting: value}))
    assert toast(err).startswith(f"SettingsError: {expect}")
    assert comfy_home.loads == [], "nothing was loaded for a setting that cannot work"


@pytest.mark.parametrize("setting,value,expect", [
    ("steps", 0, "steps must be between 1 and 1000, got 0"),
    ("guidance", math.nan, "guidance must be a finite number"),
    ("guidance", math.inf, "guidance must be a finite number"),
    ("seed", MAX_SEED + 1, "seed must be between 0 and 18446744073709551615"),
])
def test_decode_refuses_bad_settings_before_loading(chain, comfy_home, setting, value, expect):
    nodes, lm, codec, prompt = chain
    codes, = nodes["HeartMuLaSampler"].execute(**sampler_inputs(lm, prompt)).args
    comfy_home.loads.clear()
    inputs = {**dict(codec=codec, codes=codes, seed=0, steps=1, guidance=1.25), setting: value}
    assert toast(raised(nodes["HeartMuLaCodecDecode"], **inputs)).startswith(f"SettingsError: {expect}")
    assert comfy_home.loads == []


def test_largest_seed_works_and_is_reproducible_in_sampler_and_decode(chain):
    nodes, lm, codec, prompt = chain
    sample = nodes["HeartMuLaSampler"]
    a, = sample.execute(**sampler_inputs(lm, prompt, seed=MAX_SEED)).args
    b, = sample.execute(**sampler_inputs(lm, prompt, seed=MAX_SEED)).args
    assert torch.equal(a.codes, b.codes) and a.info["seed"] == str(MAX_SEED)
    decode = nodes["HeartMuLaCodecDecode"]
    first, = decode.execute(codec=codec, codes=a, seed=MAX_SEED, steps=1, guidance=1.25).args
    second, = decode.execute(codec=codec, codes=a, seed=MAX_SEED, steps=1, guidance=1.25).args
    assert torch.equal(first["waveform"], second["waveform"])


def test_bool_codes_are_not_tokens(chain, comfy_home):
    from heartmula_pack.nodes.types import HeartMuLaCodes

    nodes, _, codec, _ = chain
    codes = HeartMuLaCodes(torch.ones(1, 8, 5, dtype=torch.bool), torch.tensor([5]))
    err = raised(nodes["HeartMuLaCodecDecode"], codec=codec, codes=codes, seed=0, steps=1, guidance=1.25)
    assert toast(err).startswith("CodesError: the codes input: codes must be an integer tensor") and "torch.bool" in str(err)
    assert comfy_home.loads == []
    err = raised(nodes["HeartMuLaSaveCodes"], codes=codes, filename_prefix="heartmula/codes")
    assert toast(err).startswith("CodesError: ")
    assert not any(comfy_home.output.rglob("*.safetensors"))


def test_lyrics_that_are_not_valid_text(chain):
    nodes, lm, _, _ = chain
    err = raised(nodes["HeartMuLaLyricsTags"], lm=lm, tags="piano", lyrics="la \udcff la")
    assert toast(err).startswith("PromptError: The lyrics are not valid text (character 4 is not UTF-8)")


@pytest.mark.parametrize("name,expect", [("bad\x00name", "contains a NUL character"),
                                         ("x" * 5000, "is too long"),
                                         ("sub/" + "y" * 300, "is too long")])
def test_file_names_with_nul_or_too_long_give_the_packs_error(host_nodes, comfy_home, name, expect):
    from heartmula_pack.nodes.types import HeartMuLaCodes

    codes = HeartMuLaCodes(torch.zeros(1, 8, 4, dtype=torch.long), torch.tensor([4]))
    assert toast(raised(host_nodes["HeartMuLaSaveCodes"], codes=codes, filename_prefix=name)).startswith("CodesError: ")
    load = host_nodes["HeartMuLaLoadCodes"]
    for file in (name, name + " [output]"):
        err = raised(load, file=file)
        assert toast(err).startswith("CodesError: ") and expect in str(err)
        assert load.fingerprint_inputs(file=file) == ""  # no ValueError / OSError from the fingerprint either
    assert not any(comfy_home.output.rglob("*.safetensors"))
