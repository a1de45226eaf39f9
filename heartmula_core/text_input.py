"""Text a user typed: valid Unicode, or, on the command line only, the contents of a file it names.

The core takes text. Reading a file whose path was typed is a convenience of the command line and
the batch jobs file; a server must never do it (a text box naming a host file would read it), so
the nodes refuse what ``names_a_file`` recognises.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import PromptError


def check_text(value, what: str) -> str:
    """``value`` as it is, when it is a string that encodes as UTF-8."""
    if not isinstance(value, str):
        raise PromptError(f"The {what} must be text, got {type(value).__name__}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: bytes that were not UTF-8 on a command line
        raise PromptError(f"The {what} are not valid text (character {exc.start + 1} is not UTF-8). "
                          f"Re-type the {what} or save them as a UTF-8 file.") from None
    return value


def names_a_file(value: str) -> Path | None:
    """The existing file a one-line value names, else None."""
    candidate = value.strip()
    if candidate and "\n" not in candidate and len(candidate) < 4096 and os.path.isfile(candidate):
        return Path(candidate)
    return None


def text_or_file(value, what: str) -> str:
    """The command line's reading of a text option: the contents of the file it names, else itself."""
    path = names_a_file(check_text(value, what))
    if path is None:
        return value
    try:
        return check_text(path.read_text(encoding="utf-8"), what)
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"Cannot read {what} file {path}: {exc}") from None
