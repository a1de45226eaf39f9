"""What every node of the pack shares: its menu category, widget ranges from the song path's knobs,
and errors the ComfyUI front end shows by their short names (host_errors.py)."""

from __future__ import annotations

from comfy_api.latest import io

from ..heartmula_core.settings import KNOBS
from .host_errors import readable_errors

CATEGORY = "audio/HeartMuLa"


class HeartMuLaNode(io.ComfyNode):
    """Base of the pack's nodes: each subclass raises the pack's errors under host-readable names."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        readable_errors(cls)


def widget(knob: str) -> dict:
    """A widget's min / max (/ step) for ``knob``: the range the song path defines, narrowed to what
    a slider offers."""
    low, high, step = KNOBS[knob].widget
    return {"min": low, "max": high} if KNOBS[knob].whole else {"min": low, "max": high, "step": step}
