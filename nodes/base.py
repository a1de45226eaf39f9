"""What every node of the pack shares: its menu category, a Schema with it filled in, and errors
the ComfyUI front end shows by their short names (host_errors.py)."""

from __future__ import annotations

from comfy_api.latest import io

from .host_errors import readable_errors

CATEGORY = "audio/HeartMuLa"


class HeartMuLaNode(io.ComfyNode):
    """Base of the pack's nodes: each subclass raises the pack's errors under host-readable names."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        readable_errors(cls)


def schema(node_id: str, display_name: str, description: str, inputs: list, outputs: list, **options) -> io.Schema:
    """A node's Schema in the pack's category."""
    return io.Schema(node_id=node_id, display_name=display_name, category=CATEGORY, description=description,
                     inputs=inputs, outputs=outputs, **options)
