"""A one-line progress bar on a terminal; silent when output is redirected."""

from __future__ import annotations

import sys
import time


class TerminalProgress:
    """``progress(done, total)``: redraws the bar in place, ends the line when done."""

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream or sys.stderr  # the stream of now, not of import time
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):  # closed or replaced streams
            self.enabled = False
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:.1f}/s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
