"""The core's own fp8 layers (command line and plain PyTorch use; inside ComfyUI the host's ops cast).

``operations(compute_dtype)`` is a layer namespace for the models' ``operations`` argument
(``Linear``, ``Embedding``, ``Conv1d``, ``ConvTranspose1d``). Its Linear and Embedding hold
whatever weight they are loaded with: a float weight works as in torch.nn; an fp8 weight (+ an
optional ``weight_scale``, see ``store.CORE``) is cast to the activations' dtype on every call, so
it costs one byte per weight at rest, on the CPU as on a GPU (torch has no CPU fp8 matmul).

The per-tensor scale is applied to the matmul's output, not to the weight (one multiply of a few
rows instead of one of the whole matrix); in float16, whose range an unscaled fp8 matmul could
overflow, it is applied to the weight instead. ``torch._scaled_mm`` (fp8 tensor cores) is not used:
it also quantizes the activations to fp8, which changes the numbers; see benchmarks/RESULTS.md.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from . import formats


def _expect_scale(module: nn.Module, state_dict, prefix: str) -> None:
    """A layer loaded with ``<prefix>weight_scale`` gets a (placeholder) parameter of that name first,
    so torch's own loading fills it like the weight; a layer loaded without one has none."""
    scale = state_dict.get(prefix + "weight_scale")
    if scale is not None and not hasattr(module, "weight_scale"):
        module.weight_scale = nn.Parameter(torch.empty(scale.shape, dtype=torch.float32, device="meta"),
                                           requires_grad=False)


def _scaled_weight(module: nn.Module, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight in ``like``'s dtype/device and the factor its output still needs (None: none)."""
    weight = module.weight.to(like.device)
    scale = getattr(module, "weight_scale", None)
    if not formats.is_fp8(weight.dtype):
        return weight.to(like.dtype), None if scale is None else scale.to(like.device, like.dtype)
    total = scale.to(like.device, torch.float32) if scale is not None else torch.ones((), device=like.device)
    if like.dtype == torch.float16:  # scale first, in float32: fp16 could neither hold the scale nor the sums
        weight, factor = formats.fp8_to(weight, torch.float32)
        return (weight * (total * factor)).to(like.dtype), None
    weight, factor = formats.fp8_to(weight, like.dtype)
    return weight, (total * factor).to(like.dtype)


class Linear(nn.Linear):
    """nn.Linear that also takes an fp8 weight + ``weight_scale`` (cast per call)."""

    def reset_parameters(self) -> None:  # built on the meta device and loaded: nothing to initialise
        return None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _expect_scale(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not formats.is_fp8(self.weight.dtype) and not hasattr(self, "weight_scale"):
            return super().forward(x)
        weight, factor = _scaled_weight(self, x)
        out = F.linear(x, weight)
        if factor is not None:
            out = out * factor
        return out if self.bias is None else out + self.bias.to(x.device, x.dtype)


class Embedding(nn.Embedding):
    """nn.Embedding that also takes an fp8 table + ``weight_scale``: gathers fp8 rows (as bytes,
    which every device indexes) and casts only those to ``compute_dtype``."""

    compute_dtype: torch.dtype = torch.float32

    def reset_parameters(self) -> None:
        return None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _expect_scale(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not formats.is_fp8(self.weight.dtype):
            return super().forward(ids)
        table = self.weight.to(ids.device)
        rows = F.embedding(ids, table.view(torch.uint8)).view(table.dtype)
        rows, factor = formats.fp8_to(rows, torch.float32)  # a few rows: scaled in float32, then cast once
        scale = getattr(self, "weight_scale", None)
        total = (scale.to(ids.device, torch.float32) if scale is not None else torch.ones((), device=ids.device)) * factor
        return (rows * total).to(self.compute_dtype)


def operations(compute_dtype: torch.dtype = torch.float32) -> SimpleNamespace:
    """Layers for ``build_lm`` / ``build_codec``: fp8-capable Linear and Embedding (embeddings
    return ``compute_dtype``), torch.nn convolutions."""
    embedding = type("Embedding", (Embedding,), {"compute_dtype": compute_dtype})
    return SimpleNamespace(Linear=Linear, Embedding=embedding, Conv1d=nn.Conv1d, ConvTranspose1d=nn.ConvTranspose1d)
