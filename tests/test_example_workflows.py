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
# ComfyUI's own nodes used by the examples, as its /object_info describes them (0.33).
PREFIX = ["STRING", {"default": "audio/ComfyUI"}]
QUALITY = {"mp3": ["V0", "128k", "320k"], "opus": ["64k", "96k", "128k", "192k", "320k"]}
FORMAT = ["COMFY_DYNAMICCOMBO_V3", {"options": [{"key": "flac", "inputs": {"required": {}}}] + [
    {"key": key, "inputs": {"required": {"quality": ["COMBO", {"options": options}]}}} for key, options in QUALITY.items()]}]
HOST_NODES = {
    "PreviewAudio": {"input": {"required": {"audio": ["AUDIO"]}}, "output": ["AUDIO"]},
    "PreviewAny": {"input": {"required": {"source": ["*", {}]}}, "output": []},
    "SaveAudioAdvanced": {"input": {"required": {"audio": ["AUDIO"], "filename_prefix": PREFIX, "format": FORMAT}},
                          "output": ["AUDIO"]},
}
# ComfyUI before 0.25 (0.3.64) had one Save Audio node per format and no Save Audio (Advanced).
OLD_HOST_NODES = {k: v for k, v in HOST_NODES.items() if k != "SaveAudioAdvanced"} | {
    "SaveAudio": {"input": {"required": {"audio": ["AUDIO"], "filename_prefix": PREFIX}}, "output": []},
    "SaveAudioMP3": {"input": {"required": {"audio": ["AUDIO"], "filename_prefix": PREFIX,
                                            "quality": [QUALITY["mp3"], {}]}}, "output": []},
}
# Shown as "(DEPRECATED)" from ComfyUI 0.25 on: templates must not use them.
DEPRECATED = {"SaveAudio", "SaveAudioMP3", "SaveAudioOpus"}


def load_converter():
    spec = importlib.util.spec_from_file_location("workflow_to_api", ROOT / "tests" / "real_host" / "workflow_to_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pack_object_info(pack) -> dict:
    info = {}
    for node in pack.node_classes():
        schema = node.GET_SCHEMA()
        inputs = node.INPUT_TYPES()
        info[schema.node_id] = {
            "input": inputs,
            "input_order": {group: list(specs) for group, specs in inputs.items()},
            "output": [o.io_type for o in schema.outputs],
        }
    return info


@pytest.fixture
def object_info(pack, comfy_home):
    return HOST_NODES | pack_object_info(pack)


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
            if kind == "COMFY_DYNAMICCOMBO_V3":
                assert value in [o["key"] for o in options["options"]], (path.name, name, value)
            elif kind == "COMBO":
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


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_no_example_uses_a_deprecated_node(path):
    types = {n["type"] for n in json.loads(path.read_text(encoding="utf-8"))["nodes"]}
    assert not types & DEPRECATED, f"{path.name} uses {sorted(types & DEPRECATED)}; use SaveAudioAdvanced"


def test_before_comfyui_0_25_save_audio_advanced_becomes_the_save_audio_of_its_format(pack, comfy_home):
    """What the README tells users of an older ComfyUI to do, and what the real-host runs on 0.3.64 do;
    on a host that has Save Audio (Advanced) its format (and quality) reach the prompt as the front end
    sends them."""
    converter = load_converter()
    old, new = OLD_HOST_NODES | pack_object_info(pack), HOST_NODES | pack_object_info(pack)
    workflow = json.loads((ROOT / "example_workflows" / "text_to_song.json").read_text(encoding="utf-8"))
    saver = next(n for n in workflow["nodes"] if n["type"] == "SaveAudioAdvanced")
    node_id = str(saver["id"])
    assert saver["widgets_values"] == ["audio/HeartMuLa", "flac"]
    audio = converter.convert(workflow, new)[node_id]["inputs"]["audio"]
    assert converter.convert(workflow, new)[node_id] == {"class_type": "SaveAudioAdvanced", "inputs": {
        "filename_prefix": "audio/HeartMuLa", "format": "flac", "audio": audio}}
    assert converter.convert(workflow, old)[node_id] == {"class_type": "SaveAudio", "inputs": {
        "filename_prefix": "audio/HeartMuLa", "audio": audio}}
    saver["widgets_values"] = ["audio/x", "mp3", "320k"]
    assert converter.convert(workflow, new)[node_id]["inputs"] == {
        "filename_prefix": "audio/x", "format": "mp3", "format.quality": "320k", "audio": audio}
    assert converter.convert(workflow, old)[node_id] == {"class_type": "SaveAudioMP3", "inputs": {
        "filename_prefix": "audio/x", "quality": "320k", "audio": audio}}
    assert saver["type"] == "SaveAudioAdvanced" and saver["widgets_values"][1] == "mp3"  # the workflow is left as it was
