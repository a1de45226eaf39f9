"""Print, as JSON, what the stand-in host (tests/host) says each pack node's /object_info entry is.

Run in its own process (the stand-in's ``comfy_api`` must not meet ComfyUI's); the real-host test
compares the result with the real server's /object_info, so a test that builds widget values from
the stand-in's schema cannot pass on the stand-in and fail in ComfyUI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "host"))
    sys.path.insert(1, str(ROOT / "tests"))
    from pack_import import import_pack

    pack = import_pack()
    with_server_loras()
    out = {}
    for cls in pack.node_classes():
        schema = cls.GET_SCHEMA()
        out[schema.node_id] = {
            "input": cls.INPUT_TYPES(),
            "output": [o.io_type for o in schema.outputs or []],
            "output_node": schema.is_output_node,
            "category": schema.category,
            "display_name": schema.display_name,
        }
    json.dump(out, sys.stdout)


def with_server_loras() -> None:
    """The loras folder as the harness fills the server's (comfy_server.prepare_base_directory)."""
    import atexit
    import shutil
    import tempfile

    import folder_paths

    sys.path.insert(0, str(ROOT / "tests"))
    from lora_fixtures import install_example_lora

    models = Path(tempfile.mkdtemp(prefix="heartmula-standin-models-"))
    atexit.register(shutil.rmtree, models, True)
    install_example_lora(models)
    folder_paths.folder_names_and_paths["loras"] = ([str(models / "loras")], folder_paths.supported_pt_extensions)


if __name__ == "__main__":
    main()
