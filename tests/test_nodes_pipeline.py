"""The node chain on the tiny checkpoints: tags + lyrics -> codes -> AUDIO, checked against the
official implementation's numbers, with ComfyUI's model loading, progress and Cancel."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from conftest import real_host
from heartmula_node_env import CODEC_NAME, LM_NAME, comfy_home  # noqa: F401  (fixture)
from lm_fixtures import expected, expected_inputs

SAMPLES_PER_FRAME = 48000 / 12.5


@pytest.fixture
def chain(pack, comfy_home):
    from heartmula_pack.nodes import conditioning, decoding, loaders
    from heartmula_pack.nodes import sampler as sampling

    lm, = comfy_home.run(loaders.LoadHeartMuLaLM, model=LM_NAME, dtype="auto", download_if_missing=False)
    codec, = comfy_home.run(loaders.LoadHeartCodec, codec=CODEC_NAME, dtype="fp32", download_if_missing=False)
    inputs = expected_inputs()
    prompt, = comfy_home.run(conditioning.HeartMuLaLyricsTags, lm=lm, tags=inputs["tags"], lyrics=inputs["lyrics"])

    class Chain:
        pass

    c = Chain()
    c.home, c.lm, c.codec, c.prompt = comfy_home, lm, codec, prompt

    def sample(**overrides):
        settings = dict(lm=lm, prompt=prompt, seed=3, seconds=1.6, temperature=1.0, top_k=8, cfg_scale=1.5,
                        batch_size=1)
        settings.update(overrides)
        return comfy_home.run(sampling.HeartMuLaSampler, **settings)[0]

    def decode(codes, **overrides):
        settings = dict(codec=codec, codes=codes, seed=0, steps=2, guidance=1.25)
        settings.update(overrides)
        return comfy_home.run(decoding.HeartCodecDecode, **settings)[0]

    c.sample, c.decode = sample, decode
    return c


def test_text_to_song_gives_comfyui_audio_of_the_song_length(chain):
    codes = chain.sample(batch_size=2)
    assert codes.codes.shape == (2, 8, 20) and codes.codes.dtype == torch.int64 and codes.codes.device.type == "cpu"
    assert "piano,happy,wedding" in codes.info["tags"] and codes.info["seed"] == "3"
    audio = chain.decode(codes)
    assert set(audio) == {"waveform", "sample_rate"}
    wave = audio["waveform"]
    assert audio["sample_rate"] == 48000
    assert wave.dtype == torch.float32 and wave.device.type == "cpu" and wave.is_contiguous()
    assert wave.shape == (2, 2, int(codes.lengths.max()) * SAMPLES_PER_FRAME)
    assert torch.isfinite(wave).all() and wave.abs().amax(dim=(1, 2)).min() > 0


def test_models_are_requested_from_comfyui_lm_then_codec_with_memory_estimates(chain):
    import comfy.model_management as mm

    audio = chain.decode(chain.sample())
    assert audio["waveform"].shape[0] == 1
    requested = [(patchers, memory) for patchers, memory in chain.home.loads]
    assert [p for p, _ in requested] == [[chain.lm.patcher], [chain.codec.patcher]]
    assert all(memory > 0 for _, memory in requested)
    if not real_host():  # the stand-in models one GPU: loading the codec evicts the LM
        assert mm.evicted == [chain.lm.patcher] or mm.evicted[-1] is chain.lm.patcher


def test_sampler_reproduces_the_official_greedy_tokens(chain):
    codes = chain.sample(top_k=1, cfg_scale=1.5, seconds=1.6)
    reference = expected()["frames_greedy_cfg"].long()
    assert int(codes.lengths[0]) == 20
    assert torch.equal(codes.codes[0], reference[:, :20])


def test_load_codes_then_decode_reproduces_the_official_waveform(chain, pack):
    from heartmula_pack.heartmula_core.codes import save_codes
    from heartmula_pack.nodes import codes_io

    reference = expected()
    codes = reference["codec_input_codes"].long()[None]
    save_codes(chain.home.input / "greedy.safetensors", codes, torch.tensor([codes.shape[-1]]))
    assert "greedy.safetensors" in codes_io.LoadHeartMuLaCodes.INPUT_TYPES()["required"]["file"][1]["options"]
    loaded, = chain.home.run(codes_io.LoadHeartMuLaCodes, file="greedy.safetensors")
    wave = chain.decode(loaded, seed=0, steps=10, guidance=1.25)["waveform"][0]
    ref = reference["codec_waveform_seed0"]
    assert wave.shape == ref.shape
    assert ((wave - ref).norm() / ref.norm()).item() < 1e-4


def assert_bar_reaches(progress, end: int, total: int) -> None:
    """What the user sees of a (possibly throttled) progress bar: it starts at the first step, only
    moves forward, and its last update is ``end`` of ``total``."""
    assert progress, "the node never reported progress"
    assert progress[0][0] == 1, progress
    values = [v for v, _ in progress]
    assert values == sorted(values), progress
    assert progress[-1] == (end, total), progress


def test_progress_bar_reaches_the_end_of_sampling_and_decoding(chain):
    codes = chain.sample()
    assert int(codes.lengths.max()) == 20
    assert_bar_reaches(chain.home.progress, 20, 20)
    assert {total for _, total in chain.home.progress} == {20}
    chain.home.progress.clear()
    chain.decode(codes, steps=3)
    assert_bar_reaches(chain.home.progress, 3, 3)  # one window of 3 steps


def test_progress_bar_is_full_when_the_song_ends_before_its_longest_length(chain):
    import dataclasses

    greedy_maxima = expected()["frames_greedy_cfg"].long()[:, :20].amax(dim=0)
    eos = int(greedy_maxima[1:].max())  # a token id the greedy song draws before frame 20
    lm = dataclasses.replace(chain.lm, gen_config=dataclasses.replace(chain.lm.gen_config, audio_eos_id=eos))
    # With that id as the end of audio, the ids between the codebook and it are masked (lm/vocab.py),
    # so where the greedy song ends is read from the codes; it must end well before the limit.
    codes = chain.sample(lm=lm, top_k=1)
    ends_at = int(codes.lengths[0])
    assert 1 <= ends_at < 19
    # the bar ends full at the frames run (the song's frames plus the one that sampled the end)
    assert_bar_reaches(chain.home.progress, ends_at + 1, ends_at + 1)


def test_same_seed_same_song_other_seed_other_song(chain):
    a, b, c = chain.sample(seed=11), chain.sample(seed=11), chain.sample(seed=12)
    assert torch.equal(a.codes, b.codes) and not torch.equal(a.codes, c.codes)
    wa, wb, wc = (chain.decode(a, seed=s)["waveform"] for s in (5, 5, 6))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@contextmanager
def cancel_after_check(pack, n: int):
    """Press Cancel (as the UI's button would, while a step runs) just after the node's n-th Cancel
    check; yields the list of checks made, so a test sees how far the node went after the press."""
    import comfy.model_management as mm

    memory = pack.nodes.memory
    real_check = memory.check_cancel
    checks = []

    def check():
        checks.append(len(checks) + 1)
        real_check()
        if len(checks) == n:
            mm.interrupt_current_processing(True)

    memory.check_cancel = check
    try:
        yield checks
    finally:
        memory.check_cancel = real_check


def test_cancel_mid_sampling_stops_within_a_frame_and_a_clean_rerun_gives_identical_codes(chain, pack):
    import comfy.model_management as mm

    clean = chain.sample(seed=21)
    chain.home.progress.clear()
    # one check before the prompt pass, then one before each frame
    with cancel_after_check(pack, 5) as checks, pytest.raises(mm.InterruptProcessingException) as err:
        chain.sample(seed=21)
    assert type(err.value) is mm.InterruptProcessingException  # never wrapped or swallowed
    assert len(checks) in (5, 6), checks  # inside frame 4 (a comfy.ops layer's check) or before frame 5
    assert max(v for v, _ in chain.home.progress) <= 5, chain.home.progress
    rerun = chain.sample(seed=21)
    assert torch.equal(rerun.codes, clean.codes) and torch.equal(rerun.lengths, clean.lengths)


def test_cancel_mid_decoding_stops_within_a_step_and_the_codec_stays_usable(chain, pack):
    import comfy.model_management as mm

    codes = chain.sample()
    clean = chain.decode(codes, steps=3)["waveform"]
    # one check before decoding, then one after each Euler step
    with cancel_after_check(pack, 2) as checks, pytest.raises(mm.InterruptProcessingException) as err:
        chain.decode(codes, steps=3)
    assert type(err.value) is mm.InterruptProcessingException
    assert len(checks) in (2, 3), checks  # inside step 2 or at its end
    assert torch.equal(chain.decode(codes, steps=3)["waveform"], clean)


def test_prompt_and_length_errors_name_the_input_and_the_fix(chain, pack):
    from heartmula_pack.heartmula_core.errors import PromptError
    from heartmula_pack.nodes import conditioning

    with pytest.raises(PromptError, match="(?i)tags"):
        chain.home.run(conditioning.HeartMuLaLyricsTags, lm=chain.lm, tags="  ", lyrics="[Verse]\nla la")
    with pytest.raises(PromptError, match="(?i)lyrics"):
        chain.home.run(conditioning.HeartMuLaLyricsTags, lm=chain.lm, tags="piano", lyrics="")
    chain.home.loads.clear()
    with pytest.raises(PromptError, match="fewer seconds"):
        chain.sample(seconds=600.0)  # the tiny model's context holds 2048 positions (163 s)
    assert chain.home.loads == []  # refused before asking ComfyUI for memory


def test_tags_helper_writes_the_models_format(pack, comfy_home):
    from heartmula_pack.nodes import conditioning

    node = conditioning.HeartMuLaTags
    required = node.INPUT_TYPES()["required"]
    assert list(required) == ["genre", "instruments", "mood", "tempo", "style", "occasion", "vocal", "extra"]
    assert required["genre"][1]["default"] == "none" and "pop" in required["genre"][1]["options"]
    choice = {name: "none" for name in list(required)[:-1]}
    choice.update(genre="pop", instruments="acoustic guitar", vocal="female voice")
    tags, = comfy_home.run(node, extra=" Synthesizer , romantic,,POP,  dreamy   pads ", **choice)
    assert tags == "pop,acoustic guitar,female voice,synthesizer,romantic,dreamy pads"
    empty, = comfy_home.run(node, extra="", **{k: "none" for k in choice})
    assert empty == ""


def test_partial_loading_is_asked_for_only_when_comfyui_can_do_it_safely(chain, pack):
    import comfy.ops
    from torch import nn

    from heartmula_pack.nodes import memory

    ops = comfy.ops.disable_weight_init
    castable = nn.Sequential(ops.Linear(4, 4), ops.Embedding(3, 4))
    assert memory.partial_load_safe(castable)
    assert not memory.partial_load_safe(nn.Sequential(ops.Linear(4, 4), nn.LayerNorm(4)))  # cannot cast per call
    parent_param = nn.Sequential(ops.Linear(4, 4))
    parent_param.extra = nn.Parameter(torch.zeros(2))
    assert not memory.partial_load_safe(parent_param)  # ModelPatcher never moves a non-leaf's own weights
    assert memory.partial_load_safe(chain.lm.patcher.model), "the LM casts what ComfyUI may leave behind"
    chain.decode(chain.sample())
    expected_full = [False, not memory.partial_load_safe(chain.codec.model)]
    assert chain.home.full_loads == expected_full


def test_lm_runs_when_a_partial_load_leaves_its_own_weights_on_another_device(chain, pack):
    """What ComfyUI's partial load does to modules it cannot move: their weights stay behind. The
    LM's RMSNorm scales and audio_head move themselves to the activations' device and dtype per call,
    shown here with a different dtype standing in for a different device."""
    import copy

    from heartmula_pack.heartmula_core.lm.generation import generate

    model = copy.deepcopy(chain.lm.patcher.model)
    reference = generate(model, chain.prompt, max_frames=6, eos_id=chain.lm.gen_config.audio_eos_id, top_k=1)
    for module in model.modules():
        if getattr(module, "casts_own_weights", False):
            for name, param in module.named_parameters(recurse=False):
                setattr(module, name, torch.nn.Parameter(param.detach().double(), requires_grad=False))
    moved = generate(model, chain.prompt, max_frames=6, eos_id=chain.lm.gen_config.audio_eos_id, top_k=1)
    assert torch.equal(moved.codes, reference.codes)


def test_text_boxes_never_read_files_on_the_server(chain, pack, tmp_path):
    from heartmula_pack.heartmula_core.errors import PromptError
    from heartmula_pack.nodes import conditioning

    secret = tmp_path / "secret.txt"
    secret.write_text("[Verse]\nprivate words")
    with pytest.raises(PromptError, match="path of a file"):
        chain.home.run(conditioning.HeartMuLaLyricsTags, lm=chain.lm, tags="piano", lyrics=str(secret))


def test_lm_memory_estimate_grows_with_length_batch_and_guidance(pack):
    from heartmula_pack.heartmula_core.lm.config import HeartMuLaConfig
    from heartmula_pack.heartmula_core.lm.budget import estimate_generation_bytes
    from heartmula_node_env import TINY_CKPT

    config = HeartMuLaConfig.from_file(TINY_CKPT / LM_NAME / "config.json")
    base = estimate_generation_bytes(config, 100, 200, 1, 1.5, torch.float32)
    assert estimate_generation_bytes(config, 100, 700, 1, 1.5, torch.float32) > base  # next 256-position cache bucket
    assert estimate_generation_bytes(config, 100, 200, 2, 1.5, torch.float32) > base
    assert estimate_generation_bytes(config, 100, 200, 1, 1.0, torch.float32) < base
    assert estimate_generation_bytes(config, 100, 200, 1, 1.5, torch.bfloat16) < base
