"""Codes [B, 8, T] -> 48 kHz stereo waveform [B, 2, N], windowed like the official detokenize.

Random numbers: all noise is drawn on the CPU from one ``torch.Generator`` before any compute, in
the official order per song (an unused "first latent", window 0's start noise, then for each later
window the unused fresh tail of its in-context latent followed by its start noise). A generator
seeded with s therefore reproduces the official decode after ``torch.manual_seed(s)``, on any
device. Songs of a batch are decoded together window by window, each to its own length.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..codes import check_codes
from ..settings import check_decoding
from .config import CodecConfig
from .estimator import mlp_hidden
from .flow import solve_euler
from .model import HeartCodec
from .windows import HOP_FRAMES, OVERLAP_LATENTS, WINDOW_FRAMES, WINDOW_LATENTS, WindowPlan, plan_windows


def _draw_noise(plans: Sequence[WindowPlan], latent_dim: int, generator) -> list[list[torch.Tensor]]:
    """Start noise per song per window, drawn in the official order (unused draws included)."""
    def randn(frames: int) -> torch.Tensor:
        return torch.randn(1, frames, latent_dim, generator=generator, dtype=torch.float32)

    noise = []
    for plan in plans:
        randn(WINDOW_LATENTS)  # the official "first latent": drawn, never used
        per_window = [randn(WINDOW_LATENTS)]
        for _ in range(1, plan.windows):
            randn(WINDOW_LATENTS - OVERLAP_LATENTS)  # fresh tail of the in-context latent, masked out
            per_window.append(randn(WINDOW_LATENTS))
        noise.append(per_window)
    return noise


def _tiled(song: torch.Tensor, padded: int) -> torch.Tensor:
    """Repeat a song's codes [Q, n] from the start until it is ``padded`` frames long."""
    n = song.shape[-1]
    return song[:, torch.arange(padded) % n]


def _latent_to_audio(codec: HeartCodec, latent: torch.Tensor, samples: int) -> torch.Tensor:
    """One window's latent [T, 256] -> stereo audio [2, samples] (float32, CPU).

    Only the frames the output needs are decoded (plus lookahead for the non-causal first conv):
    the rest of the decoder is causal, so the kept samples are unaffected.
    """
    cfg = codec.config
    per_frame = cfg.samples_per_latent_frame
    if cfg.causal:
        keep = min(latent.shape[0], -(-samples // per_frame) + cfg.delay_kernel_size)
        latent = latent[:keep]
    stereo = latent.float().unflatten(-1, (2, -1)).permute(1, 2, 0)  # [2, 128, T]
    audio = codec.scalar_model(stereo)[:, 0, :samples]
    return audio.cpu()


def _crossfade_into(out: torch.Tensor, piece: torch.Tensor, start: int, overlap: int, first: bool) -> None:
    """Write ``piece`` at ``start``; its first ``overlap`` samples fade linearly over what is there."""
    end = min(start + piece.shape[-1], out.shape[-1])
    piece = piece[:, : end - start]
    if first or overlap == 0:
        out[:, start:end] = piece
        return
    fade_in = torch.from_numpy(np.linspace(0, 1, overlap))[: piece.shape[-1]]
    n = fade_in.shape[0]
    mixed = out[:, start:start + n] * (1 - fade_in) + piece[:, :n] * fade_in  # float64, like the official
    out[:, start:start + n] = mixed.to(out.dtype)
    out[:, start + n:end] = piece[:, n:]


def _step_counter(total: int, on_step, check_cancel) -> Callable[[], None]:
    """Called after every Euler step: the cancel check, then ``on_step(done, total)``."""
    done = 0

    def after_step() -> None:
        nonlocal done
        done += 1
        if check_cancel is not None:
            check_cancel()
        if on_step is not None:
            on_step(done, total)

    return after_step


def _decode_window(codec: HeartCodec, w: int, plans: Sequence[WindowPlan], padded_codes, noise, previous: dict,
                   out: torch.Tensor, steps: int, guidance: float, after_step) -> None:
    """Window ``w`` of every song that has one, as one transformer batch: its latents go into
    ``previous`` (the next window's in-context start), its audio is cross-faded into ``out``."""
    fm, device = codec.flow_matching, codec.device
    songs = [b for b, p in enumerate(plans) if p.windows > w]
    start = w * HOP_FRAMES
    window_codes = torch.stack([padded_codes[b][:, start:start + WINDOW_FRAMES] for b in songs]).to(device)
    x0 = torch.cat([noise[b][w] for b in songs]).to(device)
    incontext = torch.zeros_like(x0)
    n_ctx = 0 if w == 0 else OVERLAP_LATENTS
    if n_ctx:
        incontext[:, :n_ctx] = torch.stack([previous[b][-n_ctx:] for b in songs])
    condition = fm.condition(window_codes).float()
    latents = solve_euler(fm.estimator, x0, incontext, n_ctx, condition, steps, guidance, after_step)
    for i, b in enumerate(songs):
        plan = plans[b]
        previous[b] = latents[i]
        begin = plan.sample_start(w)
        needed = min(plan.window_samples, plan.output_samples - begin)
        if needed > 0:
            audio = _latent_to_audio(codec, latents[i], needed)
            _crossfade_into(out[b], audio, begin, plan.overlap_samples, first=(w == 0))


@torch.no_grad()  # not inference_mode: callers may edit the returned tensor in place
def decode(
    codec: HeartCodec,
    codes: torch.Tensor,
    lengths=None,
    *,
    steps: int = 10,
    guidance: float = 1.25,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Decode codes [B, 8, T] (int) to float32 audio [B, 2, N] on the CPU.

    ``lengths`` (per song, in frames) marks the real part of each row; the output is padded with
    zeros to the longest song. ``generator`` is a CPU torch.Generator (None: the global one).
    ``on_step(done, total)`` runs after every Euler step, ``check_cancel()`` at the same points.
    """
    cfg = codec.config
    check_decoding(steps, guidance)
    if isinstance(codes, torch.Tensor) and codes.dim() == 2:
        codes = codes[None]  # one song [8, T]
    codes, lengths = check_codes(codes, lengths, codebooks=cfg.num_quantizers, codebook_size=cfg.codebook_size)
    if check_cancel is not None:
        check_cancel()
    plans = [plan_windows(n, cfg.sample_rate) for n in lengths]
    noise = _draw_noise(plans, codec.flow_matching.latent_dim, generator)
    padded_codes = [_tiled(codes[b, :, :n], plans[b].padded_frames) for b, n in enumerate(lengths)]
    out = torch.zeros(len(lengths), 2, max(p.output_samples for p in plans))
    windows = max(p.windows for p in plans)
    after_step = _step_counter(windows * steps, on_step, check_cancel)
    previous: dict[int, torch.Tensor] = {}
    for w in range(windows):
        _decode_window(codec, w, plans, padded_codes, noise, previous, out, steps, guidance, after_step)
        if check_cancel is not None:
            check_cancel()
    # rows are padded with zeros to the longest song: nothing is written past a song's own length
    return out


def estimate_decode_bytes(config: CodecConfig, batch: int, dtype: torch.dtype = torch.float32,
                          frames: int | None = None) -> int:
    """Rough peak activation memory of ``decode`` for ``batch`` songs (weights not included).

    Transformer: the doubled (guidance) batch over one 744-frame window, with the widest stack's
    projections, MLP and attention scores alive at once. Conv decoder: one window of one song at
    a time; the widest layer with a few temporaries, only over the samples a song shorter than one
    window needs (``frames``: the longest song). The larger of the two, plus window buffers.
    """
    elt = torch.empty((), dtype=dtype).element_size()
    rows = 2 * batch
    t = WINDOW_LATENTS
    wide = 2 * config.inner_dim
    transformer = rows * t * (config.in_channels + 6 * wide + 3 * mlp_hidden(wide)) * elt
    transformer += rows * config.num_attention_heads * t * t * 4
    scalar = 0
    length, n_up = t, len(config.upsample_factors)
    for i, factor in enumerate(config.upsample_factors):
        length *= factor
        scalar = max(scalar, config.init_channel * 2 ** (n_up - i - 1) * length)
    scalar = max(scalar, config.init_channel * length * config.num_samples)
    scalar *= 2 * 4 * 4  # two channels, float32, ~4 live tensors
    if frames is not None:
        scalar = scalar * min(1.0, frames / WINDOW_FRAMES)
    buffers = batch * 6 * t * config.out_channels * 4  # noise, in-context, latents, condition
    return int(max(transformer, scalar) + buffers)
