"""Token generation, in the manner of gpt-fast: ``prefill`` (the prompt pass, which also gives the
first frame), ``decode_one_frame`` (one frame step through a runner: eager, compiled or a CUDA
graph replay) and ``decode_n_frames`` (the loop until every song ended or the length limit).
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
from .prompt import Prompt
from .vocab import audio_vocab


@dataclass
class Generated:
    codes: torch.Tensor  # [B, 8, T] int64 on CPU (rows past a song's length are 0)
    lengths: torch.Tensor  # [B] int64
    prompt_seconds: float
    frame_seconds: float  # wall time of the frame steps after the prompt pass
    frames_run: int  # frame steps run (including any past the last EOS)

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.frame_seconds / max(self.frames_run - 1, 1)


def prefill(sampler: FrameSampler, prompt: Prompt) -> torch.Tensor:
    """The prompt pass (filling the caches) and the first frame [R, 8], which is never EOS: every
    song has at least one frame."""
    return sampler.prompt_pass(prompt, sampler.draw_noise())


def decode_one_frame(runner, frame: torch.Tensor, position: int) -> torch.Tensor:
    """The frame after ``frame`` [R, 8], which sits at backbone ``position``; the runner draws the
    frame's noise."""
    return runner(frame, position)


def decode_n_frames(runner, frame: torch.Tensor, position: int, codes: torch.Tensor, lengths: torch.Tensor,
                    first: int, eos_id: int, on_frame=None, check_cancel=None, eos_check_every: int = 1) -> int:
    """Frames ``first`` .. T-1 of ``codes`` [B, 8, T] after ``frame`` (at backbone ``position``).
    A song's length is set in ``lengths`` at its first frame holding EOS (it keeps running masked
    until all have); the loop stops once every song ended, read every ``eos_check_every`` frames.
    Returns the number of frames run, the ones before ``first`` included."""
    songs, total = codes.shape[0], codes.shape[-1]
    done = torch.zeros(songs, dtype=torch.bool, device=codes.device)
    for t in range(first, total):
        if check_cancel:
            check_cancel()
        frame = decode_one_frame(runner, frame, position + t - first)
        song_frame = frame[:songs]
        codes[:, :, t] = song_frame
        ended = (song_frame == eos_id).any(dim=-1) & ~done
        lengths.masked_fill_(ended, t)
        done |= ended
        if on_frame:
            on_frame(t + 1, total)
        if t % eos_check_every == 0 and bool(done.all()):
            return t + 1
    return total


def _trimmed(codes: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """On the CPU, cut to the longest song, each row zero past its own length."""
    lengths = lengths.cpu()
    out = codes[:, :, :int(lengths.max())].cpu()
    for b, length in enumerate(lengths.tolist()):
        out[b, :, length:] = 0
    return out, lengths


def _sample_songs(sampler: FrameSampler, runner, prompt: Prompt, max_frames: int, eos_id: int, on_frame,
                  check_cancel, eos_check_every: int) -> Generated:
    batch_size, device = sampler.songs, sampler.device
    codes = torch.zeros(batch_size, sampler.model.config.audio_num_codebooks, max_frames, dtype=torch.long,
                        device=device)
    lengths = torch.full((batch_size,), max_frames, dtype=torch.long, device=device)
    if check_cancel:
        check_cancel()
    t0 = time.perf_counter()
    frame = prefill(sampler, prompt)
    codes[:, :, 0] = frame[:batch_size]
    if on_frame:
        on_frame(1, max_frames)
    t1 = time.perf_counter()
    frames_run = decode_n_frames(runner, frame, prompt.length, codes, lengths, 1, eos_id, on_frame, check_cancel,
                                 eos_check_every)
    t2 = time.perf_counter()
    return Generated(*_trimmed(codes, lengths), t1 - t0, t2 - t1, frames_run)


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
) -> Generated:
    """Sample ``batch_size`` independent songs for one prompt. Same seed, same codes.

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
    check_fits(model.config, prompt, max_frames)
    vocab = audio_vocab(model.config.audio_vocab_size, eos_id, codebook_size)
    weight = model.unconditional_text_embedding.weight  # always in the compute dtype (other weights may be fp8)
    device, dtype = torch.device(device or weight.device), dtype or weight.dtype
    if generator is None:
        generator = seeded_generator(seed, device)
    sampler = FrameSampler(model, songs=batch_size, cfg_scale=cfg_scale, top_k=top_k, temperature=temperature,
                           max_len=cache_length(model.config, prompt.length, max_frames), generator=generator,
                           device=device, dtype=dtype, vocab=vocab)
    runner_name = pick_runner(capture, device, model)
    if eos_check_every is None:
        eos_check_every = 8 if runner_name == "cuda_graph" else 1
    runner = RUNNERS[runner_name](sampler)
    try:
        return _sample_songs(sampler, runner, prompt, max_frames, eos_id, on_frame, check_cancel, eos_check_every)
    finally:
        del runner, sampler
