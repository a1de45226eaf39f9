"""What every node of the pack shares: its menu category, widget ranges from the song path's knobs,
errors the ComfyUI front end shows by their short names (host_errors.py), and the host's "advanced"
input mark where it has one."""

from __future__ import annotations

import functools
import inspect

from comfy_api.latest import io

from ..heartmula_core.settings import KNOBS
from .host_errors import readable_errors

CATEGORY = "audio/HeartMuLa"


class HeartMuLaNode(io.ComfyNode):
    """Base of the pack's nodes: each subclass raises the pack's errors under host-readable names, and
    its docstring is the description users read (one text, not a docstring and a copy)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        readable_errors(cls)

    @classmethod
    def declare(cls, node_id: str, display_name: str, **fields) -> io.Schema:
        """The node's schema, described by its docstring."""
        return schema(node_id, display_name, " ".join(inspect.cleandoc(cls.__doc__ or "").split()), **fields)


def widget(knob: str) -> dict:
    """A widget's min / max (/ step) for ``knob``: the range the song path defines, narrowed to what
    a slider offers."""
    low, high, step = KNOBS[knob].widget
    return {"min": low, "max": high} if KNOBS[knob].whole else {"min": low, "max": high, "step": step}


@functools.cache
def _host_takes_advanced() -> bool:
    try:
        return "advanced" in inspect.signature(io.Combo.Input.__init__).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def advanced() -> dict:
    """``{"advanced": True}`` where the host's V3 inputs take that keyword (ComfyUI 0.28 and later: the
    front end folds such inputs under the node's advanced toggle, as ComfyUI's own loaders do with
    ``weight_dtype``), else ``{}`` (0.3.64), so ``io.X.Input(..., **advanced())`` builds everywhere."""
    return {"advanced": True} if _host_takes_advanced() else {}


def schema(node_id: str, display_name: str, description: str, **fields) -> io.Schema:
    """A node's schema in the pack's menu category (``fields``: inputs, outputs and the rest)."""
    return io.Schema(node_id=node_id, display_name=display_name, category=CATEGORY, description=description,
                     **fields)
