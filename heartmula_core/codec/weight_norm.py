"""Present a checkpoint's weight-normalised convolutions as plain ``weight`` tensors.

Weight norm (w = g * v / ||v||, norm over every dim but 0) is a training device; at inference the
weight is constant, so it is computed once while loading instead of on every forward. Both the
``parametrizations.weight.original0/1`` names (torch >= 2.1) and the older ``weight_g/weight_v``
names are understood.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import CheckpointError
from ..weights import TensorSource

# (suffix of the magnitude g, suffix of the direction v)
NAMINGS = {
    "parametrizations": (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
    "weight_g": (".weight_g", ".weight_v"),
}


def unfold_key(weight_key: str, naming: str) -> tuple[str, str]:
    """'a.b.weight' -> the (g, v) key names that store it under ``naming``."""
    base = weight_key[: -len(".weight")]
    g_suffix, v_suffix = NAMINGS[naming]
    return base + g_suffix, base + v_suffix


class WeightNormFoldingSource(TensorSource):
    """Wraps a TensorSource; every (g, v) pair appears as one folded ``<module>.weight`` key."""

    def __init__(self, base: TensorSource):
        super().__init__(base.entries, base.description)
        self.base = base
        self.folded: dict[str, tuple[str, str]] = {}
        names = set(base.keys())
        paired: set[str] = set()
        for g_suffix, v_suffix in NAMINGS.values():
            for key in names:
                if not key.endswith(g_suffix):
                    continue
                stem = key[: -len(g_suffix)]
                v_key = stem + v_suffix
                if v_key not in names:
                    raise CheckpointError(
                        f"{base.description}: {key} has no partner {v_key} (weight norm stores both). "
                        "The file is incomplete; re-download the HeartCodec folder."
                    )
                self.folded[stem + ".weight"] = (key, v_key)
                paired.update((key, v_key))
        for g_suffix, v_suffix in NAMINGS.values():
            orphans = [k for k in names - paired if k.endswith(v_suffix)]
            if orphans:
                raise CheckpointError(
                    f"{base.description}: {orphans[0]} has no magnitude tensor (…{g_suffix}). "
                    "The file is incomplete; re-download the HeartCodec folder."
                )
        self._keys = [k for k in base.keys() if k not in paired] + list(self.folded)

    def keys(self) -> list[str]:
        return list(self._keys)

    def shape(self, key: str) -> tuple[int, ...]:
        if key in self.folded:
            return self.base.shape(self.folded[key][1])
        return self.base.shape(key)

    def dtype(self, key: str) -> torch.dtype:
        """A folded weight's stored dtype: the direction's, unless either half is not floating point."""
        if key not in self.folded:
            return self.base.dtype(key)
        g, v = (self.base.dtype(k) for k in self.folded[key])
        return v if g.is_floating_point else g

    def load(self, key: str, dtype: torch.dtype | None = None,
             inspect: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        if key not in self.folded:
            return self.base.load(key, dtype, inspect)
        weight = self._load_folded(key)
        if inspect is not None:
            inspect(weight)  # what the weight becomes, before any narrowing cast
        return weight.to(dtype) if dtype is not None else weight

    def _load_folded(self, key: str) -> torch.Tensor:
        """The weight ``g * v / |v|`` in float32."""
        g_key, v_key = self.folded[key]
        g = self.base.load(g_key, torch.float32)
        v = self.base.load(v_key, torch.float32)
        if g.dim() != v.dim() or g.shape[0] != v.shape[0] or g.numel() != g.shape[0]:
            raise CheckpointError(
                f"{self.base.description}: {g_key} has shape {list(g.shape)}, which is not a per-output "
                f"magnitude for {v_key} {list(v.shape)}. Re-download the HeartCodec folder."
            )
        return torch._weight_norm(v, g, 0)
