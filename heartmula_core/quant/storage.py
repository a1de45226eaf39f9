"""Which weights are held in fp8, how the layers a model is built with take them, and the one
value that carries that choice from a front door to the layers (``WeightStorage``).

What gets fp8 (decided per model from its torch.nn build, see ``lm_candidates`` /
``codec_candidates``): the weight of every Linear and Embedding of the LM, and of every Linear of
the codec's flow-matching transformer ("estimator"). Embeddings pay most: the LM's two tables are
15 % of its weights and a frame reads only a few rows of them, so their lookup gathers fp8 rows and
casts just those. Norms, biases, the codec's convolutions, codebooks and everything outside the
estimator keep their precision. ``audio_head`` (the LM's bare [7, D, V] matrix, 4.5 % of it) is
fp8 in checkpoints this pack writes but held in the compute dtype until the model scales it itself
(kind "matrix"; no host layout holds it yet). ``unconditional_text_embedding`` stays: the model
reads its weight directly, past any layer's cast.

How layers want an fp8 weight (``HostLayout``): the core's own layers take ``<layer>.weight``
(fp8) + ``<layer>.weight_scale`` (float32 scalar) (``CORE``); fp8 checkpoints add ComfyUI's
``<layer>.comfy_quant`` marker (``CHECKPOINT``). A host with layers of its own describes them with
a HostLayout of its own (ComfyUI's: nodes/fp8_ops.py); the core knows no host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from . import formats

LINEAR, EMBEDDING, MATRIX = "linear", "embedding", "matrix"  # kinds that may be held in fp8
KEPT_LINEAR, KEPT = "kept linear", "kept"  # layers that keep their precision


@dataclass(frozen=True)
class HostLayout:
    """How the layers a model is built with take an fp8 weight."""

    name: str
    scale_suffix: str | None  # "<layer>.<suffix>" holds the float32 scale
    comfy_quant: bool  # also a "<layer>.comfy_quant" JSON marker
    kinds: frozenset  # candidate kinds these layers can hold in fp8
    scale_all_linear: bool = False  # every Linear has a scale, fp8 or not (scaled_fp8_ops)


CORE = HostLayout("core layers (heartmula_core.quant.ops)", "weight_scale", False, frozenset({LINEAR, EMBEDDING}))
CHECKPOINT = HostLayout("fp8 checkpoint", "weight_scale", True, frozenset({LINEAR, EMBEDDING, MATRIX}))


@dataclass(frozen=True)
class WeightStorage:
    """How a model holds its weights, passed whole from a front door to the loader: ``fp8`` (None:
    every weight in the compute dtype), the layer namespace the model is built with (None: torch.nn,
    or the core's fp8 layers when ``fp8`` is set) and how those layers take an fp8 weight."""

    fp8: torch.dtype | None = None
    operations: Any = field(default=None, compare=False)
    layout: HostLayout = CORE

    @classmethod
    def named(cls, weight_dtype: str) -> "WeightStorage":
        """The command line's and jobs files' choice (``default``, ``fp8_e4m3fn``, ``fp8_e5m2``) on the
        core's own layers."""
        return cls(formats.parse_weight_dtype(weight_dtype))

    def layers(self, compute_dtype: torch.dtype):
        """The layer namespace to build with: the given one, the core's fp8 layers, or None (torch.nn)."""
        if self.operations is None and self.fp8 is not None:
            from .ops import operations

            return operations(compute_dtype)
        return self.operations


def scale_key(key: str, suffix: str = "weight_scale") -> str:
    """``a.b.weight`` -> ``a.b.weight_scale``; a bare matrix ``audio_head`` -> ``audio_head_scale``."""
    return key[: -len("weight")] + suffix if key.endswith(".weight") else key + "_scale"


def marker_key(key: str) -> str | None:
    return key[: -len("weight")] + "comfy_quant" if key.endswith(".weight") else None


def layer_candidates(model: nn.Module, within: str = "") -> dict[str, str]:
    """key -> kind of every torch.nn Linear / Embedding weight of ``model`` (a torch.nn build);
    layers outside ``within`` are "kept" (a host that scales every Linear still needs to know them)."""
    found = {}
    for name, module in model.named_modules():
        inside = name.startswith(within)
        if isinstance(module, nn.Linear):
            found[f"{name}.weight"] = LINEAR if inside else KEPT_LINEAR
        elif isinstance(module, nn.Embedding):
            found[f"{name}.weight"] = EMBEDDING if inside else KEPT
    return found


def lm_candidates(model: nn.Module) -> dict[str, str]:
    found = layer_candidates(model)
    found["unconditional_text_embedding.weight"] = KEPT  # read directly by the model, past the layer
    found["audio_head"] = MATRIX
    return found


def codec_candidates(model: nn.Module) -> dict[str, str]:
    return layer_candidates(model, "flow_matching.estimator.")


@dataclass(frozen=True)
class WeightPlan:
    """Which model keys the loaded model holds in fp8 (``keys``), and in which host layout."""

    fp8: torch.dtype | None
    layout: HostLayout
    keys: frozenset
    scaled: frozenset  # keys that come with a scale key (fp8 keys, or every Linear for scaled_fp8_ops)
    rounded: frozenset = frozenset()  # fp8 candidates these layers hold wide: fp8 values, compute dtype

    def scale_key(self, key: str) -> str:
        return scale_key(key, self.layout.scale_suffix)

    def extra_keys(self, key: str) -> dict[str, tuple[int, ...]]:
        """The keys the host layer wants beside ``key`` (scale, marker), with their shapes."""
        extra = {}
        if key in self.scaled:
            extra[self.scale_key(key)] = ()
        if key in self.keys and self.layout.comfy_quant and marker_key(key):
            extra[marker_key(key)] = tuple(formats.comfy_quant_tensor(self.fp8).shape)
        return extra


def plan_for(candidates: Mapping[str, str], weight_dtype: torch.dtype | None, layout: HostLayout = CORE) -> WeightPlan:
    """The weights of kinds ``layout`` can hold are held in fp8; the other fp8 candidates are held
    in the compute dtype but rounded through fp8 (``rounded``), so every host and the fp8
    checkpoint give a model the same weight values."""
    if weight_dtype is None:  # nothing in fp8: the host builds its usual layers, which want no scales
        return WeightPlan(None, layout, frozenset(), frozenset())
    keys = frozenset(k for k, kind in candidates.items() if kind in layout.kinds)
    rounded = frozenset(k for k, kind in candidates.items() if kind in (LINEAR, EMBEDDING, MATRIX)) - keys
    scaled = keys if layout.scale_suffix else frozenset()
    if layout.scale_all_linear:
        scaled = scaled | {k for k, kind in candidates.items() if kind in (LINEAR, KEPT_LINEAR)}
    return WeightPlan(weight_dtype, layout, keys, scaled, rounded)


def held_bytes(shapes: Mapping[str, tuple[int, ...]], plan: WeightPlan,
               dtype_for: Callable[[str], torch.dtype]) -> int:
    """Bytes of the weights a model holds once loaded with ``plan`` (memory checks, the VRAM table):
    its fp8 keys at one byte plus their scale/marker keys, every other tensor in ``dtype_for``'s dtype."""
    total = 0
    for key, shape in shapes.items():
        n = math.prod(shape)
        if key in plan.keys:
            total += n + sum(4 if s == () else s[0] for s in plan.extra_keys(key).values())
        else:
            total += n * torch.empty((), dtype=dtype_for(key)).element_size()
            total += 4 if key in plan.scaled else 0
    return total

