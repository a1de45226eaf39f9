"""The batch output folder (``--out``), checked whole before any model loads, and which files in it
a run may replace.

``--out`` must be a folder (created when missing) on a writable disk. ``manifest.jsonl`` and
``.batch.lock``, when there, must be regular files of their own: never a folder, a device or a
link (a run writes them, so a link would have it write into a file elsewhere). A file a pending
job would write must not be there unless a run of this folder wrote it: the finished jobs own
theirs through the manifest, and ``.batch.lock`` lists the files of jobs whose manifest line was
not written yet when a run stopped (``OutputLock.writing``). Anything else with a job's name is the
user's: refused, never replaced.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Iterable

from ..atomic import writable_folder
from ..errors import OutputError
from .jobs import stem_owner

MANIFEST = "manifest.jsonl"
LOCK = ".batch.lock"
MAX_LISTED = 10
_NOT_A_FILE = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def check_out_folder(out: Path) -> None:
    """``--out`` is, or can become, a folder the run can write, holding no odd manifest or lock."""
    blocker = next((p for p in (out, *out.parents) if os.path.lexists(p) and not p.is_dir()), None)
    if blocker == out:
        raise OutputError(f"--out {out} is a file, not a folder. Give a folder for the songs (it is created when "
                          "missing).")
    if blocker is not None:
        raise OutputError(f"--out {out} lies inside the file {blocker}. Give a folder for the songs.")
    writable_folder(out, f"--out {out}")
    for name in (MANIFEST, LOCK):
        _own_file_problem(out / name)


def _own_file_problem(path: Path) -> None:
    """A file a run writes itself must be a regular file with one name, when it exists."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"Cannot read {path}: {exc.strerror}. Check the --out folder.") from None
    what = next((name for test, name in _NOT_A_FILE if test(st.st_mode)), None)
    if what is None and st.st_nlink > 1:
        what = "a file with another name too (a hard link)"
    if what is not None:
        never = " and never writes through a link" if "link" in what else ""
        raise OutputError(f"{path} is {what}; a batch run keeps it as a file of its own{never}. Move it away (a run "
                          "recreates it), or write to another --out folder.")


def open_own(path: Path, flags: int) -> int:
    """Open a file a run writes itself (manifest, lock), never through a link nor anything but a
    regular file (see ``_own_file_problem``); returns the descriptor."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
            _own_file_problem(path)
        raise OutputError(f"Cannot open {path}: {exc.strerror}. Check the --out folder.") from None
    try:
        _own_file_problem(path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutputError(f"{path} is not a regular file. Move it away, or write to another --out folder.")
    except BaseException:
        os.close(fd)
        raise
    return fd


def job_files(stems: Iterable[str], job_id: str, fmt: str) -> list[str]:
    """The files a job writes: its songs' audio (one per stem) and its codes."""
    return [f"{stem}.{fmt}" for stem in stems] + [f"{job_id}.codes.safetensors"]


def writer_of(name: str, by_id: dict, fmt: str):
    """The job of ``by_id`` (jobs by lower-case id) that writes file ``name``, if any (compared
    ignoring case, as macOS and Windows do)."""
    lower = name.lower()
    if lower.endswith(".codes.safetensors"):
        return by_id.get(lower[: -len(".codes.safetensors")])
    if not lower.endswith(f".{fmt}"):
        return None
    stem = lower[: -len(fmt) - 1]
    job = by_id.get(stem)
    return job if job is not None and job.batch == 1 else stem_owner(stem, by_id)


def refuse_foreign(out: Path, jobs, fmt: str, owned: set[str]) -> None:
    """No file a job of ``jobs`` would write is in ``out`` unless a run of this folder wrote it
    (``owned``). The folder is listed once (a job's songs are not: a batch may be huge)."""
    try:
        names = sorted(os.listdir(out))
    except (FileNotFoundError, NotADirectoryError):
        return
    by_id = {job.id.lower(): job for job in jobs}
    found = [(name, job) for name in names if name not in owned for job in [writer_of(name, by_id, fmt)] if job]
    refuse(out, found)


def refuse_before_writing(out: Path, job, names: list[str], owned: set[str]) -> None:
    """The same rule just before ``job``'s files ``names`` are written (a file may have appeared since)."""
    refuse(out, [(name, job) for name in names if name not in owned and os.path.lexists(out / name)])


def refuse(out: Path, found: list) -> None:
    if found:
        listed = [f"  {name} (job '{job.id}', line {job.line})" for name, job in found[:MAX_LISTED]]
        listed += [f"  ... and {len(found) - MAX_LISTED} more"] if len(found) > MAX_LISTED else []
        raise OutputError(f"--out {out} already holds {len(found)} file(s) that jobs of this run would write, and no "
                          "run of this folder wrote them (their jobs are not in its manifest):\n" + "\n".join(listed)
                          + "\nThey are never replaced: move them elsewhere (or delete them), or write to another "
                          "--out folder.")
