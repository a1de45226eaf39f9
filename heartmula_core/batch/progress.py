"""One progress bar for a whole batch run, in songs, with songs per hour; silent when not a terminal."""

from __future__ import annotations

import time

from ..terminal_bar import stream_now, terminal_bar


class RunProgress:
    def __init__(self, total_songs: int, stream=None):
        self.stream = stream_now(stream)  # messages go where the bar goes
        self.start = time.perf_counter()
        self.songs = 0
        self.bar = terminal_bar("batch", "song", total=total_songs, stream=self.stream, smoothing=0)

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
