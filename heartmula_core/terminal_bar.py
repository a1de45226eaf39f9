"""The one way the command line and the batch runner make a progress bar (tqdm).

The bar writes to the stream of the moment it is made (``sys.stderr`` then, never the one of import
time: a test's captured stream is closed later, and a caller may swap stderr), and it is silent when
that stream is not a terminal or is closed, so logs and pipes get the summary lines only.
"""

from __future__ import annotations

import sys


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, a closed or detached stream
        return False


def stream_now(stream=None):
    """``stream``, or sys.stderr as it is at this call."""
    return sys.stderr if stream is None else stream


def terminal_bar(desc: str, unit: str, total: int | None = None, stream=None, **options):
    """A tqdm bar on ``stream`` (default: sys.stderr as it is now), disabled off a terminal."""
    from tqdm import tqdm

    stream = stream_now(stream)
    return tqdm(total=total, desc=desc, unit=unit, file=stream, disable=not is_terminal(stream),
                dynamic_ncols=True, **options)
