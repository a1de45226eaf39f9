"""A stand-in of ModelScope on 127.0.0.1: the official HeartMuLa repositories (the same tiny
checkpoints as the Hub's stand-in, hub_standin.py), over the HTTP API the ``modelscope`` package's
downloads use. Never the internet.

What ``modelscope`` asks (read in modelscope 1.40 / modelscope-hub 0.5, whose endpoint comes from
``MODELSCOPE_ENDPOINT``; modelscope 1.33, the official library's pin, asks the same routes of
``https://`` + ``MODELSCOPE_DOMAIN`` and was checked against this stand-in by hand):
- ``GET /api/v1/models/{repo}/revisions``: branches and tags (model_file_download picks a revision);
- ``GET /api/v1/models/{repo}/repo/files?Revision=&Recursive=``: the file list with ``Size`` and
  ``Sha256`` (snapshot_download; a file already in place with that size and hash is skipped);
- ``GET /api/v1/models/{repo}/repo?Revision=&FilePath=``: the file, with ``Range`` honoured (a
  ``.incomplete`` file a stopped download left is resumed);
- ``GET /api/v1/models/{repo}``: the repository's details; ``/api/v1/repos/internalAccelerationInfo``
  (the cloud region probe) gets a 404, as it does off Alibaba Cloud.
Every request is recorded, so a test can tell that a run fetched nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from hub_standin import CKPT, LocalServer, quiet_handler, tiny_repos

API = "api/v1/models/"
NOT_FOUND = {"Code": 10010205001, "Message": "Model not exists", "Success": False}


def _json(data: dict, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


def _listing(files: dict[str, Path]) -> list[dict]:
    return [{"Name": name, "Path": name, "Type": "blob", "Size": path.stat().st_size, "Revision": "master",
             "Sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "IsLFS": name.endswith(".safetensors")}
            for name, path in files.items()]


def _ranged(body: bytes, header: str | None) -> tuple[int, dict[str, str], bytes]:
    """The whole file, or the part a ``Range: bytes=A-`` / ``bytes=A-B`` asks for (206 with
    Content-Range; modelscope 1.40 resumes with the first form, older releases ask with the second)."""
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header or "")
    if not match:
        return 200, {"Content-Type": "application/octet-stream"}, body
    start, end = int(match.group(1)), min(int(match.group(2) or len(body) - 1), len(body) - 1)
    if start >= len(body):
        return 416, {"Content-Range": f"bytes */{len(body)}"}, b""
    return 206, {"Content-Type": "application/octet-stream",
                 "Content-Range": f"bytes {start}-{end}/{len(body)}"}, body[start:end + 1]


class StandInModelScope(LocalServer):
    """``with StandInModelScope() as ms:`` serves the repos at ``ms.url``; ``ms.requests`` lists
    (method, path, Range header)."""

    def __init__(self, repos: dict[str, dict[str, Path]] | None = None):
        self.repos = repos if repos is not None else tiny_repos()
        self.requests: list[tuple[str, str, str | None]] = []
        self._serve(self._handler())

    def file_downloads(self) -> list[str]:
        """``repo/file`` of every file whose content was asked for (GET of a repo?FilePath= URL)."""
        found = []
        for method, raw, _ in self.requests:
            parts = urlsplit(raw)
            if method == "GET" and parts.path.endswith("/repo") and "FilePath" in parse_qs(parts.query):
                repo = unquote(parts.path)[len("/" + API):-len("/repo")]
                found.append(f"{repo}/{parse_qs(parts.query)['FilePath'][0]}")
        return found

    def answer(self, method: str, raw_path: str, range_header: str | None) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, raw_path, range_header))
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path).lstrip("/"), parse_qs(parts.query)
        if not path.startswith(API):
            return _json({"Code": 404, "Message": "Not found", "Success": False}, 404)
        repo = next((r for r in self.repos if path[len(API):] == r or path[len(API):].startswith(r + "/")), None)
        if repo is None:
            return _json(NOT_FOUND, 404)
        files, rest = self.repos[repo], path[len(API) + len(repo):].strip("/")
        if rest == "":
            return _json({"Code": 200, "Success": True, "Data": {"Path": repo.split("/")[0],
                                                                 "Name": repo.split("/")[1]}})
        if rest == "revisions":
            branch = {"Revision": "master", "CreatedAt": 1768000000}
            return _json({"Code": 200, "Success": True, "Data": {"RevisionMap": {"Branches": [branch], "Tags": []}}})
        if rest == "repo/files":
            return _json({"Code": 200, "Success": True, "Data": {"Files": _listing(files)}})
        if rest == "repo" and query.get("FilePath", [""])[0] in files:
            return _ranged(files[query["FilePath"][0]].read_bytes(), range_header)
        return _json({"Code": 10010205002, "Message": "File not exists", "Success": False}, 404)

    def _handler(self):
        return quiet_handler(lambda request: self.answer(request.command, request.path, request.headers.get("Range")))


def modelscope_env(url: str | None, home: Path) -> dict[str, str]:
    """Environment for a subprocess that talks to ``url`` (None: a port nothing listens on) with its
    own empty ModelScope cache and credentials (``home``), no Hub or source settings of the caller's,
    and one try per request (modelscope retries an unreachable host for minutes by default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSCOPE", "HF_", "HEARTMULA_"))}
    env.update(MODELSCOPE_ENDPOINT=url or "http://127.0.0.1:9", MODELSCOPE_CACHE=str(home / "cache"),
               MODELSCOPE_CREDENTIALS_PATH=str(home / "credentials"), MODELSCOPE_HOME=str(home / "config"),
               MODELSCOPE_DOWNLOAD_MAX_RETRIES="1", MODELSCOPE_API_MAX_RETRIES="1",
               MODELSCOPE_REPO_TREE_PAGE_MAX_ATTEMPTS="1", HF_HOME=str(home / "hf"), PYTHONPATH=str(CKPT.parents[3]))
    return env


def point_modelscope_at(monkeypatch, url: str, home: Path) -> None:
    """The same for ``modelscope`` in this process: it reads the variables when it first builds
    its process-wide configuration (modelscope-hub), which is dropped here so the next download
    builds it again (and dropped again when the test ends)."""
    for key in [k for k in os.environ if k.startswith("MODELSCOPE")]:
        monkeypatch.delenv(key)
    for key, value in modelscope_env(url, home).items():
        if key.startswith("MODELSCOPE"):
            monkeypatch.setenv(key, value)
    try:
        import modelscope_hub.config
    except ImportError:  # modelscope before 1.38 reads the environment on every call
        return
    monkeypatch.setattr(modelscope_hub.config, "_default_config", None)


def has_modelscope() -> bool:
    import importlib.util

    return importlib.util.find_spec("modelscope") is not None


needs_modelscope = pytest.mark.skipif(not has_modelscope(), reason="the modelscope package is not installed "
                                      "(pip install modelscope, or the pack's [test] extra)")


class _NoModelScope:
    """A first import finder that answers for modelscope as Python does for a package that is not installed."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "modelscope":
            raise ModuleNotFoundError("No module named 'modelscope'", name="modelscope")
        return None


def hide_modelscope(monkeypatch) -> None:
    """This process as if modelscope were not installed: importing it (or anything in it) raises
    ModuleNotFoundError naming 'modelscope'; its modules come back after the test."""
    for name in [n for n in sys.modules if n == "modelscope" or n.startswith("modelscope.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoModelScope, *sys.meta_path])


def hiding_modelscope(folder: Path) -> str:
    """A folder to put first on a subprocess's PYTHONPATH so that ``import modelscope`` fails as it
    does where the package is not installed."""
    package = folder / "modelscope"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'modelscope\'", '
                                         'name="modelscope")\n')
    return str(folder)
