"""Token generation, in the manner of gpt-fast: ``prefill`` (the prompt pass, and any kept frames
of songs being continued, in one backbone pass, which also gives the first new frame),
``decode_one_frame`` (one frame step through a runner: eager, compiled or a CUDA graph replay) and
``decode_n_frames`` (the loop until every song ended or the length limit).
``generate`` checks the settings, sets the policy (runner, EOS checks) and trims the result.

The only synchronisation with the host is the EOS check, once every ``eos_check_every`` frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..settings import check_sampling, seeded_generator, whole
from .budget import cache_length, check_fits
from .capture import RUNNERS, pick_runner
from .frame_sampler import FrameSampler
from .model import HeartMuLa
from .prefix import Prefix, check_prefix
from .prompt import Prompt
from .song_codes import SongCodes
from .vocab import audio_vocab


@dataclass
class Generated:
    codes: torch.Tensor  # [B, 8, T] int64 on CPU (rows past a song's length are 0; kept frames included)
    lengths: torch.Tensor  # [B] int64
    prompt_seconds: float  # wall time of the prefill (prompt and kept frames) and the first new frame
    frame_seconds: float  # wall time of the frame steps after the prefill
    frames_run: int  # new frames sampled (including any past the last EOS)

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.frame_seconds / max(self.frames_run - 1, 1)


def prefill(sampler: FrameSampler, prompt: Prompt, kept: torch.Tensor | None = None) -> torch.Tensor:
    """The prompt and the kept frames [songs, n, K] (aligned, see prefix.py) in one backbone pass,
    filling the caches, and the first new frame [R, 8]; without kept frames it is never EOS (every
    song has at least one frame)."""
    return sampler.prompt_pass(prompt, sampler.draw_noise(), kept)


def decode_one_frame(runner, frame: torch.Tensor, position: int) -> torch.Tensor:
    """The frame after ``frame`` [R, 8], which sits at backbone ``position``; the runner draws the
    frame's noise."""
    return runner(frame, position)


def decode_n_frames(runner, frame: torch.Tensor, position: int, songs: SongCodes, first: int, on_frame=None,
                    check_cancel=None, eos_check_every: int = 1) -> int:
    """Slots ``first`` .. of ``songs`` after ``frame`` (at backbone ``position``). A song ends at
    its first frame holding EOS or at its length limit (it keeps running masked until all have); the
    loop stops once every song ended, read every ``eos_check_every`` frames. ``on_frame`` counts new
    frames. Returns the number of new frames run, the ones before ``first`` included."""
    total, kept = songs.slots, songs.first
    for t in range(first, total):
        if check_cancel:
            check_cancel()
        frame = decode_one_frame(runner, frame, position + t - first)
        songs.record(frame, t)
        if on_frame:
            on_frame(t + 1 - kept, total - kept)
        if t % eos_check_every == 0 and songs.all_done():
            return t + 1 - kept
    return total - kept


def _sample_songs(sampler: FrameSampler, runner, prompt: Prompt, songs: SongCodes, on_frame, check_cancel,
                  eos_check_every: int) -> Generated:
    if check_cancel:
        check_cancel()
    t0 = time.perf_counter()
    frame = prefill(sampler, prompt, songs.kept)
    songs.record(frame, songs.first)
    if on_frame:
        on_frame(1, songs.slots - songs.first)
    t1 = time.perf_counter()
    frames_run = decode_n_frames(runner, frame, prompt.length + songs.first, songs, songs.first + 1, on_frame,
                                 check_cancel, eos_check_every)
    t2 = time.perf_counter()
    return Generated(*songs.trimmed(), t1 - t0, t2 - t1, frames_run)


def _prefix_rows(model: HeartMuLa, prefix, prefix_lengths, batch_size: int, codebook_size: int) -> Prefix | None:
    """The checked prefix, each song repeated ``batch_size`` times (one row per variation)."""
    if prefix is None:
        return None
    return check_prefix(prefix, prefix_lengths, model.config.audio_num_codebooks, codebook_size).repeated(batch_size)


@torch.inference_mode()
def generate(
    model: HeartMuLa,
    prompt: Prompt,
    *,
    max_frames: int,
    eos_id: int,
    temperature: float = 1.0,
    top_k: int = 50,
    cfg_scale: float = 1.5,
    batch_size: int = 1,
    generator: torch.Generator | None = None,
    seed: int = 0,
    device=None,
    dtype=None,
    on_frame: Callable[[int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
    eos_check_every: int | None = None,
    capture: str = "auto",
    codebook_size: int | None = None,
    prefix: torch.Tensor | None = None,
    prefix_lengths=None,
) -> Generated:
    """Sample ``batch_size`` independent songs for one prompt. Same seed, same codes.

    ``prefix`` [P, 8, K] (``prefix_lengths`` [P] frames of each row, default all K) continues saved
    songs: each is repeated ``batch_size`` times (P x batch_size songs), its kept frames pass through
    the backbone with the prompt in one prefill, and the result holds them followed by the new frames.
    ``max_frames`` counts whole songs, kept frames included. The prompt may differ from the one the
    prefix was written with.
    ``generator`` (or a fresh one seeded with ``seed`` on the run device) is the only randomness.
    ``check_cancel`` is called before every frame and cancels by raising; caches are freed either way.
    ``capture``: auto (CUDA graph on CUDA, eager elsewhere), eager, compile or cuda_graph.
    ``eos_check_every``: frames between the host reads that stop the loop once every song ended
    (default 1 in eager mode, 8 with a CUDA graph, where the read would stall the queue).
    ``codebook_size``: the codec's (default: derived from ``eos_id``, see vocab.py). Only codebook
    entries and EOS are ever sampled, and a song ends at the first frame holding EOS anywhere.
    """
    check_sampling(temperature, top_k, cfg_scale, batch_size)
    whole(max_frames, "max_frames", 1, hint=" Ask for more seconds.")
    vocab = audio_vocab(model.config.audio_vocab_size, eos_id, codebook_size)
    kept = _prefix_rows(model, prefix, prefix_lengths, batch_size, vocab.codebook_size)
    check_fits(model.config, prompt, max_frames, kept.lengths if kept else ())
    weight = model.unconditional_text_embedding.weight  # always in the compute dtype (other weights may be fp8)
    device, dtype = torch.device(device or weight.device), dtype or weight.dtype
    songs = SongCodes(len(kept.lengths) if kept else batch_size, model.config.audio_num_codebooks, max_frames, eos_id,
                      device, kept)
    sampler = FrameSampler(model, songs=songs.codes.shape[0], cfg_scale=cfg_scale, top_k=top_k,
                           temperature=temperature, generator=generator or seeded_generator(seed, device),
                           max_len=cache_length(model.config, prompt.length, max_frames, kept.spread if kept else 0),
                           device=device, dtype=dtype, vocab=vocab, pads=songs.pads if kept else None)
    runner_name = pick_runner(capture, device, model)
    if eos_check_every is None:
        eos_check_every = 8 if runner_name == "cuda_graph" else 1
    runner = RUNNERS[runner_name](sampler)
    try:
        return _sample_songs(sampler, runner, prompt, songs, on_frame, check_cancel, eos_check_every)
    finally:
        del runner, sampler
