"""The progress bar of ``sample``, ``decode`` and ``generate``: a ``(done, total)`` callback for
``on_frame`` / ``on_step`` on a tqdm bar (terminal_bar.py: silent when stderr is not a terminal)."""

from __future__ import annotations

from ..terminal_bar import stream_now, terminal_bar


class StepBar:
    """``bar(done, total)`` moves the bar to ``done``; a call with ``done >= total`` completes and
    closes it, also with a total smaller than the one announced (songs that all ended early:
    ``bar(frames_run, frames_run)``). As a context manager it is closed however the block ends,
    so an error line never starts in the middle of a bar."""

    def __init__(self, label: str, unit: str, stream=None):
        self.label, self.unit = label, unit
        self.stream = stream_now(stream)  # stderr of now; the bar itself starts at the first call (its total)
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = terminal_bar(self.label, self.unit, total=total, stream=self.stream)
        elif self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "StepBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
