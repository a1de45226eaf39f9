"""The LM reproduces the official implementation's numbers on the tiny reference checkpoint."""

import pytest
import torch

from heartmula_core.lm.load import load_lm
from heartmula_core.lm.frame_sampler import FrameSampler
from heartmula_core.lm.generation import generate
from heartmula_core.lm.prompt import build_prompt
from lm_fixtures import TINY_LM, expected, expected_inputs


@pytest.fixture(scope="module")
def lm():
    return load_lm(TINY_LM)


@pytest.fixture(scope="module")
def prompt(lm):
    inputs = expected_inputs()
    return build_prompt(lm.tokenizer, lm.gen_config, inputs["tags"], inputs["lyrics"])


def test_prompt_tokens_and_mask_match_reference(prompt):
    ref = expected()
    assert torch.equal(prompt.tokens, ref["prompt_tokens_nocfg"][0])
    assert torch.equal(prompt.mask, ref["prompt_mask_nocfg"][0])
    # CFG doubles the rows with identical prompts
    assert torch.equal(ref["prompt_tokens_cfg"][0], ref["prompt_tokens_cfg"][1])
    assert prompt.muq_index == expected_inputs()["muq_idx_nocfg"][0]


def test_first_frame_codebook0_logits_match(lm, prompt):
    ref = expected()
    with torch.inference_mode():
        sampler = FrameSampler(lm.model, songs=1, cfg_scale=1.5, top_k=1, temperature=1.0,
                               max_len=prompt.length + 2, generator=torch.Generator(), device="cpu",
                               dtype=torch.float32)
        logits = lm.model.codebook0_head(sampler.prompt_hidden(prompt))
    torch.testing.assert_close(logits, ref["first_frame_c0_logits_cond_uncond"], atol=1e-4, rtol=0)
    guided = logits[1] + (logits[0] - logits[1]) * 1.5
    torch.testing.assert_close(guided[None], ref["first_frame_c0_logits_guided"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("cfg,name", [(1.5, "cfg"), (1.0, "nocfg")])
def test_greedy_frames_identical(lm, prompt, cfg, name):
    out = generate(lm.model, prompt, max_frames=21, eos_id=lm.gen_config.audio_eos_id, top_k=1, cfg_scale=cfg)
    assert torch.equal(out.codes[0], expected()[f"frames_greedy_{name}"].long())


@pytest.mark.parametrize("cfg,name", [(1.5, "cfg"), (1.0, "nocfg")])
def test_sampled_frames_identical_with_reference_seeding(lm, prompt, cfg, name):
    s = expected_inputs()["sampled"]
    out = generate(lm.model, prompt, max_frames=s["frames"] + 1, eos_id=lm.gen_config.audio_eos_id,
                   top_k=s["topk"], temperature=s["temperature"], cfg_scale=cfg,
                   generator=torch.Generator().manual_seed(s["seed"]))
    assert torch.equal(out.codes[0], expected()[f"frames_sampled_{name}"].long())
