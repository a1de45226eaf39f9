"""Keeping the best of several takes: one weighted total per take (``weight * score`` summed over the
scores given, NaN counting as the worst), the highest total wins (the first of equals), and the
winner is trimmed to its own length: to its codes' length when the takes' codes are given, else to
the last sample that is not the zero padding of its batch.

Pick Best Take (nodes/scoring.py) is a thin wrapper; anything else that scores takes (a script, a
batch of jobs) gets the same rule here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import HeartMuLaError
from .audio_in import audible_length


@dataclass(frozen=True)
class Take:
    """One song: its waveform [C, N] and rate, and (optional) its codes [8, T] with ``frames`` real."""

    waveform: torch.Tensor
    sample_rate: int
    codes: torch.Tensor | None = None
    frames: int | None = None
    frame_rate: float | None = None


@dataclass(frozen=True)
class Best:
    """The winning take, trimmed, its index and every take's weighted total."""

    index: int
    take: Take
    totals: list[float]


def weighted_totals(scores: list[list[float]], weights: list[float]) -> list[float]:
    """Sum of weight * score per take; NaN counts as the worst possible."""
    totals = [sum(w * float(s[i]) for s, w in zip(scores, weights)) for i in range(len(scores[0]))]
    return [-math.inf if math.isnan(t) else t for t in totals]


def trimmed(take: Take) -> Take:
    """The take without what follows the song: past its codes' length, or the zero padding of its batch."""
    wave = take.waveform
    if take.codes is None:
        end = audible_length(wave) or wave.shape[-1]
        return Take(wave[:, :end], take.sample_rate)
    end = int(round(take.frames * take.sample_rate / take.frame_rate))
    return Take(wave[:, :end], take.sample_rate, take.codes[:, : take.frames].clone(), take.frames, take.frame_rate)


def pick_best(takes: list[Take], scores: dict[str, list[float]], weights: dict[str, float]) -> Best:
    """The take with the highest weighted total of ``scores`` (name -> one value per take)."""
    for name, values in scores.items():
        if len(values) != len(takes):
            raise HeartMuLaError(f"{name} has {len(values)} values for {len(takes)} takes. Score the same batch of "
                                 "audio that is given as the takes.")
    totals = weighted_totals(list(scores.values()), [weights[name] for name in scores])
    best = max(range(len(totals)), key=lambda i: (totals[i], -i))
    return Best(best, trimmed(takes[best]), totals)


def describe(best: Best, scores: dict[str, list[float]], short: dict[str, str] | None = None) -> str:
    """One line per take: its scores, its total, and which won."""
    short = short or {}
    lines = []
    for i, total in enumerate(best.totals):
        parts = ", ".join(f"{short.get(name, name)} {values[i]:.4f}" for name, values in scores.items())
        lines.append(f"take {i}: {parts} -> {total:.4f}{'  <- best' if i == best.index else ''}")
    return "\n".join(lines)
