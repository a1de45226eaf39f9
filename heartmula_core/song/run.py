"""Running a checked plan: codes from the LM (``sample_song``), audio from the codec
(``decode_song``), or both (``make_song``). Hooks are plain callables: ``on_progress(done, total)``
per frame / Euler step and ``check_cancel()`` at the same points (it cancels by raising); memory
goes through the models' ``ready`` (models.py). Every front door runs these, so a song made by a
node, by ``sample`` / ``generate`` and by a jobs file with the same settings is the same song.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..codec import decode
from ..codes import samples_for
from ..lm.generation import Generated, generate
from ..settings import seeded_generator
from .models import CodecModel, LMModel
from .plan import DecodePlan, SongPlan, plan_decode

Progress = Callable[[int, int], None]


def sample_song(lm: LMModel, plan: SongPlan, on_progress: Progress | None = None,
                check_cancel: Callable[[], None] | None = None) -> Generated:
    """The songs of ``plan`` as codes [songs, 8, T] (kept frames first when continuing). The progress
    total is ``plan.new_frames``; when every song ends earlier the last call reports a full bar."""
    model, device = lm.ready(plan.generation_bytes)
    s, start = plan.settings, plan.start
    result = generate(model, plan.prompt, max_frames=plan.max_frames, eos_id=plan.eos_id, temperature=s.temperature,
                      top_k=s.top_k, cfg_scale=s.cfg_scale, batch_size=s.batch_size, seed=s.seed, device=device,
                      dtype=lm.dtype, on_frame=on_progress, check_cancel=check_cancel,
                      codebook_size=plan.codebook_size, prefix=start.codes if start else None,
                      prefix_lengths=start.lengths if start else None)
    if on_progress and result.frames_run < plan.new_frames:  # ended by itself: a full bar
        on_progress(result.frames_run, result.frames_run)
    return result


@dataclass
class Audio:
    """Decoded songs: float32 [B, 2, N] on the CPU (padded with silence to the longest), each song's
    own length in samples, and the sample rate."""

    waveform: torch.Tensor
    samples: list[int]
    sample_rate: int


def decode_song(codec: CodecModel, codes: torch.Tensor, lengths, plan: DecodePlan,
                on_progress: Progress | None = None, check_cancel: Callable[[], None] | None = None) -> Audio:
    """Codes [B, 8, T] (``lengths`` frames each) as audio, with ``plan``'s decoder settings and seed."""
    s = plan.settings
    generator = seeded_generator(s.decoder_seed, "cpu")
    model, _device = codec.ready(plan.needed)
    waveform = decode(model, codes, lengths, steps=s.decode_steps, guidance=s.decode_guidance, generator=generator,
                      on_step=on_progress, check_cancel=check_cancel)
    rate = codec.config.sample_rate
    return Audio(waveform, [samples_for(int(n), rate) for n in lengths], rate)


@dataclass
class Song:
    """One job's songs: codes and audio, and the seconds each half took."""

    codes: torch.Tensor  # [B, 8, T] int64
    lengths: torch.Tensor  # [B] frames
    audio: Audio
    lm_seconds: float
    codec_seconds: float


def make_song(lm: LMModel, codec: CodecModel, plan: SongPlan, between: Callable[[], None] | None = None) -> Song:
    """Sample, then decode: ``generate``'s and a batch job's whole path. ``between()`` runs after the
    LM is done and before the codec starts (the batch runner's offload swap)."""
    t0 = time.perf_counter()
    result = sample_song(lm, plan)
    t1 = time.perf_counter()
    if between is not None:
        between()
    lengths = result.lengths.tolist()
    audio = decode_song(codec, result.codes, result.lengths, plan_decode(codec, len(lengths), max(lengths),
                                                                         plan.settings))
    return Song(result.codes, result.lengths, audio, t1 - t0, time.perf_counter() - t1)
