"""Temporary files of ours that a killed process left behind, and only those.

``atomic.py`` writes each output under a temporary name beside it and renames it when complete;
Ctrl-C and SIGTERM remove the temporary file on the way out, but SIGKILL (the OOM killer, a
container stopped hard) or a power cut leave it. The name says whose it is,
``.partial-<host>-<pid>-<random><suffix>`` (host: a short hash of this machine's name), so the next
write into that folder can remove the ones whose process is gone on this machine, and never a file
of the user's, of another machine sharing the folder, or of a run still writing.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path

PREFIX = ".partial-"
HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
NAME = re.compile(r"^\.partial-([0-9a-f]{8})-(\d+)-")


def temp_prefix() -> str:
    """The start of this process's temporary file names."""
    return f"{PREFIX}{HOST}-{os.getpid()}-"


def owner_gone(name: str) -> bool:
    """``name`` is a temporary file of a process of this machine that no longer runs."""
    found = NAME.match(name)
    if not found or found.group(1) != HOST or os.name == "nt":  # Windows: os.kill(pid, 0) would kill it
        return False
    pid = int(found.group(2))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # alive under another user, or no pid at all: keep it
        return False
    return False


def remove_leftovers(folder: str | Path) -> list[str]:
    """Delete the temporary files in ``folder`` whose process is gone; returns their names."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if owner_gone(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:  # gone meanwhile, or not ours to delete after all
            continue
    return sorted(removed)
