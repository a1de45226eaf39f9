"""The codes of the songs being written, on the run device, and when each song ends.

All rows share one frame slot per step. Songs continued from prefixes of different lengths are
left-padded (prefix.py), so row b's frame f sits in slot ``pads[b] + f`` and each row reaches the
length limit at its own slot; songs written from scratch have no padding and one limit.
"""

from __future__ import annotations

import torch

from .prefix import Prefix


class SongCodes:
    """Codes [B, n, slots] being filled slot by slot, each song's end, and the trimmed result."""

    def __init__(self, songs: int, codebooks: int, max_frames: int, eos_id: int, device,
                 prefix: Prefix | None = None):
        self.eos_id = eos_id
        if prefix is None:
            self.pads, self.first = torch.zeros(songs, dtype=torch.long), 0
            self.codes = torch.zeros(songs, codebooks, max_frames, dtype=torch.long, device=device)
        else:
            self.pads, self.first = prefix.pads, prefix.longest
            self.codes = prefix.aligned(max_frames + prefix.spread).to(device)
        # the slot at which each song reaches the length limit; it ends there unless EOS came first
        self.lengths = (self.pads + max_frames).to(device)
        self.limits = self.lengths.clone() if prefix is not None and prefix.spread else None
        self.done = torch.zeros(songs, dtype=torch.bool, device=device)

    @property
    def slots(self) -> int:
        return self.codes.shape[-1]

    @property
    def kept(self) -> torch.Tensor | None:
        """The kept frames, aligned [B, n, first], for the prefill pass; None without a prefix."""
        return self.codes[:, :, :self.first] if self.first else None

    def record(self, frame: torch.Tensor, slot: int) -> None:
        """Store a sampled frame [R, n] (CFG twins after the songs) in ``slot``; a song that has EOS
        anywhere in it, or reaches its limit, ends there (it keeps running, ignored, until all end)."""
        songs = self.codes.shape[0]
        song_frame = frame[:songs]
        self.codes[:, :, slot] = song_frame
        ended = (song_frame == self.eos_id).any(dim=-1)
        if self.limits is not None:
            ended |= self.limits <= slot
        ended &= ~self.done
        self.lengths.masked_fill_(ended, slot)
        self.done |= ended

    def all_done(self) -> bool:
        """Whether every song ended (a host read)."""
        return bool(self.done.all())

    def trimmed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """On the CPU: each song from its first frame, cut to the longest, zero past its own length."""
        lengths = self.lengths.cpu() - self.pads
        codes = self.codes.cpu()
        out = torch.zeros(*codes.shape[:2], int(lengths.max()), dtype=torch.long)
        for b, (pad, length) in enumerate(zip(self.pads.tolist(), lengths.tolist())):
            out[b, :, :length] = codes[b, :, pad:pad + length]
        return out, lengths
