"""The core's own fp8 layers (command line and plain PyTorch use; inside ComfyUI the host's ops cast).

``operations(compute_dtype)`` is a layer namespace for the models' ``operations`` argument
(``Linear``, ``Embedding``, ``Conv1d``, ``ConvTranspose1d``). Its Linear and Embedding hold
whatever weight they are loaded with: a float weight works as in torch.nn; an fp8 weight (+ an
optional ``weight_scale``, see ``storage.CORE``) is cast to the activations' dtype on every call, so
it costs one byte per weight at rest, on the CPU as on a GPU (torch has no CPU fp8 matmul).

The per-tensor scale is applied to the matmul's output, not to the weight (one multiply of a few
rows instead of one of the whole matrix); in float16, whose range holds neither a typical scale nor
an unscaled fp8 matmul, the weight is scaled first, in float32. On the CPU the matmul runs in
float32 whatever the activations' dtype: the weight is converted with bit moves
(``formats.fp8_to``; fp8 -> bf16 has no fast path) a block of rows at a time, each block used
while it is still in cache. ``torch._scaled_mm`` (fp8 tensor cores) is not used: it also
quantizes the activations to fp8, which changes the numbers, and needs an sm89+ GPU and
dimensions divisible by 16; left for a GPU-measured follow-up.
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


CPU_BLOCK_ELEMENTS = 1 << 19  # weight elements converted at a time on the CPU: the copy stays in cache


def _scale(module: nn.Module, device) -> torch.Tensor:
    scale = getattr(module, "weight_scale", None)
    return scale.to(device, torch.float32) if scale is not None else torch.ones((), device=device)


def _cpu_matmul(x: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, float]:
    """float32 x @ fp8 weight^T on the CPU, the weight converted a block of rows at a time so each
    block is used while in cache (converting a whole 8192 x 3072 weight first, 100 MB of float32,
    made the 3B LM's CPU frame 8x slower)."""
    rows = max(1, CPU_BLOCK_ELEMENTS // max(1, q.shape[1]))
    parts, factor = [], 1.0
    for start in range(0, q.shape[0], rows):
        weight, factor = formats.fp8_to(q[start:start + rows], torch.float32)
        parts.append(F.linear(x, weight))
    return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)), factor


class _Loaded:
    """Built on the meta device and loaded: nothing to initialise; a ``weight_scale`` among the
    loaded tensors gets its parameter first (``_expect_scale``)."""

    def reset_parameters(self) -> None:
        return None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _expect_scale(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Linear(_Loaded, nn.Linear):
    """nn.Linear that also takes an fp8 weight + ``weight_scale`` (cast per call)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not formats.is_fp8(self.weight.dtype):
            out = super().forward(x)
            return out if not hasattr(self, "weight_scale") else out * _scale(self, x.device).to(out.dtype)
        q, scale = self.weight.to(x.device), _scale(self, x.device)
        if x.device.type == "cpu":  # fp8 -> float32 is a cheap bit move here, to bf16/fp16 it is not
            out, factor = _cpu_matmul(x.float(), q)
            out = out * (scale * factor)
        elif x.dtype == torch.float16:  # fp16 holds neither a typical scale nor unscaled sums: scale first
            out = F.linear(x, (q.float() * scale).to(x.dtype))
        else:
            out = F.linear(x, q.to(x.dtype)) * scale.to(x.dtype)
        if self.bias is not None:
            out = out + self.bias.to(x.device, out.dtype)
        return out.to(x.dtype)


class Embedding(_Loaded, nn.Embedding):
    """nn.Embedding that also takes an fp8 table + ``weight_scale``: gathers fp8 rows (as bytes,
    which every device indexes) and casts only those to ``compute_dtype``."""

    compute_dtype: torch.dtype = torch.float32

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
