"""Continuing saved codes: the frames kept from each song (its prefix), checked against the LM, and
how a batch of prefixes of different lengths is laid out for one prefill pass.

Extending a song keeps all its frames; a variation keeps the first N seconds and writes the rest
anew. Either way the LM reads the prompt and the kept frames in one backbone pass and samples on,
exactly as if it had written the kept frames itself: the backbone input after a frame is the sum of
its 8 token embeddings, so no depth-decoder pass is needed for kept frames.

Layout of a batch (see ``layers.TransformerState``): rows are left-padded to the longest prefix, so
every row's next frame sits in the same cache slot and the frame step keeps one shape for all rows;
each row's RoPE positions and attention ignore its padding. The price is ``spread`` (longest minus
shortest prefix) extra cache slots per row. Running rows of equal length one group after another
would cost a generation per group; per-row slots would make the frame step scatter into the cache.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from ..codes import FRAME_RATE, check_codes
from ..errors import SettingsError
from .vocab import audio_vocab


@dataclass(frozen=True)
class Prefix:
    """The kept frames of each song: ``codes`` [B, n, K] int64 on the CPU, ``lengths[b]`` of row b
    kept (1..K); frames past a row's length are ignored."""

    codes: torch.Tensor
    lengths: list[int]

    @property
    def longest(self) -> int:
        return max(self.lengths)

    @property
    def spread(self) -> int:
        """Padding the shortest row gets: extra cache slots every row carries."""
        return max(self.lengths) - min(self.lengths)

    def repeated_lengths(self, times: int) -> list[int]:
        """The kept frames of each row of ``repeated(times)``, without copying any codes (a check of a
        thousand continuations of a long song must not allocate them)."""
        return [n for n in self.lengths for _ in range(times)]

    def repeated(self, times: int) -> "Prefix":
        """Each song ``times`` times in a row (song 0, song 0, ..., song 1, ...): one take per variation."""
        return Prefix(self.codes.repeat_interleave(times, dim=0), self.repeated_lengths(times))

    @property
    def pads(self) -> torch.Tensor:
        """Padding slots before each row's kept frames [B]: rows end together at slot ``longest``."""
        return torch.tensor([self.longest - k for k in self.lengths], dtype=torch.long)

    def aligned(self, frames: int) -> torch.Tensor:
        """Codes [B, n, frames] holding row b's kept frames in slots pads[b] .. longest-1, zeros elsewhere."""
        rows, n = self.codes.shape[:2]
        out = torch.zeros(rows, n, frames, dtype=torch.long)
        for b, (pad, k) in enumerate(zip(self.pads.tolist(), self.lengths)):
            out[b, :, pad:pad + k] = self.codes[b, :, :k]
        return out


def prefill_order(prompt_length: int, pads: torch.Tensor, longest: int) -> torch.Tensor:
    """Which input each prefill slot takes, [B, S + longest], indexing the concatenation of the prompt
    (S inputs) and the aligned kept frames (``longest``): row b holds its padding first, then the
    prompt, then its frames, so its last input sits in the last slot like every other row's."""
    slots = torch.arange(prompt_length + longest)[None]
    pads = pads[:, None]
    in_prompt = (slots >= pads) & (slots < pads + prompt_length)
    # padding slots take frame inputs of the padding (zeros: finite, and never attended to)
    return torch.where(in_prompt, slots - pads, torch.where(slots < pads, prompt_length + slots, slots))


def check_prefix(codes, lengths, codebooks: int, codebook_size: int, where: str = "continue_from") -> Prefix:
    """Codes to continue, checked against the LM: integer ids of this LM's codebooks, lengths 1..T."""
    codes, lengths = check_codes(codes, lengths, where, codebooks, codebook_size)
    return Prefix(codes, list(lengths))


def kept_per_song(prefix: Prefix | None, config, eos_id: int, codebook_size: int | None = None,
                  where: str = "continue_from") -> list[int]:
    """Before the weights load: the prefix holds this LM's codes (``config``: a HeartMuLaConfig); the
    frames kept of each of its songs (empty for new songs), which ``budget.check_fits`` and the memory
    estimate count. (Not per song written: a batch of each may be huge until memory is checked.)"""
    if prefix is None:
        return []
    vocab = audio_vocab(config.audio_vocab_size, eos_id, codebook_size)
    check_prefix(prefix.codes, prefix.lengths, config.audio_num_codebooks, vocab.codebook_size, where)
    return list(prefix.lengths)


def kept_lengths(lengths: list[int], keep_seconds, name: str = "keep_seconds") -> list[int]:
    """Frames to keep of each song: all of them for a negative ``keep_seconds`` (-1: extend the songs),
    else the first round(keep_seconds x 12.5) frames (a variation), which every song must have."""
    if isinstance(keep_seconds, bool) or not isinstance(keep_seconds, numbers.Real) \
            or not math.isfinite(float(keep_seconds)):
        raise SettingsError(f"{name} must be a finite number of seconds (-1 keeps whole songs), got {keep_seconds!r}.")
    if keep_seconds < 0:
        return list(lengths)
    keep = int(round(float(keep_seconds) * FRAME_RATE))
    if keep < 1:
        raise SettingsError(f"{name} = {keep_seconds:g} keeps no frame (one frame is {1 / FRAME_RATE:g} s). Keep at "
                            "least one frame, or write a new song with the HeartMuLa Sampler.")
    for b, n in enumerate(lengths):
        if keep > n:
            raise SettingsError(
                f"{name} = {keep_seconds:g} s is longer than song {b} of the codes to continue, which is "
                f"{n / FRAME_RATE:g} s ({n} frames); keep at most {n / FRAME_RATE:g} s, or -1 to keep whole songs.")
    return [keep] * len(lengths)
