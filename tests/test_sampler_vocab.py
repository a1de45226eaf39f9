"""The sampler only emits ids the codec accepts: codebook entries, or EOS which ends the song."""

from __future__ import annotations

import pytest
import torch

from heartmula_core.lm.load import load_lm
from heartmula_core.codec import decode, load_codec
from heartmula_core.codes import check_codes  # the codec's own refusal rule
from heartmula_core.errors import CheckpointError, SettingsError
from heartmula_core.lm.generation import generate
from heartmula_core.lm.sampling import sample_top_k
from heartmula_core.lm.vocab import audio_vocab
from heartmula_core.lm.prompt import build_prompt
from lm_fixtures import TINY_CKPT, TINY_LM


@pytest.fixture(scope="module")
def lm():
    return load_lm(TINY_LM)


@pytest.fixture(scope="module")
def codec():
    return load_codec(TINY_CKPT / "HeartCodec-oss")


@pytest.fixture(scope="module")
def prompt(lm):
    return build_prompt(lm.tokenizer, lm.gen_config, "piano,happy", "[Verse]\nla la la\n")


def test_layout_is_read_from_the_configs(lm, codec):
    vocab = audio_vocab(lm.config.audio_vocab_size, lm.gen_config.audio_eos_id)
    assert (vocab.size, vocab.codebook_size, vocab.eos_id) == (69, 64, 65)
    assert vocab.codebook_size == codec.config.codebook_size
    assert audio_vocab(8197, 8193).codebook_size == 8192  # the released LM and HeartCodec
    allowed = vocab.allowed("cpu")
    assert allowed[:64].all() and allowed[65] and not allowed[64] and not allowed[66:].any()
    assert not vocab.allowed("cpu", with_eos=False)[65]
    with pytest.raises(CheckpointError, match="end-of-audio id must lie inside the vocabulary"):
        audio_vocab(69, 69)


def test_masking_changes_nothing_when_no_masked_id_is_among_the_top_k():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 69, generator=g)
    logits[:, 64:] -= 100  # the specials are never among the best
    race = torch.empty(64, 69).exponential_(1.0, generator=g)
    allowed = audio_vocab(69, 65).allowed("cpu")
    for k in (1, 8, 50):
        assert torch.equal(sample_top_k(logits, k, 1.0, race, allowed), sample_top_k(logits, k, 1.0, race))


def test_masked_ids_are_never_drawn_even_when_they_are_the_most_likely():
    logits = torch.zeros(4, 69)
    logits[:, 64] = 50.0  # a special id that is not EOS
    logits[:, 66:] = 40.0
    race = torch.ones(4, 69)
    allowed = audio_vocab(69, 65).allowed("cpu")
    tokens = sample_top_k(logits, 8, 1.0, race, allowed)
    assert bool(((tokens < 64) | (tokens == 65)).all())


def test_hundred_seeds_batch_two_every_song_decodes(lm, prompt, codec):
    """Before the mask, 23 of these 100 seeds produced a song the codec refused (id 64 or 66..68
    inside a song, or EOS in frame 0)."""
    eos = lm.gen_config.audio_eos_id
    songs = []
    for seed in range(100):
        out = generate(lm.model, prompt, max_frames=40, eos_id=eos, batch_size=2, seed=seed)
        assert bool((out.lengths >= 1).all())
        for b in range(2):
            n = int(out.lengths[b])
            song = out.codes[b, :, :n]
            assert bool((song < codec.config.codebook_size).all()), f"seed {seed} song {b}"
            check_codes(song[None], [n], codebook_size=codec.config.codebook_size)
            songs.append(song)
    shortest = min(songs, key=lambda s: s.shape[-1])
    longest = max(songs, key=lambda s: s.shape[-1])
    wave = decode(codec, torch.stack([longest, torch.nn.functional.pad(shortest, (0, longest.shape[-1] - shortest.shape[-1]))]),
                  torch.tensor([longest.shape[-1], shortest.shape[-1]]), steps=1)
    assert torch.isfinite(wave).all()


def test_eos_in_any_codebook_ends_the_song_but_never_in_the_first_frame(lm, prompt):
    """Make EOS the most likely id of codebook 3 only: every song ends at frame 1, the first frame
    where EOS may be drawn, though codebook 0 never chose it."""
    eos = lm.gen_config.audio_eos_id
    head = lm.model.audio_head
    saved = head.data[2, :, eos].clone()
    try:
        with torch.no_grad():
            head.data[2, :, eos] = 1000.0 * torch.sign(head.data[2].mean(dim=1))
        out = generate(lm.model, prompt, max_frames=10, eos_id=eos, batch_size=3, seed=1, top_k=1)
    finally:
        head.data[2, :, eos] = saved
    assert out.lengths.tolist() == [1, 1, 1]
    assert out.codes.shape == (3, 8, 1) and bool((out.codes < 64).all())


@pytest.mark.parametrize("setting,value,expect", [
    ("cfg_scale", float("nan"), "cfg_scale must be a finite number"),
    ("cfg_scale", float("inf"), "cfg_scale must be a finite number"),
    ("temperature", float("nan"), "temperature must be a finite number"),
    ("temperature", float("inf"), "temperature must be a finite number"),
    ("top_k", 2.5, "top-k must be a whole number"),
    ("batch_size", True, "batch size must be a whole number"),
    ("seed", 2**64, "seed must be between 0 and 18446744073709551615"),
    ("max_frames", float("nan"), "max_frames must be a whole number"),
])
def test_core_refuses_non_finite_settings(lm, prompt, setting, value, expect):
    kwargs = dict(max_frames=4, eos_id=lm.gen_config.audio_eos_id)
    kwargs[setting] = value
    with pytest.raises(SettingsError, match=expect):
        generate(lm.model, prompt, **kwargs)


def test_largest_seed_is_reproducible(lm, prompt):
    kw = dict(max_frames=6, eos_id=lm.gen_config.audio_eos_id, batch_size=2)
    a = generate(lm.model, prompt, seed=2**64 - 1, **kw)
    assert torch.equal(a.codes, generate(lm.model, prompt, seed=2**64 - 1, **kw).codes)
    assert not torch.equal(a.codes, generate(lm.model, prompt, seed=2**63, **kw).codes)
