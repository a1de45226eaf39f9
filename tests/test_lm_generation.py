"""Generation behaviour beyond parity: batches, EOS, seeds, CFG switching, cancel, progress."""

import pytest
import torch

from heartmula_core.errors import PromptError
from heartmula_core.lm.budget import frames_for_seconds
from heartmula_core.lm.generation import generate
from lm_fixtures import tiny_lm_fixtures


lm, prompt = tiny_lm_fixtures("piano,happy", "[verse]\nla la la\n")


def run(lm, prompt, **kw):
    kw.setdefault("max_frames", 12)
    return generate(lm.model, prompt, eos_id=lm.gen_config.audio_eos_id, **kw)


def test_same_seed_same_codes_and_other_seed_differs(lm, prompt):
    a = run(lm, prompt, seed=7, batch_size=2)
    b = run(lm, prompt, seed=7, batch_size=2)
    c = run(lm, prompt, seed=8, batch_size=2)
    assert torch.equal(a.codes, b.codes)
    assert not torch.equal(a.codes, c.codes)
    assert a.codes.dtype == torch.int64 and a.codes.shape == (2, 8, 12)
    assert not torch.equal(a.codes[0], a.codes[1]), "songs of a batch are independent draws"


def test_cfg_on_off_and_batch_sizes_alternate_on_one_model(lm, prompt):
    first = run(lm, prompt, seed=3, cfg_scale=1.5, batch_size=1)
    run(lm, prompt, seed=3, cfg_scale=1.0, batch_size=3)
    run(lm, prompt, seed=3, cfg_scale=2.0, batch_size=2)
    again = run(lm, prompt, seed=3, cfg_scale=1.5, batch_size=1)
    assert torch.equal(first.codes, again.codes)


def test_each_song_stops_at_its_own_eos(lm, prompt):
    eos = lm.gen_config.audio_eos_id
    head = lm.model.codebook0_head.weight
    saved = head[eos].clone()
    try:
        head[eos] = head[eos] + 0.6 * head.std() * torch.sign(head.mean(0))  # make EOS likely, not certain
        out = run(lm, prompt, seed=5, batch_size=4, max_frames=60, temperature=1.5)
    finally:
        head[eos] = saved
    lengths = out.lengths.tolist()
    assert len(set(lengths)) > 1, f"expected different lengths, got {lengths}"
    assert out.codes.shape[-1] == max(lengths)
    for b, n in enumerate(lengths):
        assert (out.codes[b, :, 1:n] < eos).all(), "no EOS token inside a song"
        assert (out.codes[b, :, n:] == 0).all(), "frames past a song's end are zero"
    assert out.frames_run <= 60


def test_progress_reports_every_frame(lm, prompt):
    seen = []
    run(lm, prompt, max_frames=9, on_frame=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 9) for i in range(1, 10)]


class Stop(Exception):
    pass


def test_cancel_stops_within_a_frame_and_model_stays_usable(lm, prompt):
    calls = []

    def cancel_after_four():
        calls.append(1)
        if len(calls) > 4:
            raise Stop()

    reference = run(lm, prompt, seed=11)
    with pytest.raises(Stop):
        run(lm, prompt, seed=11, check_cancel=cancel_after_four)
    assert len(calls) == 5
    assert torch.equal(run(lm, prompt, seed=11).codes, reference.codes)


def test_seconds_to_frames():
    assert frames_for_seconds(30) == 375
    assert frames_for_seconds(1.6) == 20


def test_bad_sampling_settings_are_rejected(lm, prompt):
    with pytest.raises(PromptError, match="temperature"):
        run(lm, prompt, temperature=0)
    with pytest.raises(PromptError, match="top-k"):
        run(lm, prompt, top_k=0)
    with pytest.raises(PromptError, match="context holds 2048 positions"):
        run(lm, prompt, max_frames=5000)
