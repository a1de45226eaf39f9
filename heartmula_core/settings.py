"""Checks of the numbers a user sets (seconds, seed, temperature, guidance, steps, batch size).

NaN passes every ``<`` / ``>`` range check, so a NaN guidance scale once ran a whole song of token 0
and an infinite temperature a one-frame song. Each setting is checked here, by name, before any
work starts; ``name`` is what the user typed it as (``--cfg`` on the command line, ``cfg_scale``
in a node), so the message points at the right box.
"""

from __future__ import annotations

import math
import numbers

import torch

from .errors import SettingsError

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes an unsigned 64-bit seed
TEMPERATURE_RANGE = (1e-3, 100.0)  # beyond these, logits / temperature overflows float32
GUIDANCE_RANGE = (0.0, 100.0)  # (cond - uncond) * scale overflows soon after
MAX_STEPS = 1000
MAX_SECONDS = 86400


def number(value, name: str, low: float, high: float, hint: str = "") -> float:
    """A finite real number in [low, high] (bools are refused: True is not a setting)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingsError(f"{name} must be a number between {low:g} and {high:g}, got {value!r}.{hint}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise SettingsError(f"{name} must be a finite number between {low:g} and {high:g}, got {value}.{hint}")
    return value


def whole(value, name: str, low: int, high: int | None = None, hint: str = "") -> int:
    """An integer in [low, high] (a float such as 2.0 is accepted, 2.5 or NaN are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            (isinstance(value, float) and not value.is_integer()):
        raise SettingsError(f"{name} must be a whole number >= {low}, got {value!r}.{hint}")
    value = int(value)
    if value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise SettingsError(f"{name} must be {span}, got {value}.{hint}")
    return value


def check_seed(seed, name: str = "seed") -> int:
    return whole(seed, name, 0, MAX_SEED, " Any seed from 0 to 2**64-1 works; the same seed gives the same result.")


def seeded_generator(seed, device="cpu", name: str = "seed") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (checked: 0 .. 2**64-1, each reproducible)."""
    return torch.Generator(device=device).manual_seed(check_seed(seed, name))


def check_seconds(seconds, name: str = "seconds") -> float:
    """A positive, finite length; at most a day, so that seconds x 12.5 frames stays a number (the
    model's context then says how much really fits)."""
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not math.isfinite(float(seconds)) \
            or not 0 < float(seconds) <= MAX_SECONDS:
        raise SettingsError(f"{name} must be a positive, finite number of seconds (at most {MAX_SECONDS}), "
                            f"got {seconds!r}.")
    return float(seconds)


def check_sampling(temperature, top_k, cfg_scale, batch_size, names: dict[str, str] | None = None) -> None:
    """The LM's sampling settings; ``names`` maps a parameter to what the user calls it."""
    n = {"temperature": "temperature", "top_k": "top-k", "cfg_scale": "cfg_scale", "batch_size": "batch size",
         **(names or {})}
    number(temperature, n["temperature"], *TEMPERATURE_RANGE, " Use top-k 1 for greedy sampling.")
    whole(top_k, n["top_k"], 1)
    number(cfg_scale, n["cfg_scale"], *GUIDANCE_RANGE, " 1.0 turns guidance off; 1.5 is the default.")
    whole(batch_size, n["batch_size"], 1)


def check_decoding(steps, guidance, names: dict[str, str] | None = None) -> None:
    """The codec's decoding settings."""
    n = {"steps": "steps", "guidance": "guidance", **(names or {})}
    whole(steps, n["steps"], 1, MAX_STEPS, " 10 is the default.")
    number(guidance, n["guidance"], *GUIDANCE_RANGE, " 1.0 turns guidance off; 1.25 is the default.")
