"""Continuing saved codes (extend a song, or keep its start and write a new ending): greedy
continuations reproduce the uninterrupted song, batches of prefixes of different lengths match
each song continued alone, variations are reproducible, and bad prefixes are refused by name."""

import pytest
import torch

from heartmula_core.errors import CodesError, PromptError, SettingsError
from heartmula_core.lm.budget import estimate_generation_bytes
from heartmula_core.lm.generation import generate
from heartmula_core.lm.load import load_lm
from heartmula_core.lm.prefix import kept_lengths
from lm_fixtures import TINY_LM, no_host_reads, tiny_lm_fixtures

CFG = [pytest.param(1.0, id="cfg-off"), pytest.param(1.5, id="cfg-on")]


lm, prompt = tiny_lm_fixtures("piano,happy", "[verse]\nla la la\n")


def run(lm, prompt, **kw):
    return generate(lm.model, prompt, eos_id=lm.gen_config.audio_eos_id, **kw)


@pytest.fixture(scope="module")
def takes(lm, prompt):
    """Three different songs of 30 frames (seeded sampling), to continue."""
    out = run(lm, prompt, max_frames=30, seed=11, batch_size=3, temperature=1.3)
    assert out.lengths.tolist() == [30, 30, 30] and not torch.equal(out.codes[0], out.codes[1])
    return out.codes


@pytest.mark.parametrize("cfg", CFG)
def test_greedy_continuation_gives_the_uninterrupted_song(lm, prompt, cfg):
    full = run(lm, prompt, max_frames=40, top_k=1, cfg_scale=cfg)
    assert full.lengths.tolist() == [40]
    for kept in (1, 17, 39):
        cont = run(lm, prompt, max_frames=40, top_k=1, cfg_scale=cfg, prefix=full.codes[:, :, :kept])
        assert torch.equal(cont.codes, full.codes), f"continued from {kept} frames"
        assert cont.lengths.tolist() == [40] and cont.frames_run == 40 - kept


@pytest.mark.parametrize("cfg", CFG)
def test_keeping_every_frame_with_a_longer_limit_leaves_them_unchanged(lm, prompt, cfg):
    short = run(lm, prompt, max_frames=40, top_k=1, cfg_scale=cfg)
    long = run(lm, prompt, max_frames=56, top_k=1, cfg_scale=cfg)
    cont = run(lm, prompt, max_frames=56, top_k=1, cfg_scale=cfg, prefix=short.codes)
    assert torch.equal(cont.codes[:, :, :40], short.codes)
    assert torch.equal(cont.codes, long.codes) and cont.lengths.tolist() == [56]


@pytest.mark.parametrize("cfg", CFG)
def test_a_batch_of_prefixes_of_different_lengths(lm, prompt, takes, cfg):
    """Left-padded rows give what each song gives alone, and greedy rows the uninterrupted song."""
    kept = [5, 30, 18]
    batch = run(lm, prompt, max_frames=45, top_k=1, cfg_scale=cfg, prefix=takes, prefix_lengths=kept)
    assert batch.codes.shape == (3, 8, 45) and batch.lengths.tolist() == [45, 45, 45]
    for b, k in enumerate(kept):
        alone = run(lm, prompt, max_frames=45, top_k=1, cfg_scale=cfg, prefix=takes[b:b + 1, :, :k])
        assert torch.equal(batch.codes[b], alone.codes[0]), f"song {b} (kept {k})"
        assert torch.equal(batch.codes[b, :, :k], takes[b, :, :k])
    full = run(lm, prompt, max_frames=45, top_k=1, cfg_scale=cfg)
    again = run(lm, prompt, max_frames=45, top_k=1, cfg_scale=cfg, prefix=full.codes.repeat(3, 1, 1),
                prefix_lengths=[2, 44, 23])
    assert all(torch.equal(again.codes[b], full.codes[0]) for b in range(3))


def with_likely_eos(lm, fn):
    eos = lm.gen_config.audio_eos_id
    head = lm.model.codebook0_head.weight
    saved = head[eos].clone()
    try:
        head[eos] = head[eos] + 1.5 * head.std() * torch.sign(head.mean(0))
        return fn()
    finally:
        head[eos] = saved


def test_continued_songs_end_at_their_own_eos(lm, prompt):
    def both():
        full = run(lm, prompt, max_frames=200, top_k=1, cfg_scale=1.0)
        n = int(full.lengths[0])
        assert 3 < n < 200, f"the biased LM should end the song early, got {n} frames"
        cont = run(lm, prompt, max_frames=200, top_k=1, cfg_scale=1.0, prefix=full.codes.repeat(2, 1, 1),
                   prefix_lengths=[1, n])  # row 1: EOS is the prefill's frame
        return full, cont

    full, cont = with_likely_eos(lm, both)
    assert cont.lengths.tolist() == full.lengths.tolist() * 2
    assert torch.equal(cont.codes, full.codes.repeat(2, 1, 1))


def test_variations_are_reproducible_and_keep_the_kept_part(lm, prompt, takes):
    keep = kept_lengths([30], 1.6)  # 20 frames
    kw = dict(max_frames=36, prefix=takes[1:2], prefix_lengths=keep, batch_size=2, temperature=1.3)
    a, b, c = run(lm, prompt, seed=1, **kw), run(lm, prompt, seed=1, **kw), run(lm, prompt, seed=2, **kw)
    assert keep == [20] and a.codes.shape == (2, 8, 36)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.lengths, b.lengths)
    for out in (a, c):
        assert torch.equal(out.codes[:, :, :20], takes[1, :, :20].expand(2, -1, -1)), "the kept part is bit-identical"
    assert not torch.equal(a.codes[:, :, 20:], c.codes[:, :, 20:]), "another seed, another ending"
    assert not torch.equal(a.codes[0, :, 20:], a.codes[1, :, 20:]), "the variations of a batch differ"


def test_each_song_fans_out_into_batch_size_variations(lm, prompt, takes):
    out = run(lm, prompt, max_frames=34, seed=3, prefix=takes[:2], batch_size=3)
    assert out.codes.shape == (6, 8, 34)
    for row in range(6):
        assert torch.equal(out.codes[row, :, :30], takes[row // 3]), "rows are song 0 x3, then song 1 x3"


def test_keep_seconds(lm):
    assert kept_lengths([50, 40], -1) == [50, 40]
    assert kept_lengths([50, 40], 2.0) == [25, 25]
    with pytest.raises(SettingsError, match=r"longer than song 1 .* 3\.2 s \(40 frames\)"):
        kept_lengths([50, 40], 3.5)
    with pytest.raises(SettingsError, match="keeps no frame"):
        kept_lengths([50], 0.0)
    for bad in (float("nan"), float("inf"), True, "2"):
        with pytest.raises(SettingsError, match="keep_seconds must be a finite number"):
            kept_lengths([50], bad)


def test_bad_prefixes_are_refused_by_name(lm, prompt, takes):
    with pytest.raises(CodesError, match=r"continue_from: .*got \[3, 4, 30\]: 4 codes per frame, so they come from another kind of model"):
        run(lm, prompt, max_frames=40, prefix=takes[:, :4])
    bad = takes[:1].clone()
    bad[0, 3, 7] = 64  # the tiny codebook has ids 0..63
    with pytest.raises(CodesError, match=r"continue_from: codes\[0, 3, 7\] = 64 is outside the codebook"):
        run(lm, prompt, max_frames=40, prefix=bad)
    with pytest.raises(CodesError, match="integer"):
        run(lm, prompt, max_frames=40, prefix=takes.float())
    with pytest.raises(PromptError, match="counts the whole song.*after the 30 kept frames"):
        run(lm, prompt, max_frames=30, prefix=takes)
    limit = lm.config.backbone.max_seq_len
    too_long = torch.zeros(1, 8, limit - prompt.length, dtype=torch.long)
    with pytest.raises(PromptError, match=r"context holds 2048 positions.*Keep fewer seconds"):
        run(lm, prompt, max_frames=limit, prefix=too_long)


def test_the_memory_estimate_counts_the_kept_frames(lm):
    config = lm.config
    plain = estimate_generation_bytes(config, 100, 1000, 2, 1.5, torch.float32)
    kept = estimate_generation_bytes(config, 100, 1000, 2, 1.5, torch.float32, kept=[900, 900])
    spread = estimate_generation_bytes(config, 100, 1000, 2, 1.5, torch.float32, kept=[900, 100])
    assert plain < kept < spread


def test_the_frame_step_of_padded_rows_stays_capturable(lm, prompt, takes, monkeypatch):
    """Padded rows add static tensors only: the step reads nothing back to the host, and the
    compiled step (the CUDA graph's counterpart on the CPU) gives the eager codes."""
    from heartmula_core.lm.frame_sampler import FrameSampler
    from heartmula_core.lm.prefix import Prefix

    prefix = Prefix(takes, [4, 30, 12])
    with torch.inference_mode():
        sampler = FrameSampler(lm.model, songs=3, cfg_scale=1.5, top_k=5, temperature=1.0,
                               max_len=prompt.length + 64, generator=torch.Generator().manual_seed(0),
                               device=torch.device("cpu"), dtype=torch.float32, pads=prefix.pads)
        frame = sampler.prompt_pass(prompt, sampler.draw_noise(), prefix.aligned(30))
        position, noise = torch.tensor([prompt.length + 30]), sampler.draw_noise()
        with no_host_reads(monkeypatch):
            out = sampler.step(frame, position, noise)
    assert out.shape == (6, 8) and torch.equal(out[:3], out[3:])
    kw = dict(max_frames=40, top_k=1, cfg_scale=1.5, prefix=takes, prefix_lengths=[4, 30, 12])
    assert torch.equal(run(lm, prompt, capture="compile", **kw).codes, run(lm, prompt, capture="eager", **kw).codes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_continues_padded_rows_as_eager_does(prompt, takes):
    gpu = load_lm(TINY_LM, device="cuda")
    for top_k in (1, 8):
        kw = dict(max_frames=48, eos_id=gpu.gen_config.audio_eos_id, top_k=top_k, cfg_scale=1.5, batch_size=2, seed=3,
                  prefix=takes, prefix_lengths=[4, 30, 12])
        eager = generate(gpu.model, prompt, capture="eager", **kw)
        graph = generate(gpu.model, prompt, capture="cuda_graph", **kw)
        assert torch.equal(eager.codes, graph.codes) and torch.equal(eager.lengths, graph.lengths)


def test_the_prefill_benchmark_agrees_with_feeding_frames_one_by_one():
    from benchmarks.bench_prefill import measure

    rows = measure("tiny", 40, 1.5, torch.device("cpu"), torch.float32)
    assert [r["way"] for r in rows] == ["prefill", "backbone per frame", "frame step per frame"]
    assert all(r["same next frame"] for r in rows), rows
