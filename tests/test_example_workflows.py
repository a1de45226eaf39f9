"""The example workflows against the nodes' own schemas: every widget value lands on the input the
server's /object_info order says, every link joins matching socket types, every value is allowed.
(tests/real_host/ loads and queues them in a real ComfyUI; this check runs everywhere.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from heartmula_node_env import comfy_home  # noqa: F401  (fixture)
from lora_fixtures import EXAMPLE_LORA

ROOT = Path(__file__).resolve().parents[1]
MINE = ["text_to_song.json", "sample_and_save_codes.json", "load_codes_and_decode.json"]
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))
# ComfyUI's own nodes used by the examples, as its /object_info describes them (0.3.64).
HOST_NODES = {
    "PreviewAudio": {"input": {"required": {"audio": ["AUDIO"]}}},
    "PreviewAny": {"input": {"required": {"source": ["*", {}]}}},
    "SaveAudio": {"input": {"required": {"audio": ["AUDIO"], "filename_prefix": ["STRING", {"default": "audio/ComfyUI"}]}}},
}


def load_converter():
    spec = importlib.util.spec_from_file_location("workflow_to_api", ROOT / "tests" / "real_host" / "workflow_to_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def object_info(pack, comfy_home):
    info = dict(HOST_NODES)
    for node in pack.node_classes():
        schema = node.GET_SCHEMA()
        inputs = node.INPUT_TYPES()
        info[schema.node_id] = {
            "input": inputs,
            "input_order": {group: list(specs) for group, specs in inputs.items()},
            "output": [o.io_type for o in schema.outputs],
        }
    return info


def test_the_generation_examples_are_there():
    assert set(MINE) <= {w.name for w in WORKFLOWS}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_widget_values_and_links_fit_the_schemas(path, object_info, pack):
    from heartmula_pack.heartmula_core.checkpoints.kinds import KINDS

    workflow = json.loads(path.read_text(encoding="utf-8"))
    prompt = load_converter().convert(workflow, object_info)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    environment_lists = {"model": list(KINDS["lm"].repos), "codec": list(KINDS["codec"].repos),
                         "lora_name": [EXAMPLE_LORA]}  # the real-host harness installs it (tests/lora_fixtures.py)
    for node_id, entry in prompt.items():
        definition = object_info[entry["class_type"]]
        required = definition["input"]["required"]
        known = {**required, **definition["input"].get("optional", {})}
        assert set(required) <= set(entry["inputs"]) <= set(known), f"{path.name} node {node_id}"
        for name, value in entry["inputs"].items():
            kind, options = known[name][0], (known[name][1] if len(known[name]) > 1 else {})
            if isinstance(value, list):  # a link: [origin id, slot]
                origin = nodes[int(value[0])]
                produced = origin["outputs"][value[1]]["type"]
                assert produced == kind or kind == "*", (path.name, name, produced, kind)
                continue
            if kind == "COMBO":
                allowed = options["options"]
                if name == "file":
                    assert value.endswith(".safetensors [output]")
                else:
                    assert value in allowed or value in environment_lists.get(name, []), (path.name, name, value)
            elif kind in ("INT", "FLOAT"):
                assert isinstance(value, (int, float)) and options.get("min", value) <= value <= options.get("max", value)
            elif kind == "BOOLEAN":
                assert isinstance(value, bool)
            elif kind == "STRING":
                assert isinstance(value, str)
                if entry["class_type"] == "HeartMuLaLyricsTags":
                    assert value.strip(), f"{path.name}: empty {name}"
    for link in workflow["links"]:
        _, origin, slot, target, target_slot, kind = link
        assert nodes[origin]["outputs"][slot]["type"] == kind
        target_input = nodes[target]["inputs"][target_slot]
        assert target_input["type"] in (kind, "*") and target_input["link"] == link[0]
