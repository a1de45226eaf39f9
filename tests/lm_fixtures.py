"""Helpers shared by the LM tests: paths to the tiny reference checkpoint and its expected outputs,
module fixtures of the tiny LM and a prompt for it, and a guard against host reads inside the
frame step."""

import json
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny"
TINY_CKPT = TINY / "ckpt"
TINY_LM = TINY_CKPT / "HeartMuLa-oss-3B"


@lru_cache(maxsize=1)
def expected():
    from safetensors.torch import load_file

    return load_file(str(TINY / "expected.safetensors"))


@lru_cache(maxsize=1)
def expected_inputs() -> dict:
    return json.loads((TINY / "expected.json").read_text(encoding="utf-8"))


def manifest(name: str) -> dict:
    return json.loads((DATA / "manifests" / name).read_text(encoding="utf-8"))["keys"]


HOST_READS = ["item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__", "__len__"]


@contextmanager
def no_host_reads(monkeypatch):
    """Inside: any Tensor method that reads a value back to the host raises (a CUDA graph cannot hold one)."""
    def forbidden(name):
        def read(*_a, **_k):
            raise AssertionError(f"host read Tensor.{name} inside the frame step")
        return read

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, forbidden(name))
    try:
        yield
    finally:
        monkeypatch.undo()


def tiny_lm_fixtures(tags: str, lyrics: str):
    """Module-scoped fixtures ``lm`` (the tiny LM, loaded once per test module) and ``prompt`` (tags
    and lyrics built for it); a test module binds them by name: ``lm, prompt = tiny_lm_fixtures(...)``."""
    from heartmula_core.lm.load import load_lm
    from heartmula_core.lm.prompt import build_prompt

    @pytest.fixture(scope="module")
    def lm():
        return load_lm(TINY_LM)

    @pytest.fixture(scope="module")
    def prompt(lm):
        return build_prompt(lm.tokenizer, lm.gen_config, tags, lyrics)

    return lm, prompt
