"""The pack's entry point: cheap import, one V3 extension, every node well described, and a broken
part never hiding the others."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import types
from pathlib import Path

from heartmula_node_env import comfy_home  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
NODE_IDS = {
    "HeartMuLaLMLoader", "HeartMuLaCodecLoader", "HeartMuLaLyricsTags", "HeartMuLaTags", "HeartMuLaSampler",
    "HeartMuLaContinueSong", "HeartMuLaCodecDecode", "HeartMuLaSaveCodes", "HeartMuLaLoadCodes",
}


def node_list(pack):
    extension = asyncio.run(pack.comfy_entrypoint())
    return asyncio.run(extension.get_node_list())


def test_import_outside_comfyui_is_cheap_and_has_only_the_v3_entry_point(tmp_path):
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('pack', {str(ROOT / '__init__.py')!r}, "
        f"submodule_search_locations=[{str(ROOT)!r}])\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['pack'] = m; spec.loader.exec_module(m)\n"
        "print(callable(m.comfy_entrypoint), hasattr(m, 'NODE_CLASS_MAPPINGS'), 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False"]


def test_extension_lists_every_node_with_category_tooltips_and_names(pack, comfy_home):
    nodes = node_list(pack)
    schemas = [n.GET_SCHEMA() for n in nodes]
    assert NODE_IDS <= {s.node_id for s in schemas}  # plus the optional listening nodes when present
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")
    for s in schemas:
        assert s.node_id.startswith("HeartMuLa")
        assert s.category == "audio/HeartMuLa"
        assert s.display_name and s.description
        for i in s.inputs:
            assert i.tooltip, f"{s.node_id}.{i.id} has no tooltip"
        for o in s.outputs if s.node_id in NODE_IDS else []:
            assert o.tooltip, f"{s.node_id} output {o.display_name} has no tooltip"


def test_socket_types_connect_the_chain(pack, comfy_home):
    by_id = {n.GET_SCHEMA().node_id: n.GET_SCHEMA() for n in node_list(pack)}

    def outputs(node_id):
        return [o.io_type for o in by_id[node_id].outputs]

    def inputs(node_id):
        return {i.id: i.get_io_type() for i in by_id[node_id].inputs}

    assert outputs("HeartMuLaLMLoader") == ["HEARTMULA_LM"]
    assert outputs("HeartMuLaCodecLoader") == ["HEARTCODEC"]
    assert inputs("HeartMuLaLyricsTags")["lm"] == "HEARTMULA_LM"
    assert outputs("HeartMuLaLyricsTags") == ["HEARTMULA_PROMPT"]
    assert inputs("HeartMuLaSampler")["prompt"] == "HEARTMULA_PROMPT"
    assert outputs("HeartMuLaSampler") == ["HEARTMULA_CODES"]
    assert inputs("HeartMuLaContinueSong")["continue_from"] == "HEARTMULA_CODES"
    assert outputs("HeartMuLaContinueSong") == ["HEARTMULA_CODES"]
    assert inputs("HeartMuLaCodecDecode")["codes"] == "HEARTMULA_CODES"
    assert outputs("HeartMuLaCodecDecode") == ["AUDIO"]
    assert outputs("HeartMuLaLoadCodes") == ["HEARTMULA_CODES"]
    assert by_id["HeartMuLaSaveCodes"].is_output_node
    assert outputs("HeartMuLaTags") == ["STRING"]


def test_seeds_have_control_after_generate(pack, comfy_home):
    for node_id in ("HeartMuLaSampler", "HeartMuLaContinueSong", "HeartMuLaCodecDecode"):
        node = next(n for n in node_list(pack) if n.GET_SCHEMA().node_id == node_id)
        _, options = node.INPUT_TYPES()["required"]["seed"]
        assert options["control_after_generate"] is True
        assert options["max"] == 0xFFFFFFFFFFFFFFFF


def test_a_broken_part_never_hides_the_other_nodes(pack, comfy_home, monkeypatch, caplog):
    from comfy_api.latest import io

    class BrokenSchema(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            raise RuntimeError("schema exploded")

        @classmethod
        def execute(cls, **kwargs):
            raise AssertionError

    real_import = pack.importlib.import_module

    def fake_import(name, package=None):
        if name.endswith(".explodes"):
            raise RuntimeError("import exploded")
        if name.endswith(".broken"):
            return types.SimpleNamespace(NODES=[BrokenSchema])
        return real_import(name, package)

    monkeypatch.setattr(pack, "importlib", types.SimpleNamespace(import_module=fake_import))
    monkeypatch.setattr(pack, "NODE_MODULES", ("loaders", "conditioning", "sampler", "decoding", "codes_io", "explodes",
                                            "broken", "not_in_this_checkout"))
    ids = {n.GET_SCHEMA().node_id for n in pack.node_classes()}
    assert ids == NODE_IDS
    assert "import exploded" in caplog.text and "schema exploded" in caplog.text


def test_model_folder_is_registered_after_user_paths(pack, comfy_home, monkeypatch):
    import folder_paths

    user_path = str(comfy_home.base / "elsewhere" / "HeartMuLa")
    monkeypatch.delitem(folder_paths.folder_names_and_paths, "HeartMuLa")
    folder_paths.add_model_folder_path("HeartMuLa", user_path)  # as extra_model_paths.yaml does first
    pack.nodes.model_folders.register()
    paths = folder_paths.get_folder_paths("HeartMuLa")
    models = folder_paths.models_dir
    assert paths == [user_path, os.path.join(models, "HeartMuLa"), os.path.join(models, "heartmula")]
