"""How a song's codes are cut into overlapping decode windows (the official detokenize layout).

A window covers 29.76 s: 372 code frames = 744 latent frames. Windows start every 320 code frames,
so neighbours share 52 code frames (104 latent frames): the end of one window's latent becomes the
in-context start of the next, and their audio is cross-faded over the shared part. Songs shorter
than a window, or not ending on a whole hop, are filled by repeating their codes from the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..codes import FRAME_RATE, samples_for

WINDOW_SECONDS = 29.76
WINDOW_FRAMES = int(WINDOW_SECONDS * FRAME_RATE)  # 372
HOP_FRAMES = WINDOW_FRAMES // 93 * 80  # 320
OVERLAP_FRAMES = WINDOW_FRAMES - HOP_FRAMES  # 52
LATENTS_PER_FRAME = 2
WINDOW_LATENTS = WINDOW_FRAMES * LATENTS_PER_FRAME  # 744
OVERLAP_LATENTS = OVERLAP_FRAMES * LATENTS_PER_FRAME  # 104


@dataclass(frozen=True)
class WindowPlan:
    frames: int  # true length of the song in code frames
    padded_frames: int  # after repetition: OVERLAP + k * HOP, at least one window
    windows: int
    sample_rate: int

    @property
    def window_samples(self) -> int:
        return int(WINDOW_SECONDS * self.sample_rate)

    @property
    def hop_samples(self) -> int:
        return self.window_samples // 93 * 80

    @property
    def overlap_samples(self) -> int:
        return self.window_samples - self.hop_samples

    @property
    def output_samples(self) -> int:
        """Samples returned for the song: its true duration."""
        return samples_for(self.frames, self.sample_rate)

    def frame_start(self, window: int) -> int:
        return window * HOP_FRAMES

    def sample_start(self, window: int) -> int:
        return window * self.hop_samples


def plan_windows(frames: int, sample_rate: int) -> WindowPlan:
    """Window layout for a song of ``frames`` code frames.

    One deliberate difference from the official code: it tests ``(len - 2*overlap) % hop`` but pads
    to ``overlap + k*hop``, so a length of 104 + k*320 frames is not padded and its last 4 s are
    never decoded (the output comes back short). Here every length is padded to ``overlap + k*hop``;
    for every other length the two agree exactly.
    """
    if frames < 1:
        raise ValueError("a song needs at least one code frame")
    padded = max(frames, WINDOW_FRAMES)
    if (padded - OVERLAP_FRAMES) % HOP_FRAMES:
        padded = math.ceil((padded - OVERLAP_FRAMES) / HOP_FRAMES) * HOP_FRAMES + OVERLAP_FRAMES
    windows = (padded - OVERLAP_FRAMES) // HOP_FRAMES
    return WindowPlan(frames, padded, windows, sample_rate)
