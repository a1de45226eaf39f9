"""Text a user typed: valid Unicode of a size a prompt can hold, or, on the command line and in a jobs
file, the contents of a file it names.

What a value means (``text_or_file``): a value on one line that names something on disk (relative
to ``base``: the working folder on the command line, the jobs file's folder in a jobs file) or
ends like a text file (``.txt``, ``.lrc``, ``.md``) is a path. A path to a readable regular file
gives that file's text; a path to anything else (a folder, a FIFO, a device, a missing file) is an
error, never sung as words. Every other value is the text itself.

A server must never read host files, so the nodes take text only and refuse what ``names_a_file``
recognises. Size: a prompt holds at most 8192 tokens, a few tens of KB of lyrics; a value or file
over ``MAX_TEXT_BYTES`` cannot fit and is refused before it is read whole or tokenized (a 100 MB
file once took 5.4 GB to tokenize).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import PromptError

MAX_TEXT_BYTES = 1 << 20  # 1 MiB: 128 bytes per token of an 8192-token prompt, far beyond any real text
TEXT_SUFFIXES = (".txt", ".lrc", ".md", ".text")
PATH_MAX = 4096


def _too_big(what: str, size: str, where: str = "") -> PromptError:
    return PromptError(f"The {what}{where} are {size}: a prompt holds at most 8192 tokens (a few tens of KB of "
                       f"text), so anything over {MAX_TEXT_BYTES >> 20} MB cannot fit. Give the {what} of one song.")


def check_text(value, what: str) -> str:
    """``value`` as it is, when it is a string that encodes as UTF-8 and is not larger than a prompt."""
    if not isinstance(value, str):
        raise PromptError(f"The {what} must be text, got {type(value).__name__}.")
    if len(value) > MAX_TEXT_BYTES:
        raise _too_big(what, f"{len(value) / 1e6:.1f} million characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: bytes that were not UTF-8 on a command line
        raise PromptError(f"The {what} are not valid text (character {exc.start + 1} is not UTF-8). "
                          f"Re-type the {what} or save them as a UTF-8 file.") from None
    return value


def names_a_file(value: str) -> Path | None:
    """The existing regular file a one-line value names (relative to the working folder), else None."""
    candidate = value.strip()
    if candidate and "\n" not in candidate and len(candidate) < PATH_MAX and os.path.isfile(candidate):
        return Path(candidate)
    return None


def path_named(value: str, base: str | Path | None = None) -> Path | None:
    """The path a value names (see the module docstring), resolved against ``base``; None for text."""
    candidate = value.strip()
    if not candidate or "\n" in candidate or "\r" in candidate or "\0" in candidate or len(candidate) >= PATH_MAX:
        return None
    path = Path(candidate).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    try:
        exists = os.path.lexists(path)
    except (OSError, ValueError):
        return None
    return path if exists or candidate.lower().endswith(TEXT_SUFFIXES) else None


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of the regular file ``path``, checked before it is opened (a FIFO would block,
    a huge file would fill memory)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        missing = "does not exist" if not os.path.lexists(path) else f"cannot be read ({exc.strerror})"
        raise PromptError(f"The {what} name the file {path}, which {missing}. Give an existing text file, or "
                          f"the {what} themselves.") from None
    if not stat.S_ISREG(st.st_mode):
        raise PromptError(f"The {what} name {path}, which is {file_kind(st.st_mode)}, not a text file. Give the path "
                          f"of a text file, or the {what} themselves (run from another folder if they happen to "
                          "be the name of something there).")
    if st.st_size > MAX_TEXT_BYTES:
        raise _too_big(what, f"{st.st_size / 1e6:.1f} MB", f" in {path}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
        text = data.decode("utf-8")
    except OSError as exc:
        raise PromptError(f"Cannot read the {what} file {path}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError as exc:
        raise PromptError(f"The {what} file {path} is not UTF-8 text (byte {exc.start + 1}); save it as "
                          "UTF-8.") from None
    return check_text(text, what)


def text_or_file(value, what: str, base: str | Path | None = None) -> str:
    """A text option of the command line or a jobs file: the text of the file it names, else itself."""
    path = path_named(check_text(value, what), base)
    return value if path is None else read_text_file(path, what)
