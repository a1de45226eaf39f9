"""Top-k / temperature sampling that stays on the device (no host synchronisation).

A categorical draw is taken as argmax(p / q) with q ~ Exponential(1): the exponential race gives
exactly the softmax distribution, needs no cumulative sums, and draws one noise tensor shaped like
the probabilities from the caller's generator, the same draws the reference implementation makes.
"""

from __future__ import annotations

import torch


def draw_race(generator: torch.Generator, codebooks: int, songs: int, vocab: int, device) -> torch.Tensor:
    """All the noise one frame needs, [codebooks, songs, vocab], in one call. On the CPU this is the
    same stream as one [songs, vocab] draw per codebook, the order the reference implementation uses."""
    return torch.empty(codebooks, songs, vocab, device=device).exponential_(1.0, generator=generator)


def sample_top_k(logits: torch.Tensor, top_k: int, temperature: float, race: torch.Tensor,
                 allowed: torch.Tensor | None = None) -> torch.Tensor:
    """logits [N, V] and Exponential(1) noise [N, V] -> token ids [N] (int64).

    ``allowed`` [V] bool masks ids that must never be drawn, before top-k. When no masked id is
    among the k best, the draw is exactly the unmasked one (same p / q, same argmax)."""
    logits = logits.float() / temperature
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    k = min(int(top_k), logits.shape[-1])
    kth_best = torch.topk(logits, k, dim=-1).values[..., -1:]
    logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probs = torch.softmax(torch.log_softmax(logits, dim=-1), dim=-1)
    return torch.argmax(probs / race, dim=-1)


def guide(logits: torch.Tensor, songs: int, cfg_scale: float | None) -> torch.Tensor:
    """Rows [cond_0..cond_B-1, uncond_0..uncond_B-1] -> guided rows [B]; no-op without CFG."""
    if cfg_scale is None:
        return logits
    cond, uncond = logits[:songs], logits[songs:]
    return uncond + (cond - uncond) * cfg_scale
