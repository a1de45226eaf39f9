"""ComfyUI entry point of the HeartMuLa node pack (V3 API: ``comfy_entrypoint``).

Importing this file is cheap: it registers the ``HeartMuLa`` model folder and defines the entry
point; node modules (and torch models) are imported only when ComfyUI asks for the node list.
Outside ComfyUI (pytest, packaging tools) the host imports fail and nothing is registered.

One node style only: defining NODE_CLASS_MAPPINGS here would make ComfyUI ignore comfy_entrypoint.
"""

from __future__ import annotations

import importlib
import logging

try:  # the host's modules exist only inside ComfyUI
    import folder_paths
    from comfy_api.latest import ComfyExtension
except ImportError:
    folder_paths = None
    ComfyExtension = None

log = logging.getLogger("HeartMuLa")

# The modules of nodes/ that hold nodes, in menu order.
NODE_MODULES = ("loaders", "lora", "conditioning", "sampler", "decoding", "codes_io", "transcription", "scoring")


def node_classes() -> list:
    """Every node class that imports and whose schema builds. A failing module or node is logged and
    left out; it never hides the others."""
    nodes = []
    for name in NODE_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.nodes.{name}")
        except Exception:
            log.exception("HeartMuLa: nodes/%s.py could not be imported; its nodes are unavailable", name)
            continue
        for node in getattr(module, "NODES", []):
            try:
                node.GET_SCHEMA()
            except Exception:
                log.exception("HeartMuLa: node %s has a broken schema and is left out", node.__name__)
                continue
            nodes.append(node)
    return nodes


# Only as a package (how ComfyUI imports a pack); a tool that imports this file as a plain module,
# such as pytest collecting the repository root, gets the definitions and no side effects.
if ComfyExtension is not None and __package__:
    from .nodes import model_folders

    model_folders.register()

    class HeartMuLaExtension(ComfyExtension):
        async def get_node_list(self) -> list:
            return node_classes()


async def comfy_entrypoint():
    """Called by ComfyUI (>= 0.3.48) after importing the pack."""
    if ComfyExtension is None or not __package__:
        raise RuntimeError("The HeartMuLa nodes run inside ComfyUI (comfy_api.latest not found).")
    return HeartMuLaExtension()
