"""Turn a UI-format workflow (what users drag in) into the API-format prompt the server runs.

Only the web front end does this in ComfyUI; the server never does. The conversion needs the node
definitions from ``/object_info``: a node's ``widgets_values`` list holds one value per widget
input, in the order the definition lists its inputs, plus one extra value (``fixed`` /
``randomize`` / ...) after every input that has a control-after-generate widget. A dynamic combo
(ComfyUI 0.25+, e.g. Save Audio (Advanced)'s ``format``) stores its choice, then the values of the
widgets that choice adds; the prompt names those ``<combo>.<widget>``.

On a ComfyUI without Save Audio (Advanced) (before 0.25) ``for_host`` first swaps each one for the
Save Audio node of its format, as the README tells users of such a version to do.
"""

from __future__ import annotations

import copy

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
# Save Audio (Advanced) (ComfyUI 0.25+) -> the node of each format it replaced (format, quality in one node).
SAVE_AUDIO_ADVANCED = "SaveAudioAdvanced"
LEGACY_SAVE_AUDIO = {"flac": "SaveAudio", "mp3": "SaveAudioMP3", "opus": "SaveAudioOpus"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
# Front-end-only nodes that the server does not know; they never become part of a prompt.
UI_ONLY_TYPES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
MODE_NEVER, MODE_BYPASS = 2, 4


class ConversionError(ValueError):
    pass


def _links_by_id(workflow: dict) -> dict[int, tuple[int, int, int, int, str]]:
    """link id -> (origin node, origin slot, target node, target slot, type), for both link layouts."""
    out = {}
    for link in workflow.get("links", []):
        if isinstance(link, dict):
            out[link["id"]] = (link["origin_id"], link["origin_slot"], link["target_id"],
                               link["target_slot"], link.get("type"))
        else:
            out[link[0]] = tuple(link[1:6])
    return out


def is_widget(spec) -> bool:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES or kind == DYNAMIC_COMBO


def dynamic_choice_widgets(spec, choice) -> list[tuple[str, list]]:
    """(name, spec) of the widgets a dynamic combo adds for ``choice`` (none for a plain input)."""
    if spec[0] != DYNAMIC_COMBO:
        return []
    for option in spec[1].get("options", []):
        if option.get("key") == choice:
            return [(n, s) for n, s in ordered_inputs({"input": option.get("inputs", {})}) if is_widget(s)]
    return []


def for_host(workflow: dict, object_info: dict) -> dict:
    """The workflow as this host can run it: on a ComfyUI without Save Audio (Advanced) each one is
    replaced by the Save Audio node of its format (prefix, then quality for MP3 / Opus); unchanged
    where the host has it."""
    if SAVE_AUDIO_ADVANCED in object_info:
        return workflow
    workflow = copy.deepcopy(workflow)
    for node in workflow.get("nodes", []):
        if node.get("type") != SAVE_AUDIO_ADVANCED:
            continue
        prefix, file_format, *quality = node.get("widgets_values") or ["audio/ComfyUI", "flac"]
        node["type"] = LEGACY_SAVE_AUDIO[file_format]
        node["widgets_values"] = [prefix, *quality]
        node.setdefault("properties", {})["Node name for S&R"] = node["type"]
        outputs = len(object_info.get(node["type"], {}).get("output", []))
        node["outputs"] = node.get("outputs", [])[:outputs]  # 0.3.64's Save Audio has no output
    return workflow


def has_control_widget(name: str, spec) -> bool:
    """Whether the front end adds a control-after-generate widget after this input."""
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "control_after_generate" in options:
        return bool(options["control_after_generate"])
    # Legacy rule of the front end: INT inputs called seed / noise_seed get one by default.
    return spec[0] == "INT" and name in ("seed", "noise_seed")


def ordered_inputs(definition: dict) -> list[tuple[str, list]]:
    """(name, spec) of every required then optional input, in the order the definition gives."""
    inputs = definition.get("input", {})
    order = definition.get("input_order", {})
    result = []
    for group in ("required", "optional"):
        specs = inputs.get(group, {}) or {}
        for name in order.get(group, list(specs)):
            result.append((name, specs[name]))
    return result


def widget_values_by_name(node: dict, definition: dict) -> dict:
    """Map each widget input to its saved value, skipping control-after-generate entries."""
    values = node.get("widgets_values", [])
    widgets = [(n, s) for n, s in ordered_inputs(definition) if is_widget(s)]
    if isinstance(values, dict):
        return {n: values[n] for n, _ in widgets if n in values}
    result, i = {}, 0
    for name, spec in widgets:
        if i >= len(values):
            break
        result[name] = values[i]
        i += 1
        if has_control_widget(name, spec) and i < len(values) and values[i] in CONTROL_VALUES:
            i += 1
        for sub, _ in dynamic_choice_widgets(spec, result[name]):
            if i < len(values):
                result[f"{name}.{sub}"] = values[i]
                i += 1
    return result


def convert(workflow: dict, object_info: dict) -> dict:
    """API prompt {node id: {class_type, inputs, _meta}} for a UI workflow (``for_host`` first);
    raises on unknown nodes."""
    workflow = for_host(workflow, object_info)
    nodes = {n["id"]: n for n in workflow.get("nodes", [])}
    links = _links_by_id(workflow)

    def source_of(link_id, seen=()):
        """Follow a link back through reroutes and bypassed nodes to a real output or a value."""
        origin, slot, _, _, kind = links[link_id]
        node = nodes[origin]
        if node["type"] == "Reroute" or node.get("mode") == MODE_BYPASS:
            if origin in seen:
                raise ConversionError(f"link cycle through node {origin}")
            for inp in node.get("inputs", []):
                if inp.get("link") is not None and (node["type"] == "Reroute" or inp.get("type") == kind):
                    return source_of(inp["link"], seen + (origin,))
            return None
        if node["type"] == "PrimitiveNode":
            return ("value", node.get("widgets_values", [None])[0])
        return ("link", [str(origin), slot])

    prompt, missing = {}, []
    for node_id, node in sorted(nodes.items()):
        kind = node["type"]
        if kind in UI_ONLY_TYPES or node.get("mode") in (MODE_NEVER, MODE_BYPASS):
            continue
        definition = object_info.get(kind)
        if definition is None:
            missing.append(f"{kind} (node {node_id})")
            continue
        inputs = widget_values_by_name(node, definition)
        for inp in node.get("inputs", []):
            if inp.get("link") is None:
                continue
            source = source_of(inp["link"])
            if source is None:
                continue
            inputs[inp["name"]] = source[1]
        entry = {"class_type": kind, "inputs": inputs}
        if node.get("title"):
            entry["_meta"] = {"title": node["title"]}
        prompt[str(node_id)] = entry
    if missing:
        raise ConversionError("node types unknown to this ComfyUI: " + ", ".join(missing))
    return prompt
