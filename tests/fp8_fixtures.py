"""Helpers for the fp8 tests: greedy runs of the tiny LM and relative errors."""

from __future__ import annotations

import torch


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def greedy(lm, frames: int = 16, dtype=torch.float32, **kw):
    """Greedy codes of the tiny LM on a fixed prompt (CFG on)."""
    from heartmula_core.lm.generation import generate
    from heartmula_core.lm.prompt import build_prompt

    prompt = build_prompt(lm.tokenizer, lm.gen_config, "piano,happy", "[verse]\nla la la\n")
    return generate(lm.model, prompt, max_frames=frames, eos_id=lm.gen_config.audio_eos_id, top_k=1, cfg_scale=1.5,
                    seed=0, device="cpu", dtype=dtype, **kw).codes
