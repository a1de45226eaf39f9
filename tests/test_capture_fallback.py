"""A captured frame step that fails (a CUDA graph an unseen GPU or driver refuses, a torch.compile
without a compiler) costs one warning, never the song: the same codes as the eager step."""

from __future__ import annotations

import logging

import pytest
import torch

from heartmula_core.lm import capture
from heartmula_core.lm.generation import generate
from lm_fixtures import tiny_lm_fixtures


lm, prompt = tiny_lm_fixtures("rock,guitar", "[chorus]\nhey hey\n")


class RefusedCapture(capture.StaticStep):
    """The CUDA graph runner's path on the CPU, with a recorder that fails as a capture can: after
    running the warm-up step (which wrote this position's cache entries)."""

    what = "capturing the frame step"
    records = 0

    def _record(self):
        RefusedCapture.records += 1
        self._step()
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")


def run(lm, prompt, **kw):
    return generate(lm.model, prompt, max_frames=12, eos_id=lm.gen_config.audio_eos_id, batch_size=2, seed=5,
                    top_k=8, **kw)


def warnings_of(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "heartmula"]


def test_failed_capture_falls_back_to_eager_with_one_warning_and_the_same_codes(lm, prompt, monkeypatch, caplog):
    eager = run(lm, prompt, capture="eager")
    monkeypatch.setitem(capture.RUNNERS, "eager", RefusedCapture)
    with caplog.at_level(logging.WARNING, logger="heartmula"):
        fallen = run(lm, prompt, capture="eager")
    assert torch.equal(fallen.codes, eager.codes) and torch.equal(fallen.lengths, eager.lengths)
    assert RefusedCapture.records == 1, "a refused capture is not retried every frame"
    found = warnings_of(caplog)
    assert len(found) == 1 and "capturing the frame step failed" in found[0].getMessage()
    assert "continuing with the eager frame step" in found[0].getMessage()


def test_failed_compile_falls_back_to_eager_with_one_warning_and_the_same_codes(lm, prompt, monkeypatch, caplog):
    eager = run(lm, prompt, capture="eager")

    def broken_compile(fn, **_kwargs):
        def compiled(*_args):
            raise RuntimeError("InductorError: CppCompileError: no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    with caplog.at_level(logging.WARNING, logger="heartmula"):
        fallen = run(lm, prompt, capture="compile")
    assert torch.equal(fallen.codes, eager.codes)
    found = warnings_of(caplog)
    assert len(found) == 1 and "torch.compile of the frame step failed" in found[0].getMessage()
