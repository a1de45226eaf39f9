"""OUTDIR/manifest.jsonl: one line per finished job, appended after its files are in place.

A job is done exactly when its line is in the manifest, so a rerun skips those and redoes the rest
(its files, if any were renamed into place before a crash, are replaced by identical ones). A line
is written with one ``write`` and flushed to disk; a line torn by a crash is the last one, has no
newline, and is cut off on the next start (its job runs again). One run at a time per folder: a
lock file (``fcntl.flock``, where the OS has it) refuses a second one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import HeartMuLaError
from .jobs import Job

MANIFEST = "manifest.jsonl"
LOCK = ".batch.lock"
PARTIAL_PREFIX = ".partial-"  # heartmula_core.atomic.atomic_write's temporary files


class ManifestError(HeartMuLaError):
    """The output folder's manifest is unreadable, disagrees with the jobs file, or is in use."""


def prompt_digest(job: Job) -> str:
    return hashlib.sha256(f"{job.tags}\0{job.lyrics}".encode("utf-8")).hexdigest()[:16]


class Manifest:
    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / MANIFEST

    def load(self) -> dict[str, dict]:
        """Finished jobs by id; cuts off a torn last line first."""
        if not self.path.is_file():
            return {}
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(keep)
            data = data[:keep]
        done = {}
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                done[entry["id"]] = entry
            except (ValueError, KeyError, TypeError):
                raise ManifestError(f"{self.path} line {number} is not a manifest entry; fix or delete that line "
                                    "(its job will run again).") from None
        return done

    def append(self, entry: dict) -> None:
        line = (json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def check_against_manifest(jobs: list[Job], done: dict[str, dict], manifest_path: Path) -> None:
    """A finished job whose line changed since would be silently skipped: refuse instead."""
    problems = []
    for job in jobs:
        entry = done.get(job.id)
        if entry is None:
            continue
        changed = [k for k, v in job.recorded().items() if entry.get("settings", {}).get(k) != v]
        if entry.get("prompt_sha256") != prompt_digest(job):
            changed.append("tags/lyrics")
        if changed:
            problems.append(f"  line {job.line}: job '{job.id}' is finished in the manifest with other "
                            f"{', '.join(changed)}")
    if problems:
        raise ManifestError(
            f"{len(problems)} job(s) differ from the finished ones in {manifest_path}:\n" + "\n".join(problems)
            + "\nTo redo them, delete their lines from the manifest (and their files), or write to a new --out folder.")


def remove_partials(out_dir: Path) -> list[str]:
    """Temporary files a killed run left behind (never complete outputs; see atomic.atomic_write)."""
    removed = []
    for path in sorted(out_dir.glob(PARTIAL_PREFIX + "*")):
        if path.is_file():
            path.unlink()
            removed.append(path.name)
    return removed


class OutputLock:
    """Hold OUTDIR/.batch.lock for the whole run, so two runs never write one folder."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOCK
        self.fd = None

    def __enter__(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock
            return self
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise ManifestError(f"Another batch run is writing to {self.path.parent}; wait for it to finish "
                                "or use another --out folder.") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None
