"""Write output files all-or-nothing, and never replace what is not a regular file.

Each file goes to a temporary name in its target folder and is renamed over the target when
complete, so a failure, Ctrl-C or SIGTERM leaves no partial file (what SIGKILL leaves, the next
write into that folder removes: leftovers.py). Renaming replaces whatever the name
points at, so the target is checked first (``output_target``), before any slow work:

- a regular file (or nothing yet): replaced atomically;
- a symbolic link: written through, i.e. the file it points to is replaced and the link stays;
- the null device (``/dev/null``): nothing is written, as a user who names it means. (Not even
  written through: safetensors' save_file renames its own temporary file over the path it is
  given, which replaced /dev/null with a regular file when we handed it the device.)
- a folder, a FIFO, a socket or any other device: refused, never replaced.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import OutputError
from .leftovers import remove_leftovers, temp_prefix

MB = 1 << 20


@dataclass(frozen=True)
class OutputTarget:
    given: Path  # as the user wrote it (messages name this)
    path: Path  # where the bytes go: the link's target when ``given`` is a symbolic link
    discard: bool = False  # the null device: nothing is written
    what: str = "output"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _is_null_device(st: os.stat_result) -> bool:
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and stat.S_ISCHR(null.st_mode) and st.st_rdev == null.st_rdev


def is_null_device(path: str | Path) -> bool:
    """True for /dev/null (or another node of the same device), where output is simply dropped."""
    try:
        return _is_null_device(os.stat(path))
    except (OSError, ValueError):
        return False


def _existing_ancestor(folder: Path) -> Path:
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_folder(folder: Path, target: OutputTarget) -> None:
    """The folder exists or can be created, and can be written to."""
    writable_folder(folder, f"{target.what} {target.given}")


def writable_folder(folder: Path, where: str) -> None:
    """``folder`` exists or can be created, and can be written to; else one OutputError that starts
    with ``where`` (what the user called the path)."""
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise OutputError(f"{where}: {base} is not a folder, so the file cannot be created there. Give another path.")
    if hasattr(os, "statvfs") and os.statvfs(base).f_flag & getattr(os, "ST_RDONLY", 1):
        raise OutputError(f"{where}: {base} is on a read-only file system. Write the file somewhere else.")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: no permission to write in {base}. Write the file somewhere else.")


def output_target(path: str | Path, what: str = "output", example: str = "song.wav") -> OutputTarget:
    """Check where ``path`` would be written (see the module docstring); raises OutputError.
    ``example`` is a file name the message suggests when ``path`` is a folder."""
    text = os.fspath(path)
    if "\x00" in text:
        raise OutputError(f"{what} {text!r}: a file name cannot contain a NUL character.")
    given = Path(text)
    real = Path(os.path.realpath(given))
    try:
        st = os.stat(real)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # a name too long, a loop of links
            raise OutputError(f"{what} {given}: {exc.strerror}. Give another path.") from None
        st = None  # missing, or below a file used as a folder: the folder check names which
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {given} is a folder; give the path of a file, e.g. {given / example}.")
        if _is_null_device(st):
            return OutputTarget(given, real, True, what)
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{what} {given} is {_kind(st.st_mode)}; it is never replaced by a file. "
                              "Give the path of a regular file.")
    target = OutputTarget(given, real, False, what)
    _check_folder(real.parent, target)
    return target


def free_bytes(path: str | Path) -> int | None:
    """Free space for an unprivileged writer on the disk that holds ``path`` (None: unknown)."""
    try:
        st = os.statvfs(_existing_ancestor(Path(path)))
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def check_free_space(target: OutputTarget, needed: int) -> None:
    """Refuse before the work when the file (about ``needed`` bytes) cannot fit on its disk."""
    free = None if target.discard else free_bytes(target.path.parent)
    if free is not None and needed > free:
        raise OutputError(f"{target.what} {target.given} needs about {needed / MB:.1f} MB but its disk has "
                          f"{free / MB:.1f} MB free. Free some space or write it elsewhere.")


def _errno(exc: BaseException) -> int | None:
    """The OS error behind ``exc``; libraries such as safetensors only say "(os error 28)"."""
    code = getattr(exc, "errno", None)
    if code is None:
        found = re.search(r"os error (\d+)", str(exc))
        code = int(found.group(1)) if found else None
    return code


def as_output_error(target: OutputTarget, exc: BaseException) -> OutputError:
    """An OS error while writing ``target`` as one message saying what to do."""
    code = _errno(exc)
    if code in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", -1)):
        free = free_bytes(target.path.parent)
        room = f" ({free / MB:.1f} MB free)" if free is not None else ""
        why = f"the disk is full or the file is too large{room}. Free some space or write it elsewhere"
    elif code == errno.EROFS:
        why = "the file system is read-only. Write it somewhere else"
    elif code in (errno.EACCES, errno.EPERM):
        why = "permission denied. Write it somewhere else"
    else:
        detail = (getattr(exc, "strerror", None) or str(exc)).strip().rstrip(".")
        why = f"{detail}. Check the path and the free space on its disk"
    return OutputError(f"Could not write {target.what} {target.given}: {why}.")


def _prepare(target: OutputTarget, suffix: str) -> str:
    """A temporary file beside the target, named as this process's (leftovers.py)."""
    target.path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=suffix, dir=target.path.parent)
    os.close(fd)
    return tmp


def atomic_write_all(items: Sequence[tuple[OutputTarget | str | Path, str, Callable[[str], None]]],
                     errors: tuple[type[BaseException], ...] = ()) -> list[Path]:
    """Write several files all-or-nothing: each ``(target, suffix, write)`` calls ``write(tmp)``;
    only when every write succeeded are they renamed into place. On failure nothing is left."""
    # checked again now: minutes may have passed since the check before the work
    targets = [output_target(t.given, t.what) if isinstance(t, OutputTarget) else output_target(t)
               for t, _, _ in items]
    kept = [(t, item) for t, item in zip(targets, items) if not t.discard]
    folders = list(dict.fromkeys(t.path.parent for t, _ in kept))
    for folder in folders:
        remove_leftovers(folder)  # of runs killed before they could clean up
    made = _missing_folders(folders)
    temps: list[str] = []
    written = False
    try:
        for target, (_, suffix, write) in kept:
            try:
                temps.append(_prepare(target, suffix))
                write(temps[-1])
            except (OSError, *errors) as exc:
                raise as_output_error(target, exc) from exc
        umask = os.umask(0)
        os.umask(umask)
        for (target, _), tmp in zip(kept, temps):
            try:
                os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
                os.replace(tmp, target.path)
            except OSError as exc:
                raise as_output_error(target, exc) from exc
        written = True
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for folder in made if not written else ():
            try:
                os.rmdir(folder)  # made for this write, and empty again: nothing is left
            except OSError:
                pass
    return [t.given for t in targets]


def _missing_folders(folders: Sequence[Path]) -> list[Path]:
    """The folders among ``folders`` and above them that do not exist yet, deepest first."""
    missing = {p for folder in folders for p in (folder, *folder.parents) if not os.path.lexists(p)}
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)


def atomic_write(path: OutputTarget | str | Path, suffix: str, write: Callable[[str], None],
                 errors: tuple[type[BaseException], ...] = ()) -> Path:
    """Call ``write(tmp_path)``, then move the finished file to ``path``; on failure nothing is left."""
    return atomic_write_all([(path, suffix, write)], errors)[0]
