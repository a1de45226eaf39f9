"""The knobs of a song job, each with one name and one range (``KNOBS``), and the settings object
every front door fills (``SongSettings``): the nodes from their widgets, the command line from its
flags, a jobs file from its fields. A door only translates: it maps its spellings to these names
(``--cfg`` and ``cfg`` are ``cfg_scale`` here) and passes that map along, so a message names the
box, flag or field the user typed.

NaN passes every ``<`` / ``>`` range check, so a NaN guidance scale once ran a whole song of token 0
and an infinite temperature a one-frame song: every knob is checked here, before any work starts.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

import torch

from .errors import SettingsError

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes an unsigned 64-bit seed
MAX_SECONDS = 86400  # seconds x 12.5 frames stays a number; the model's context says what fits
WEIGHT_DTYPE_CHOICES = ("default", "fp8_e4m3fn", "fp8_e5m2")


@dataclass(frozen=True)
class Knob:
    """One setting: whole or real, its valid range, the hint its error adds, and the range a node's
    widget offers (``widget``: min, max, step; inside the valid range)."""

    whole: bool
    low: float
    high: float | None  # None: no upper bound (memory and the model's context decide)
    hint: str = ""
    widget: tuple = ()


KNOBS = {
    "seed": Knob(True, 0, MAX_SEED, " Any seed from 0 to 2**64-1 works; the same seed gives the same result.",
                 (0, MAX_SEED, 1)),
    "seconds": Knob(False, 0, MAX_SECONDS, "", (1.0, 600.0, 1.0)),  # > 0: checked by check_seconds
    "temperature": Knob(False, 1e-3, 100.0, " Use top-k 1 for greedy sampling.", (0.05, 4.0, 0.05)),
    "top_k": Knob(True, 1, None, " 50 is the default; 1 always takes the most likely token.", (1, 8192, 1)),
    "cfg_scale": Knob(False, 0.0, 100.0, " 1.0 turns guidance off; 1.5 is the default.", (1.0, 10.0, 0.1)),
    "batch_size": Knob(True, 1, None, " Songs sampled together; memory grows with them.", (1, 64, 1)),
    "keep_seconds": Knob(False, -1.0, MAX_SECONDS, " -1 keeps whole songs.", (-1.0, 600.0, 0.5)),
    "decode_steps": Knob(True, 1, 1000, " 10 is the default.", (1, 100, 1)),
    "decode_guidance": Knob(False, 0.0, 100.0, " 1.0 turns guidance off; 1.25 is the default.", (0.0, 10.0, 0.05)),
    "decode_seed": Knob(True, 0, MAX_SEED, " Any seed from 0 to 2**64-1 works.", (0, MAX_SEED, 1)),
    "lora_strength": Knob(False, -100.0, 100.0, " 1.0 applies a LoRA as trained, 0 turns it off, negative values "
                          "push away from it.", (-100.0, 100.0, 0.01)),
}


def shown(value) -> str:
    """``value`` for a message: a whole number too long to print whole (Python refuses to turn an int
    of over 4300 digits into text) is described by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {value.bit_length() * 0.30103:.0f}-digit number"
    return repr(value)


def number(value, name: str, low: float, high: float, hint: str = "") -> float:
    """A finite real number in [low, high] (bools are refused: True is not a setting)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingsError(f"{name} must be a number between {low:g} and {high:g}, got {shown(value)}.{hint}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float's range
        value = math.inf
    if not math.isfinite(value) or not low <= value <= high:
        raise SettingsError(f"{name} must be a finite number between {low:g} and {high:g}, got {value}.{hint}")
    return value


def whole(value, name: str, low: int, high: int | None = None, hint: str = "") -> int:
    """An integer in [low, high] (a float such as 2.0 is accepted, 2.5 or NaN are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            (isinstance(value, float) and not value.is_integer()):
        raise SettingsError(f"{name} must be a whole number >= {low}, got {shown(value)}.{hint}")
    value = int(value)
    if value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise SettingsError(f"{name} must be {span}, got {shown(value)}.{hint}")
    return value


def check(knob: str, value, name: str | None = None):
    """``value`` of ``knob`` in its range (``name``: what the user called it; default the knob's)."""
    k, name = KNOBS[knob], name or knob
    if knob == "seconds":
        return check_seconds(value, name)
    if k.whole:
        return whole(value, name, int(k.low), None if k.high is None else int(k.high), k.hint)
    return number(value, name, k.low, k.high, k.hint)


def check_seed(seed, name: str = "seed") -> int:
    return check("seed", seed, name)


def seeded_generator(seed, device="cpu", name: str = "seed") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (checked: 0 .. 2**64-1, each reproducible)."""
    return torch.Generator(device=device).manual_seed(check_seed(seed, name))


def _finite_in(value, low: float, high: float) -> bool:
    """low < value <= high for a finite real (an int too large for a float is not)."""
    try:
        value = float(value)
    except OverflowError:
        return False
    return math.isfinite(value) and low < value <= high


def check_seconds(seconds, name: str = "seconds") -> float:
    """A positive, finite length; at most a day, so that seconds x 12.5 frames stays a number (the
    model's context then says how much really fits)."""
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not _finite_in(seconds, 0, MAX_SECONDS):
        raise SettingsError(f"{name} must be a positive, finite number of seconds (at most {MAX_SECONDS}), "
                            f"got {shown(seconds)}.")
    return float(seconds)


def check_weight_dtype(value, name: str = "weight_dtype") -> str:
    if value not in WEIGHT_DTYPE_CHOICES:
        raise SettingsError(f"{name} must be one of {', '.join(WEIGHT_DTYPE_CHOICES)}, got {value!r}.")
    return value


def check_sampling(temperature, top_k, cfg_scale, batch_size, names: Mapping[str, str] | None = None) -> None:
    """The LM's sampling settings (a library caller's guard; the doors check a SongSettings)."""
    n = {"top_k": "top-k", "batch_size": "batch size", **(names or {})}
    for knob, value in (("temperature", temperature), ("top_k", top_k), ("cfg_scale", cfg_scale),
                        ("batch_size", batch_size)):
        check(knob, value, n.get(knob))


def check_decoding(steps, guidance, names: Mapping[str, str] | None = None) -> None:
    """The codec's decoding settings."""
    n = names or {}
    check("decode_steps", steps, n.get("decode_steps", "steps"))
    check("decode_guidance", guidance, n.get("decode_guidance", "guidance"))


def check_loras(loras, name: str = "loras") -> tuple:
    """((file or folder, strength), ...) with each strength a finite number in the knob's range."""
    if not isinstance(loras, (tuple, list)) or not all(isinstance(x, (tuple, list)) and len(x) == 2 for x in loras):
        raise SettingsError(f"{name} must be (LoRA file or folder, strength) pairs, got {shown(loras)}.")
    checked = []
    for path, strength in loras:
        if not isinstance(path, (str, Path)) or not str(path):
            raise SettingsError(f"{name}: {shown(path)} is not a LoRA file or folder.")
        checked.append((path, check("lora_strength", strength, f"{name} strength")))
    return tuple(checked)


@dataclass(frozen=True)
class SongSettings:
    """Everything a front door offers for one song job, under the core's names. ``continue_from``:
    a codes file whose songs are continued (the nodes pass codes instead); ``keep_seconds``: how much
    of each to keep (None or -1: all); ``decode_seed`` None: ``seed``; ``weight_dtype``: how the
    command line and jobs hold the weights (a node's loader decides that inside ComfyUI);
    ``loras``: adapters merged into the LM, (file or folder, strength) pairs."""

    seed: int = 0
    seconds: float = 30.0
    temperature: float = 1.0
    top_k: int = 50
    cfg_scale: float = 1.5
    batch_size: int = 1
    continue_from: str | Path | None = None
    keep_seconds: float | None = None
    decode_steps: int = 10
    decode_guidance: float = 1.25
    decode_seed: int | None = None
    weight_dtype: str = "default"
    loras: tuple = ()

    def checked(self, names: Mapping[str, str] | None = None) -> "SongSettings":
        """Every knob in its range, named as ``names`` maps it (the door's spelling); a copy with
        numbers of one type each (floats as float, whole numbers as int)."""
        n = names or {}
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in KNOBS and value is not None:
                values[f.name] = check(f.name, value, n.get(f.name))
        if self.keep_seconds is not None and self.continue_from is None:
            raise SettingsError(f"{n.get('keep_seconds', 'keep_seconds')} says how much of a song to keep; give the "
                                f"song with {n.get('continue_from', 'continue_from')}.")
        check_weight_dtype(self.weight_dtype, n.get("weight_dtype"))
        return replace(self, **values, loras=check_loras(self.loras, n.get("loras", "loras")))

    @property
    def decoder_seed(self) -> int:
        """The decoder's seed: ``decode_seed``, else the song's ``seed``."""
        return self.seed if self.decode_seed is None else self.decode_seed
