"""OUTDIR/manifest.jsonl: one line per finished job, appended after its files are in place.

A job is done exactly when its line is in the manifest, so a rerun skips those and redoes the rest.
A line is written with one ``write`` and flushed to disk; a line torn by a crash is the last one, has
no newline, and is cut off on the next start (its job runs again), but only once every whole line
was read as a manifest entry: a file that is not a manifest is never cut. The manifest and the lock
are opened as files of their own, never through a link (out_folder.py). One run at a time per
folder: a lock file (``fcntl.flock``, where the OS has it) refuses a second one; it also lists the
files of jobs being written (``OutputLock.writing``), so a rerun after a kill at any point knows
those files as its own and replaces them, and no file of the user's.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from ..atomic import OutputTarget, as_output_error
from ..errors import HeartMuLaError
from ..leftovers import remove_leftovers
from .jobs import Job, json_problem
from .out_folder import LOCK, MANIFEST, open_own

__all__ = ["LOCK", "MANIFEST", "Manifest", "ManifestError", "OutputLock", "check_against_manifest",
           "prompt_digest", "remove_partials"]


class ManifestError(HeartMuLaError):
    """The output folder's manifest is unreadable, disagrees with the jobs file, or is in use."""


def prompt_digest(job: Job) -> str:
    return hashlib.sha256(f"{job.tags}\0{job.lyrics}".encode("utf-8")).hexdigest()[:16]


def entry_problem(entry) -> str | None:
    """What keeps a parsed line from being a manifest entry (None: it is one)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        return "it is not a JSON object with an 'id'"
    if not isinstance(entry.get("settings", {}), dict):
        return "its 'settings' is not a JSON object"
    audio = entry.get("audio", [])
    if not isinstance(audio, list) or not all(isinstance(a, str) for a in audio):
        return "its 'audio' is not a list of file names"
    return None


def parse_line(text: str):
    """A JSON line, or a ValueError saying why not in words (Python's own limits included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(json_problem(exc)) from None


class Manifest:
    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / MANIFEST

    def load(self) -> dict[str, dict]:
        """Finished jobs by id; a torn last line is cut off once every whole line was read."""
        if not os.path.lexists(self.path):
            return {}
        fd = open_own(self.path, os.O_RDWR)
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
            whole = data[: data.rfind(b"\n") + 1]
            done = self._entries(whole)
            tail = data[len(whole):]
            if tail.strip():
                last = self._repair(fd, whole, tail, whole.count(b"\n") + 1)
                done.update({last["id"]: last} if last else {})
        finally:
            os.close(fd)
        return done

    def _entries(self, data: bytes) -> dict[str, dict]:
        done = {}
        for number, line in enumerate(data.decode("utf-8", errors="replace").split("\n"), start=1):  # as jobs.py
            if not line.strip():
                continue
            try:
                entry = parse_line(line)
            except ValueError as exc:
                raise ManifestError(f"{self.path} line {number} is not a manifest entry ({exc}); fix or delete that "
                                    "line (its job will run again).") from None
            problem = entry_problem(entry)
            if problem:
                raise ManifestError(f"{self.path} line {number} is not a manifest entry ({problem}); fix or delete "
                                    "that line (its job will run again).")
            done[entry["id"]] = entry
        return done

    def _repair(self, fd: int, whole: bytes, tail: bytes, number: int) -> dict | None:
        """A last line without its newline: a whole entry gets the newline (and is returned), an
        append a crash tore (the start of an entry) is cut off; anything else is the user's to fix."""
        try:
            last = parse_line(tail.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            last = None  # no whole JSON value: an append a crash tore, or not a manifest line
        complete = last is not None
        if complete and entry_problem(last):  # whole, so not torn: never cut off, as no whole line is
            raise ManifestError(f"{self.path} line {number} is not a manifest entry ({entry_problem(last)}); fix "
                                "or delete that line (its job will run again).")
        start = tail.lstrip()
        if not complete and not (start.startswith(b'{"id"') or b'{"id"'.startswith(start)):
            raise ManifestError(f"{self.path} ends in a line that is not a manifest entry (line {number}); fix or "
                                "delete that line, or write to another --out folder.")
        try:
            if complete:
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, b"\n")
            else:
                os.ftruncate(fd, len(whole))
            os.fsync(fd)
        except OSError as exc:
            raise as_output_error(OutputTarget(self.path, self.path, what="batch manifest"), exc) from exc
        return last if complete else None

    def append(self, entry: dict) -> None:
        """One line, written whole or not at all (a failed write is cut back off)."""
        line = (json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        fd = open_own(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            size = os.fstat(fd).st_size
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise as_output_error(OutputTarget(self.path, self.path, what="batch manifest"), exc) from exc
        finally:
            os.close(fd)


def run_weights(weight_dtype: str = "default", loras=()) -> dict:
    """How a run holds the LM's and the codec's weights (``--weight-dtype``, ``--lora``): recorded with
    each finished job, since the same line gives another song with other weights."""
    return {"weight_dtype": weight_dtype, "loras": [[str(path), float(strength)] for path, strength in loras]}


def _weights_differ(job: Job, entry: dict, weights: dict | None) -> str | None:
    made = entry.get("weights", run_weights())  # entries of runs before weights were recorded: the defaults
    if weights is None or made == weights:
        return None
    return (f"  line {job.line}: job '{job.id}' is finished in the manifest with other weights "
            f"(--weight-dtype {made.get('weight_dtype')}, LoRAs {made.get('loras') or 'none'}; this run: "
            f"--weight-dtype {weights['weight_dtype']}, LoRAs {weights['loras'] or 'none'})")


def check_against_manifest(jobs: list[Job], done: dict[str, dict], manifest_path: Path, fmt: str | None = None,
                           weights: dict | None = None) -> None:
    """A finished job whose line changed since, that was written in another ``fmt`` or made with
    other ``weights`` (``run_weights``), would be silently skipped: refuse instead."""
    problems = []
    for job in jobs:
        entry = done.get(job.id)
        if entry is None:
            continue
        problems.append(_weights_differ(job, entry, weights))
        changed = [k for k, v in job.recorded().items() if entry.get("settings", {}).get(k) != v]
        if entry.get("prompt_sha256") != prompt_digest(job):
            changed.append("tags/lyrics")
        if changed:
            problems.append(f"  line {job.line}: job '{job.id}' is finished in the manifest with other "
                            f"{', '.join(changed)}")
        audio = entry.get("audio")
        if fmt and audio and not all(name.endswith(f".{fmt}") for name in audio):
            problems.append(f"  line {job.line}: job '{job.id}' is finished in the manifest as {audio[0]}, not as "
                            f"--format {fmt}")
    problems = [p for p in problems if p]
    if problems:
        raise ManifestError(
            f"{len(problems)} job(s) differ from the finished ones in {manifest_path}:\n" + "\n".join(problems)
            + "\nRun with the settings, weights and --format they were made with; to redo them, delete their lines from the "
            "manifest (and their files), or write to a new --out folder.")


def remove_partials(out_dir: Path) -> list[str]:
    """Temporary files a killed run left behind (never complete outputs, never a file not ours:
    leftovers.py)."""
    return remove_leftovers(out_dir)


class OutputLock:
    """Hold OUTDIR/.batch.lock for the whole run, so two runs never write one folder. Its content
    lists the files written for jobs whose manifest line is not there yet (``owned``): a run that
    stopped between renaming a job's files and appending its line left them, and they are the
    run's to replace."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOCK
        self.fd = None
        self.owned: set[str] = set()
        self.made: list[Path] = []  # what taking the lock created: the lock file, then folders, deepest first

    def __enter__(self) -> "OutputLock":
        folder = self.path.parent
        self.made = [p for p in (self.path, folder, *folder.parents) if not os.path.lexists(p)]
        folder.mkdir(parents=True, exist_ok=True)
        self.fd = open_own(self.path, os.O_RDWR | os.O_CREAT)
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock
            fcntl = None
        try:
            if fcntl is not None:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise ManifestError(f"Another batch run is writing to {self.path.parent}; wait for it to finish "
                                "or use another --out folder.") from None
        self.owned = self._read_owned()
        return self

    def _read_owned(self) -> set[str]:
        with os.fdopen(os.dup(self.fd), "rb") as f:
            text = f.read(1 << 20)
        try:
            names = parse_line(text.decode("utf-8")) if text.strip() else []
        except (ValueError, UnicodeDecodeError):
            names = []  # not ours: claim nothing
        return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()

    def writing(self, names: list[str], done: bool = False) -> None:
        """Record ``names`` as the run's own before they are written (``done``: their manifest line
        is written, the manifest owns them now)."""
        self.owned = self.owned - set(names) if done else self.owned | set(names)
        data = json.dumps(sorted(self.owned)).encode("utf-8") if self.owned else b""
        try:
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
            os.write(self.fd, data)
            os.fsync(self.fd)
        except OSError as exc:
            raise as_output_error(OutputTarget(self.path, self.path, what="batch lock file"), exc) from exc

    @contextmanager
    def undone_if_stopped(self):
        """On any exception (a refusal, a model that fails to load, a signal) before a job ran, remove
        the lock file and the folders taking the lock created, so a refused run writes nothing."""
        try:
            yield
        except BaseException:
            for made in self.made:
                try:
                    if made == self.path:
                        os.unlink(made)
                    else:
                        os.rmdir(made)
                except OSError:
                    break  # a folder something else now uses is kept, and so are those above it
            raise

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None
