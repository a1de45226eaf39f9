"""Helpers for the fp8 tests: the safetensors fp8 dtype codes (until safetensors_header lists them,
see docs/FP8_INTEGRATION.md), greedy runs of the tiny LM and relative errors."""

from __future__ import annotations

import sys

import pytest
import torch


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.fixture
def fp8_files(monkeypatch):
    """Let every loaded copy of heartmula_core read F8_E4M3 / F8_E5M2 tensors (the core's and the
    pack's, which the node tests import as heartmula_pack.heartmula_core)."""
    from heartmula_core.quant.formats import SAFETENSORS_FP8_CODES

    for name, module in list(sys.modules.items()):
        if name.endswith("heartmula_core.safetensors_header"):
            for code, dtype in SAFETENSORS_FP8_CODES.items():
                monkeypatch.setitem(module.DTYPES, code, dtype)


def greedy(lm, frames: int = 16, dtype=torch.float32, **kw):
    """Greedy codes of the tiny LM on a fixed prompt (CFG on)."""
    from heartmula_core.lm.generate import generate
    from heartmula_core.prompt import build_prompt

    prompt = build_prompt(lm.tokenizer, lm.gen_config, "piano,happy", "[verse]\nla la la\n")
    return generate(lm.model, prompt, max_frames=frames, eos_id=lm.gen_config.audio_eos_id, top_k=1, cfg_scale=1.5,
                    seed=0, device="cpu", dtype=dtype, **kw).codes
