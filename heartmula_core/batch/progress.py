"""One progress bar for a whole batch run, in songs, with songs per hour; silent when not a terminal."""

from __future__ import annotations

import sys
import time


class RunProgress:
    def __init__(self, total_songs: int, stream=None):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.songs = 0
        # disable=None: tqdm turns itself off when the stream is not a terminal (logs stay clean)
        self.bar = tqdm(total=total_songs, unit="song", desc="batch", file=self.stream, disable=None,
                        smoothing=0, dynamic_ncols=True)

    def songs_per_hour(self) -> float:
        return 3600.0 * self.songs / max(time.perf_counter() - self.start, 1e-9)

    def advance(self, songs: int) -> None:
        self.songs += songs
        self.bar.set_postfix_str(f"{self.songs_per_hour():.0f} songs/h", refresh=False)
        self.bar.update(songs)

    def say(self, message: str) -> None:
        """A line above the bar (printed even when the bar is silent)."""
        self.bar.write(message, file=self.stream)

    def close(self) -> None:
        self.bar.close()
