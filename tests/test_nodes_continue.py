"""HeartMuLa Continue Song on the tiny checkpoints: extend (keep all) and vary (keep the first
seconds), through Save / Load HeartMuLa Codes, with the memory estimate, progress bar and errors a
user sees."""

from __future__ import annotations

import pytest
import torch

from heartmula_node_env import comfy_home  # noqa: F401  (fixture)
from test_nodes_pipeline import assert_bar_reaches, chain  # noqa: F401  (fixture)


@pytest.fixture
def cont(chain):
    from heartmula_pack.nodes import sampler as sampling

    def run(continue_from, **overrides):
        settings = dict(lm=chain.lm, prompt=chain.prompt, continue_from=continue_from, keep_seconds=-1.0, seed=3,
                        seconds=3.2, temperature=1.0, top_k=8, cfg_scale=1.5, batch_size=1)
        settings.update(overrides)
        return chain.home.run(sampling.HeartMuLaContinueSong, **settings)[0]

    return run


def test_extending_a_loaded_song_gives_the_longer_greedy_take(chain, cont, pack):
    from heartmula_pack.nodes import codes_io

    short = chain.sample(top_k=1, seconds=1.6)
    chain.home.run(codes_io.SaveHeartMuLaCodes, codes=short, filename_prefix="heartmula/take")
    loaded, = chain.home.run(codes_io.LoadHeartMuLaCodes, file="heartmula/take_00001_.safetensors [output]")
    chain.home.progress.clear()
    chain.home.loads.clear()
    extended = cont(loaded, top_k=1, seconds=3.2)
    assert_bar_reaches(chain.home.progress, 20, 20)  # the bar counts the 20 new frames
    (_, estimate), = chain.home.loads
    assert extended.codes.shape == (1, 8, 40) and extended.lengths.tolist() == [40]
    assert torch.equal(extended.codes, chain.sample(top_k=1, seconds=3.2).codes)
    assert extended.info["continued_from"] == "take_00001_.safetensors" and extended.info["keep_seconds"] == "-1.0"
    from heartmula_pack.heartmula_core.lm.budget import estimate_generation_bytes

    plain = estimate_generation_bytes(chain.lm.config, chain.prompt.length, 40, 1, 1.5, chain.lm.dtype)
    assert estimate > plain, "the estimate counts the kept frames"


def test_variations_keep_the_start_and_differ_after_it(chain, cont):
    song = chain.sample(seed=5, seconds=2.4)
    a, b, c = (cont(song, keep_seconds=1.0, seconds=2.4, seed=s, batch_size=2) for s in (1, 1, 2))
    assert torch.equal(a.codes, b.codes)
    assert a.codes.shape[0] == 2 and torch.equal(a.codes[:, :, :12], song.codes[:, :, :12].expand(2, -1, -1))
    assert not torch.equal(a.codes[:, :, 12:], c.codes[:, :, 12:])
    audio = chain.decode(a)
    assert audio["waveform"].shape[0] == 2


def test_a_batch_of_songs_is_continued_song_by_song(chain, cont):
    songs = chain.sample(batch_size=2, seconds=1.6, seed=8)
    out = cont(songs, seconds=2.4, batch_size=3)
    assert out.codes.shape[0] == 6
    for row in range(6):
        n = int(songs.lengths[row // 3])
        assert torch.equal(out.codes[row, :, :n], songs.codes[row // 3, :, :n])


def test_errors_name_the_input_before_any_memory_moves(chain, cont, pack):
    from heartmula_pack.heartmula_core.errors import CodesError, PromptError, SettingsError
    from heartmula_pack.nodes.types import HeartMuLaCodes

    song = chain.sample(seconds=1.6)
    chain.home.loads.clear()
    with pytest.raises(SettingsError, match=r"keep_seconds = 5 s is longer than song 0 .*1.6 s \(20 frames\)"):
        cont(song, keep_seconds=5.0)
    with pytest.raises(SettingsError, match="keep_seconds must be a finite number"):
        cont(song, keep_seconds=float("nan"))
    with pytest.raises(PromptError, match="counts the whole song"):
        cont(song, seconds=1.6)
    with pytest.raises(CodesError, match="continue_from: .*4 codes per frame, so they come from another kind of model"):
        cont(HeartMuLaCodes(song.codes[:, :4], song.lengths))
    bad = song.codes.clone()
    bad[0, 2, 3] = 65  # end of audio is no codebook entry
    with pytest.raises(CodesError, match=r"continue_from: codes\[0, 2, 3\] = 65 is outside the codebook"):
        cont(HeartMuLaCodes(bad, song.lengths))
    with pytest.raises(PromptError, match="Keep fewer seconds"):
        cont(HeartMuLaCodes(torch.zeros(1, 8, 2040, dtype=torch.long), torch.tensor([2040])), seconds=600.0)
    assert chain.home.loads == []
