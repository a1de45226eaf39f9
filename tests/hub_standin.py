"""A stand-in of the Hugging Face Hub on 127.0.0.1: the official HeartMuLa repositories, filled with
the tiny checkpoints, over the HTTP API huggingface_hub's downloads use. Never the internet.

What huggingface_hub asks (0.36 and 1.x/2.x):
- ``GET /api/models/{repo}/revision/{rev}``: the repo's commit ``sha`` and its ``siblings`` (snapshot_download);
- ``GET /api/models/{repo}/tree/{rev}``: the file list with sizes (snapshot_download from 1.x on);
- ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: the file, with ``X-Repo-Commit``, ``ETag`` and
  ``Content-Length`` (hf_hub_download; 404 with ``X-Error-Code`` for unknown repos and files).

Every request is recorded, so a test can tell that a run fetched nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

CKPT = Path(__file__).resolve().parent / "data" / "tiny" / "ckpt"
LM_REPOS = ("HeartMuLa/HeartMuLa-oss-3B", "HeartMuLa/HeartMuLa-RL-oss-3B-20260123",
            "HeartMuLa/HeartMuLa-oss-3B-happy-new-year")
CODEC_REPOS = ("HeartMuLa/HeartCodec-oss", "HeartMuLa/HeartCodec-oss-20260123")


def tiny_repos() -> dict[str, dict[str, Path]]:
    """Repository id -> {file name in the repo: file on disk}."""
    repos = {"HeartMuLa/HeartMuLaGen": {name: CKPT / name for name in ("tokenizer.json", "gen_config.json")}}
    for ids, folder in ((LM_REPOS, CKPT / "HeartMuLa-oss-3B"), (CODEC_REPOS, CKPT / "HeartCodec-oss")):
        for repo in ids:
            repos[repo] = {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}
    return repos


def _commit(files: dict[str, Path]) -> str:
    digest = hashlib.sha1()
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class LocalServer:
    """An HTTP server on a free port of 127.0.0.1 (``url``), serving on a thread inside ``with``."""

    def _serve(self, handler) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class StandInHub(LocalServer):
    """``with StandInHub() as hub:`` serves the repos at ``hub.url``; ``hub.requests`` lists (method, path)."""

    def __init__(self, repos: dict[str, dict[str, Path]] | None = None):
        self.repos = repos if repos is not None else tiny_repos()
        self.commits = {repo: _commit(files) for repo, files in self.repos.items()}
        self.requests: list[tuple[str, str]] = []
        self._serve(self._handler())

    def file_downloads(self) -> list[str]:
        """Paths of the files whose content was sent (GET of a resolve URL)."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]

    def _split(self, path: str) -> tuple[str | None, str]:
        """The known repository a path starts with, and the rest of it."""
        for repo in self.repos:
            if path == repo or path.startswith(repo + "/"):
                return repo, path[len(repo) + 1:]
        return None, path

    def answer(self, method: str, raw_path: str) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, raw_path))
        path = unquote(urlsplit(raw_path).path).lstrip("/")
        api = path.startswith("api/models/")
        repo, rest = self._split(path[len("api/models/"):] if api else path)
        if repo is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
        files, commit = self.repos[repo], self.commits[repo]
        if api:
            if rest.startswith("tree/"):
                listing = [{"type": "file", "path": n, "size": p.stat().st_size, "oid": _commit({n: p})}
                           for n, p in files.items()]
                return 200, {"Content-Type": "application/json"}, json.dumps(listing).encode()
            info = {"id": repo, "modelId": repo, "sha": commit, "private": False,
                    "siblings": [{"rfilename": name} for name in files]}
            return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
        parts = rest.split("/", 2)  # resolve, revision, file
        if len(parts) != 3 or parts[0] != "resolve" or parts[2] not in files:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b'{"error": "Entry not found"}'
        body = files[parts[2]].read_bytes()
        headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
                   "Content-Type": "application/octet-stream"}
        return 200, headers, body

    def _handler(self):
        return quiet_handler(lambda request: self.answer(request.command, request.path))


def quiet_handler(reply):
    """An HTTP/1.1 request handler for a stand-in server: ``reply(request)`` gives (status, headers,
    body) for GET and HEAD (HEAD sends no body); nothing is logged."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, send_body: bool) -> None:
            status, headers, body = reply(self)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self):
            self._reply(True)

        def do_HEAD(self):
            self._reply(False)

        def log_message(self, *args):  # quiet
            pass

    return Handler


def hub_env(url: str | None, hf_home: Path, offline: bool = False) -> dict[str, str]:
    """Environment for a subprocess that talks to ``url`` (None: a port nothing listens on) with
    its own empty Hugging Face home (no token, no cache)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "TRANSFORMERS_OFFLINE"}
    env.update(HF_ENDPOINT=url or "http://127.0.0.1:9", HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5", PYTHONPATH=str(CKPT.parents[3]))
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def point_hub_at(monkeypatch, url: str, hf_home: Path) -> None:
    """The same for huggingface_hub in this process: its endpoint is read into module constants at
    import and copied into other modules by ``from ... import``. The modules a download uses are
    imported first, so none copies the stand-in's address after this (monkeypatch could not undo that)."""
    import huggingface_hub._snapshot_download  # noqa: F401
    import huggingface_hub.constants as constants
    import huggingface_hub.file_download  # noqa: F401
    import huggingface_hub.hf_api  # noqa: F401

    old = constants.ENDPOINT
    for name, module in list(sys.modules.items()):
        if not name.startswith("huggingface_hub") or module is None:
            continue
        if getattr(module, "ENDPOINT", None) == old:
            monkeypatch.setattr(module, "ENDPOINT", url)
        template = getattr(module, "HUGGINGFACE_CO_URL_TEMPLATE", None)
        if isinstance(template, str) and template.startswith(old):
            monkeypatch.setattr(module, "HUGGINGFACE_CO_URL_TEMPLATE", url + template[len(old):])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
