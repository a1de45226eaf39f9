"""The error a real ComfyUI server reports for a failing pack node: the type the front end's toast
shows first must be short (``CheckpointError``, like ComfyUI's own ``ValueError``), not the pack's
install path, and the message must say what to do. Runs only with COMFYUI_DIR (see
test_real_comfyui.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_server import ComfyServer, comfyui_dir_from_env  # noqa: E402

COMFYUI_DIR = comfyui_dir_from_env()
pytestmark = pytest.mark.skipif(COMFYUI_DIR is None, reason="real-host tests need COMFYUI_DIR=<a ComfyUI checkout>")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ComfyServer(COMFYUI_DIR, tmp_path_factory.mktemp("comfyui_base"))
    try:
        srv.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield srv
    srv.stop()


def execution_error(server, prompt: dict, timeout: float = 120) -> dict:
    """The execution_error message of a prompt that is expected to fail."""
    prompt_id = server.queue_prompt(prompt)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = server.get_json(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status"):
            for kind, info in entry["status"].get("messages", []):
                if kind == "execution_error":
                    return info
            pytest.fail(f"prompt did not fail as expected: {entry['status']}\n{server.log_tail()}")
        time.sleep(0.5)
    pytest.fail(f"prompt did not finish within {timeout} s\n{server.log_tail()}")


def song_to_codes(model: str, prefix: str = "heartmula/codes") -> dict:
    return {
        "1": {"class_type": "HeartMuLaLMLoader", "inputs": {"model": model, "dtype": "auto",
                                                             "download_if_missing": False}},
        "2": {"class_type": "HeartMuLaLyricsTags", "inputs": {"lm": ["1", 0], "tags": "piano",
                                                               "lyrics": "[verse]\nla la"}},
        "3": {"class_type": "HeartMuLaSampler", "inputs": {"lm": ["1", 0], "prompt": ["2", 0], "seed": 0,
                                                            "seconds": 1.0, "temperature": 1.0, "top_k": 8,
                                                            "cfg_scale": 1.5, "batch_size": 1}},
        "4": {"class_type": "HeartMuLaSaveCodes", "inputs": {"codes": ["3", 0], "filename_prefix": prefix}},
    }


def test_missing_checkpoint_is_reported_as_checkpoint_error_with_the_fix(server):
    error = execution_error(server, song_to_codes("HeartMuLa-RL-oss-3B-20260123"))
    assert error["node_type"] == "HeartMuLaLMLoader"
    assert error["exception_type"] == "CheckpointError"
    message = error["exception_message"]
    assert "is not downloaded yet" in message and "hf download HeartMuLa/HeartMuLa-RL-oss-3B-20260123" in message


def test_bad_file_name_is_reported_as_codes_error(server):
    error = execution_error(server, song_to_codes("HeartMuLa-oss-3B", prefix="x" * 5000))
    assert error["node_type"] == "HeartMuLaSaveCodes"
    assert error["exception_type"] == "CodesError" and "is too long" in error["exception_message"]
