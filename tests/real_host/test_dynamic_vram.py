"""Every example workflow in a real ComfyUI whose layers are built as DynamicVRAM builds them.

ComfyUI 0.28+ switches DynamicVRAM on at start-up on NVIDIA GPUs; then ``comfy.ops`` Linear and
Embedding layers are built without weights and receive them only through ``load_state_dict``. A
headless CPU server never does that by itself, so a tiny custom node, linked in beside the pack and
imported before any prompt runs, flips the same switch (``comfy.memory_management.aimdo_enabled``,
which is all 0.33 and later need on any OS, plus ``comfy.model_management.WINDOWS`` where the host
needs it: 0.28). Each example then runs on that server and on a plain one, and must write the same
codes and the same audio samples.
Skips on ComfyUI versions without DynamicVRAM (0.3.64).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_server import ComfyServer, comfyui_dir_from_env  # noqa: E402
from conftest import host_version  # noqa: E402
from test_real_comfyui import (  # noqa: E402
    SONG_SECONDS, RUN_TIMEOUT, example_files, output_files, provide_codes_files, shorten_songs,
)
from workflow_to_api import convert  # noqa: E402

COMFYUI_DIR = comfyui_dir_from_env()
pytestmark = [
    pytest.mark.skipif(COMFYUI_DIR is None, reason="real-host tests need COMFYUI_DIR=<a ComfyUI checkout>"),
    pytest.mark.skipif(COMFYUI_DIR is not None and not (COMFYUI_DIR / "comfy" / "memory_management.py").is_file(),
                       reason="this ComfyUI has no DynamicVRAM (it arrived after 0.3.64): nothing to switch on"),
]

SWITCHED = "HEARTMULA-TEST: DynamicVRAM layer construction switched on"
SWITCH_NODE = f'''
"""Test-only custom node: build comfy.ops layers as DynamicVRAM does, on a CPU server."""
import logging

import comfy.memory_management
import comfy.model_management
import comfy.ops

comfy.memory_management.aimdo_enabled = True  # 0.33 and later: weightless layers on every OS
switches = "aimdo_enabled"
if comfy.ops.disable_weight_init.Linear(2, 2).weight is not None:
    comfy.model_management.WINDOWS = True  # ComfyUI 0.28 builds weightless layers on Windows only
    switches += " + WINDOWS"
probe = comfy.ops.disable_weight_init.Linear(2, 2)
logging.warning("{SWITCHED} ({{}}): Linear weight is %s".format(switches), probe.weight)
NODE_CLASS_MAPPINGS = {{}}
'''


def switch_node(folder: Path) -> Path:
    """The custom node folder; its name sorts before the pack's."""
    node = folder / "000_heartmula_test_dynamic_vram"
    node.mkdir(parents=True)
    (node / "__init__.py").write_text(textwrap.dedent(SWITCH_NODE))
    return node


def decoded_samples(path: Path) -> bytes:
    """Every decoded sample of an audio file, as raw bytes (container metadata aside)."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return b"".join(np.ascontiguousarray(frame.to_ndarray()).tobytes() for frame in container.decode(stream))


def codes_content(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return {key: f.get_tensor(key).tobytes() for key in f.keys()}


def run_example(server: ComfyServer, object_info: dict, workflow_path: Path) -> dict:
    """Queue one example (songs shortened as in test_real_comfyui); what each of its files holds."""
    prompt = convert(json.loads(workflow_path.read_text()), object_info)
    shorten_songs(prompt, object_info, SONG_SECONDS)
    provide_codes_files(prompt, server, object_info)
    before = set((server.base / "output").rglob("*.safetensors"))
    entry = server.wait_for_history(server.queue_prompt(prompt), RUN_TIMEOUT)
    written = {}
    audio, _ = output_files(entry, server)
    for index, path in enumerate(audio):
        written[f"audio {index} ({path.suffix})"] = decoded_samples(path)
    for path in sorted(set((server.base / "output").rglob("*.safetensors")) - before):
        written[f"codes {path.relative_to(server.base / 'output')}"] = codes_content(path)
    for node_id, node_output in entry.get("outputs", {}).items():  # texts shown in the UI (transcriptions, scores)
        for key, items in node_output.items():
            if isinstance(items, list) and items and all(isinstance(i, (str, int, float)) for i in items):
                written[f"{key} of node {node_id}"] = items
    return written


def run_all(tmp_path_factory, name: str, extra_custom_nodes=()) -> dict:
    base = tmp_path_factory.mktemp(name)
    with ComfyServer(COMFYUI_DIR, base, extra_custom_nodes=extra_custom_nodes) as server:
        object_info = server.get_json("/object_info", timeout=120)
        results = {path.stem: run_example(server, object_info, path) for path in example_files()}
        return {"log": server.log_text(), "results": results}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    plain = run_all(tmp_path_factory, "plain")
    switched = run_all(tmp_path_factory, "dynamic_vram", [switch_node(tmp_path_factory.mktemp("nodes"))])
    return plain, switched


def test_the_switched_server_builds_weightless_layers(runs):
    plain, switched = runs
    needed = "aimdo_enabled" if host_version() >= (0, 33) else "aimdo_enabled + WINDOWS"
    assert f"{SWITCHED} ({needed}): Linear weight is None" in switched["log"], switched["log"][-4000:]
    assert SWITCHED not in plain["log"]



@pytest.mark.parametrize("name", [p.stem for p in example_files()])
def test_example_writes_the_same_codes_and_audio_with_weightless_layers(runs, name):
    plain, switched = runs
    expected, got = plain["results"][name], switched["results"][name]
    assert expected, f"{name} wrote no audio or codes file to compare"
    assert sorted(got) == sorted(expected)
    differing = [key for key in expected if got[key] != expected[key]]
    assert not differing, f"{name}: {differing} differ between the plain and the DynamicVRAM-layer server"


def bench_patchers(*args: str) -> subprocess.CompletedProcess:
    from comfy_server import REPO_ROOT, comfyui_python

    return subprocess.run([comfyui_python(), "-m", "benchmarks.bench_patchers", "--comfyui", str(COMFYUI_DIR), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_patcher_benchmark_dry_run_builds_weightless_layers_and_runs_the_lm():
    done = bench_patchers("--dry-run", "--one", "lm:core")
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(next(line[4:] for line in done.stdout.splitlines() if line.startswith("ROW ")))
    assert row["weightless layers"] is True and row["asked"] == "core" and row["runner"] == "eager"
    assert row["patcher"] == "ModelPatcher"  # ModelPatcherDynamic hands a CPU load device a ModelPatcher
    assert row["LM ms/frame"] > 0


def test_patcher_benchmark_says_it_needs_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = bench_patchers()
    assert done.returncode == 2 and "needs a CUDA GPU" in done.stderr and "--dry-run" in done.stderr
