"""Residual-VQ lookup: code indices -> the 512-d condition the flow-matching transformer uses.

Only inference state is kept: each codebook's ``embed`` table and the shared ``project_out``.
The EMA statistics and ``project_in`` of the training checkpoint are skipped at load time.
Attribute names mirror the checkpoint (vector_quantize_pytorch layout) so keys load directly.
"""

from __future__ import annotations

import torch
from torch import nn


class _Codebook(nn.Module):
    casts_own_weights = True  # moves its own weights to the activations' device per call (partial loads)

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.embed = nn.Parameter(torch.empty(1, size, dim))


class _Layer(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        self._codebook = _Codebook(size, dim)


class ResidualCodebooks(nn.Module):
    def __init__(self, dim: int, codebook_size: int, codebook_dim: int, num_quantizers: int, operations=nn):
        super().__init__()
        self.codebook_size = codebook_size
        self.layers = nn.ModuleList(_Layer(codebook_size, codebook_dim) for _ in range(num_quantizers))
        self.project_out = operations.Linear(codebook_dim, dim)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """indices [B, T, Q] int64 -> [B, T, dim]: project_out(sum over q of codebook_q[index_q])."""
        looked_up = torch.stack(
            [layer._codebook.embed[0].to(indices.device)[indices[..., q]] for q, layer in enumerate(self.layers)]
        )
        summed = looked_up.sum(dim=0)
        return self.project_out(summed.to(self.project_out.weight.dtype))
