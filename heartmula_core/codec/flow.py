"""Codes -> latent: the residual-VQ condition and the Euler ODE solver around the estimator.

``FlowMatching`` keeps the checkpoint's attribute names (``vq_embed``, ``cond_feature_emb``,
``zero_cond_embedding1``, ``estimator``). The solver follows the official schedule exactly (same
float32 time arithmetic) so seeded results match, but keeps every scalar on the device: no host
synchronisation inside the loop.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .estimator import FlowEstimator
from .rvq import ResidualCodebooks


class FlowMatching(nn.Module):
    casts_own_weights = True  # its own weight (zero_cond_embedding1) is never read when decoding

    def __init__(self, config, operations=nn):
        super().__init__()
        c = config
        self.vq_embed = ResidualCodebooks(c.dim, c.codebook_size, c.codebook_dim, c.num_quantizers, operations)
        self.cond_feature_emb = operations.Linear(c.dim, c.dim)
        # Part of the checkpoint; the official decode path never selects it (every frame is conditioned).
        self.zero_cond_embedding1 = nn.Parameter(torch.empty(c.dim))
        self.estimator = FlowEstimator(
            c.num_attention_heads, c.attention_head_dim, c.in_channels, c.out_channels,
            c.num_layers, c.num_layers_2, operations,
        )
        self.latent_dim = c.out_channels

    def condition(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, Q, T] int64 -> condition [B, 2T, dim] at the 25 Hz latent rate."""
        cond = self.cond_feature_emb(self.vq_embed(codes.transpose(1, 2)))
        return cond.repeat_interleave(2, dim=1)


def euler_schedule(steps: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, dt) per step as float32 device tensors, accumulated like the official loop:
    t_{k+1} = t_k + dt_k, dt_{k+1} = linspace[k+2] - t_{k+1}."""
    grid = torch.linspace(0, 1, steps + 1, dtype=torch.float32)
    ts, dts = [grid[0]], [grid[1] - grid[0]]
    for k in range(1, steps):
        ts.append(ts[-1] + dts[-1])
        dts.append(grid[k + 1] - ts[-1])
    return torch.stack(ts).to(device), torch.stack(dts).to(device)


def solve_euler(
    estimator: FlowEstimator,
    noise: torch.Tensor,
    incontext: torch.Tensor,
    incontext_length: int,
    condition: torch.Tensor,
    steps: int,
    guidance: float,
    after_step: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Integrate the velocity field from t=0 (noise) to t=1 (latent), all [B, T, C] float32.

    The first ``incontext_length`` frames are pinned to the noise/in-context interpolation at each
    step and to the in-context latent at the end. With guidance > 1, the unconditional (zero
    condition) and conditional halves run as one doubled batch.
    """
    ts, dts = euler_schedule(steps, noise.device)
    x = noise.clone()
    n = incontext_length
    use_cfg = guidance > 1.0
    if use_cfg:
        fixed = torch.cat([
            torch.cat([incontext, incontext], 0),
            torch.cat([torch.zeros_like(condition), condition], 0),
        ], dim=2)
    else:
        fixed = torch.cat([incontext, condition], dim=2)
    # One shared time row (broadcast over the batch). Float noise of ~1e-7 here can flip the conv
    # decoder's 1/9 rounding of a latent value; this form reproduces the stored reference exactly.
    for k in range(steps):
        t, dt = ts[k], dts[k]
        if n:
            x[:, :n] = (1 - (1 - 1e-6) * t) * noise[:, :n] + t * incontext[:, :n]
        if use_cfg:
            v = estimator(torch.cat([torch.cat([x, x], 0), fixed], dim=2), t.reshape(1))
            uncond, cond = v.float().chunk(2, dim=0)
            v = uncond + guidance * (cond - uncond)
        else:
            v = estimator(torch.cat([x, fixed], dim=2), t.reshape(1)).float()
        x = x + dt * v
        if after_step is not None:
            after_step()
    if n:
        x[:, :n] = incontext[:, :n]
    return x
