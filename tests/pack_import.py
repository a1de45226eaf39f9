"""The pack imported as ComfyUI imports a custom node (a spec from the root __init__.py, registered
in sys.modules under one name): for the tests, the stand-in schema dump and the benchmarks, which
run it on whichever host is first on sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "heartmula_pack"


def import_pack():
    """The pack module (imported once per process)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(PACK_NAME, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module
