"""Shared test setup: which ComfyUI the node tests talk to, and how the pack is imported.

- ``COMFYUI_DIR`` unset: tests/host (a small stand-in of the ComfyUI API the pack uses) goes first
  on sys.path, so ``comfy``, ``comfy_api`` and ``folder_paths`` are the stand-in's.
- ``COMFYUI_DIR`` set: that ComfyUI checkout goes first instead, and the same node tests run on the
  real modules (forced to --cpu when torch has no CUDA, as the real server would need).

The pack itself is imported the way ComfyUI imports a custom node: its root ``__init__.py`` as a
package (named ``heartmula_pack`` here), so the nodes' relative imports resolve as in the server.
Core tests keep importing ``heartmula_core`` from the repository root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# The models in tests are tiny: one thread is fastest, and several threads on a shared 2-core CI
# machine spin against each other (measured: 20 tiny-LM frames 0.3 s on 1 thread, 60 s on 2 under load).
torch.set_num_threads(int(os.environ.get("HEARTMULA_TEST_THREADS", "1")))

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
COMFYUI_DIR = os.environ.get("COMFYUI_DIR") or None

if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after everything else: ComfyUI's own top-level `nodes` must win
if COMFYUI_DIR:
    sys.path.insert(0, os.path.abspath(COMFYUI_DIR))
    import comfy.cli_args

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True  # model_management picks its device at import
else:
    sys.path.insert(0, str(TESTS / "host"))

from pack_import import import_pack  # noqa: E402  (imports the pack only when called, on the host set above)


def real_host() -> bool:
    return COMFYUI_DIR is not None


def host_version() -> tuple[int, ...]:
    """The real ComfyUI's version (its comfyui_version.py), e.g. (0, 33, 0); the stand-in, which
    follows the newest ComfyUI where versions differ, counts as newer than any."""
    if COMFYUI_DIR is None:
        return (999,)
    text = (Path(COMFYUI_DIR) / "comfyui_version.py").read_text()
    return tuple(int(part) for part in text.split("__version__ = ")[1].strip().strip("\"'").split("."))


@pytest.fixture(scope="session")
def pack():
    return import_pack()
