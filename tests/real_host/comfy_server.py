"""Start and stop a real ComfyUI server with this pack installed, for the real-host tests.

The server runs from a ComfyUI checkout (``COMFYUI_DIR``) with a throw-away base directory, so
nothing is written into the checkout: custom_nodes/ holds a link to this repository and
models/HeartMuLa/ a copy of the tiny test checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CHECKPOINTS = REPO_ROOT / "tests" / "data" / "tiny" / "ckpt"
PACK_DIR_NAME = "ComfyUI-HeartMuLa"


def comfyui_dir_from_env() -> Path | None:
    value = os.environ.get("COMFYUI_DIR", "").strip()
    return Path(value).expanduser().resolve() if value else None


def comfyui_python() -> str:
    """The interpreter that has ComfyUI's requirements; the test's own one unless told otherwise. A
    relative path is taken from the current folder (the server itself runs in the ComfyUI folder)."""
    value = os.environ.get("COMFYUI_PYTHON", "").strip()
    if not value:
        return sys.executable
    return os.path.abspath(value) if os.sep in value else value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_base_directory(base: Path) -> Path:
    """Lay out a ComfyUI base directory: the pack linked in, tiny checkpoints under models/HeartMuLa."""
    for name in ("custom_nodes", "models", "input", "output", "temp", "user"):
        (base / name).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_DIR_NAME
    if not link.exists():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    models = base / "models" / "HeartMuLa"
    if not models.exists():
        shutil.copytree(TINY_CHECKPOINTS, models)
    install_listening_models(base / "models")
    from lora_fixtures import install_example_lora  # tests/ is on sys.path now

    install_example_lora(base / "models")
    return base


def install_listening_models(models_dir: Path) -> None:
    """Tiny Whisper and CLAP under the names the listening example workflows use (built here, offline)."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from tiny_listening_models import install_for_host

    install_for_host(models_dir)


class ComfyServer:
    """One headless ComfyUI process; use as a context manager so it is always stopped."""

    def __init__(self, comfyui_dir: Path, base: Path, python: str | None = None,
                 start_timeout: float = 180.0, extra_custom_nodes=()):
        self.comfyui_dir = Path(comfyui_dir)
        self.extra_custom_nodes = [Path(p) for p in extra_custom_nodes]  # folders linked in beside the pack
        self.base = Path(base)
        self.python = python or comfyui_python()
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "comfyui.log"
        self.process: subprocess.Popen | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "ComfyServer":
        main = self.comfyui_dir / "main.py"
        if not main.is_file():
            raise RuntimeError(f"COMFYUI_DIR={self.comfyui_dir} has no main.py; point it at a ComfyUI checkout.")
        prepare_base_directory(self.base)
        for folder in self.extra_custom_nodes:
            if not (self.base / "custom_nodes" / folder.name).exists():
                (self.base / "custom_nodes" / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
        command = [
            self.python, str(main), "--cpu",
            "--base-directory", str(self.base),
            "--listen", "127.0.0.1", "--port", str(self.port),
            # The default database lives inside the checkout; keep the checkout untouched.
            "--database-url", "sqlite:///:memory:",
            "--disable-auto-launch",
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command, cwd=self.comfyui_dir, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.process.returncode} while starting.\n{self.log_tail()}")
            try:
                self.get_json("/system_stats", timeout=5)
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer on {self.url} within {self.start_timeout:.0f} s.\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=15)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- diagnostics -----------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 8000) -> str:
        text = self.log_text()
        return "----- ComfyUI log (tail) -----\n" + text[-chars:] + "\n----- end of ComfyUI log -----"

    # -- HTTP ------------------------------------------------------------------------------------
    def request(self, path: str, payload: dict | None = None, timeout: float = 30.0):
        """(status, parsed JSON body) for GET (no payload) or POST (JSON payload); errors keep their body."""
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            body = err.read()
            status = err.code
        try:
            return status, json.loads(body or b"null")
        except ValueError:
            return status, body.decode(errors="replace")

    def get_json(self, path: str, timeout: float = 30.0):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def queue_prompt(self, prompt: dict, client_id: str = "heartmula-real-host-test") -> str:
        status, body = self.request("/prompt", {"prompt": prompt, "client_id": client_id})
        if status != 200 or not isinstance(body, dict) or "prompt_id" not in body:
            raise AssertionError(f"POST /prompt was refused ({status}): {json.dumps(body, indent=1)[:4000]}")
        return body["prompt_id"]

    def wait_for_history(self, prompt_id: str, timeout: float) -> dict:
        """The history entry of a finished prompt; raises with the server's error message if it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"ComfyUI died while running prompt {prompt_id}.\n{self.log_tail()}")
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry:
                status = entry.get("status") or {}
                if status and status.get("status_str") != "success":
                    raise AssertionError(f"Prompt {prompt_id} failed: {describe_failure(status)}\n{self.log_tail()}")
                return entry
            time.sleep(0.5)
        self.request("/interrupt", {})
        raise AssertionError(f"Prompt {prompt_id} did not finish within {timeout:.0f} s.\n{self.log_tail()}")


def describe_failure(status: dict) -> str:
    for kind, info in status.get("messages", []):
        if kind == "execution_error":
            trace = "".join(info.get("traceback", []))[-3000:]
            return (f"node {info.get('node_id')} ({info.get('node_type')}) raised "
                    f"{info.get('exception_type')}: {info.get('exception_message')}\n{trace}")
        if kind == "execution_interrupted":
            return f"interrupted at node {info.get('node_id')} ({info.get('node_type')})"
    return json.dumps(status)[:3000]
