"""Files of one extension under a folder, listed cheaply enough to be done for every queued prompt.

ComfyUI builds a node's schema, and so its dropdown lists, for every /object_info and, from 0.39,
for every queued prompt. A combo box that walks the whole input and output folders each time makes
every prompt slower as output/ fills up with images. This lists the way ComfyUI's own
``folder_paths.get_filename_list`` does: the result is kept with the modification time of each
folder it read, and read again only when one of them changed (a file added, removed or renamed in
it). Reading costs one ``scandir`` per folder with no ``stat`` per file: an entry is kept only when
its name ends with the extension, and hidden entries (``.git``, the ``.partial-*`` files an atomic
write leaves until it renames them) are skipped. A folder changed in the last seconds before the
walk is not trusted (its time stamp may not move again for a file created in the same tick), so the
next call reads it again, as git does with "racy" index entries.
"""

from __future__ import annotations

import os
import threading
import time

RACY_NS = 2_000_000_000  # a folder modified this recently before a walk is read again next time

_cache: dict[tuple[str, str], tuple[dict[str, int], list[str]]] = {}
_lock = threading.Lock()


def files_with_extension(base: str, extension: str) -> list[str]:
    """Paths relative to ``base`` (``/``-separated) of the files whose names end with ``extension``,
    sorted by folder, then name; ``[]`` when ``base`` is not a folder. Symlinked folders are not
    followed."""
    key = (os.path.abspath(base), extension)
    with _lock:
        cached = _cache.get(key)
    if cached is not None and _unchanged(cached[0]):
        return list(cached[1])
    started = time.time_ns()
    folders, names = _walk(key[0], extension)
    if folders and max(folders.values()) < started - RACY_NS:
        with _lock:
            _cache[key] = (folders, names)
    else:
        with _lock:
            _cache.pop(key, None)
    return list(names)


def _unchanged(folders: dict[str, int]) -> bool:
    try:
        return all(os.stat(path).st_mtime_ns == mtime for path, mtime in folders.items())
    except OSError:  # a folder was removed (or made unreadable): read again
        return False


def _walk(base: str, extension: str) -> tuple[dict[str, int], list[str]]:
    """({folder: its mtime_ns}, sorted relative names); the mtime is taken before the folder is read,
    so a file added while it is read changes it. An unreadable subfolder is left out of the names and
    the folders come back empty, so the result is not kept (a change of permissions moves no mtime)."""
    folders: dict[str, int] = {}
    found: list[tuple[str, str]] = []
    pending, unreadable = [""], False
    while pending:
        relative = pending.pop()
        path = os.path.join(base, relative) if relative else base
        try:
            folders[path] = os.stat(path).st_mtime_ns
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(f"{relative}/{entry.name}" if relative else entry.name)
                    elif entry.name.endswith(extension):
                        found.append((relative, entry.name))
        except (FileNotFoundError, NotADirectoryError):
            if not relative:
                return {}, []
        except PermissionError:
            unreadable = True
    found.sort()
    return {} if unreadable else folders, [f"{folder}/{name}" if folder else name for folder, name in found]
