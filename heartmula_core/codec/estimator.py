"""The flow-matching transformer ("estimator"): predicts the latent velocity at time t.

Input per frame: [noisy latent | in-context latent | condition]. Two stacks of Llama-style blocks
(the second twice as wide) with RMSNorm, interleaved-pair RoPE, SwiGLU and AdaLN-single timestep
modulation; convolutional projections in, between and out. Attribute names follow the checkpoint.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def mlp_hidden(dim: int, multiple_of: int = 256) -> int:
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class RMSNorm(nn.Module):
    casts_own_weights = True  # moves its own weights to the activations' device per call (partial loads)

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight.to(x.device, x.dtype) * xf.to(x.dtype)


def rope_tables(length: int, head_dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [length, head_dim/2] in float32 (base 10000), one row per position."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (even, odd) channel pair of x [B, H, T, D] by its position's angle."""
    pairs = x.unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, operations=nn):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q_proj = operations.Linear(dim, inner, bias=False)
        self.k_proj = operations.Linear(dim, inner, bias=False)
        self.v_proj = operations.Linear(dim, inner, bias=False)
        self.o_proj = operations.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, t, _ = x.shape
        split = lambda y: y.view(b, t, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        cos, sin = (r.to(x.dtype) for r in rope)
        q = apply_rope(split(self.q_proj(x)), cos, sin)
        k = apply_rope(split(self.k_proj(x)), cos, sin)
        out = F.scaled_dot_product_attention(q, k, split(self.v_proj(x)))
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, operations=nn):
        super().__init__()
        hidden = mlp_hidden(dim)
        self.gate = operations.Linear(dim, hidden, bias=False)
        self.up = operations.Linear(dim, hidden, bias=False)
        self.down = operations.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    """Pre-norm attention + MLP, each modulated (shift, scale) and gated by the timestep."""

    casts_own_weights = True  # moves its own weights to the activations' device per call (partial loads)

    def __init__(self, dim: int, heads: int, head_dim: int, operations=nn):
        super().__init__()
        self.attn_norm = RMSNorm(dim)
        self.attn = Attention(dim, heads, head_dim, operations)
        self.mlp_norm = RMSNorm(dim)
        self.mlp = SwiGLU(dim, operations)
        self.scale_shift_table = nn.Parameter(torch.empty(6, dim))

    def forward(self, x: torch.Tensor, modulation: torch.Tensor, rope) -> torch.Tensor:
        # modulation [B or 1, 6 * dim] -> six [B or 1, 1, dim] vectors
        mod = self.scale_shift_table.to(x.device, x.dtype)[None] + modulation.unflatten(-1, (6, -1))
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mod.chunk(6, dim=1)
        x = x + gate_a * self.attn(self.attn_norm(x) * (1 + scale_a) + shift_a, rope)
        x = x + gate_m * self.mlp(self.mlp_norm(x) * (1 + scale_m) + shift_m)
        return x


class ConvProjection(nn.Module):
    """Conv1d (kernel 3) over time, scaled by 1/sqrt(kernel), then a Linear."""

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3, operations=nn):
        super().__init__()
        self.scale = kernel_size ** -0.5
        self.ffn_1 = operations.Conv1d(in_dim, out_dim, kernel_size, padding=kernel_size // 2)
        self.ffn_2 = operations.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_2(self.ffn_1(x.transpose(1, 2)).transpose(1, 2) * self.scale)


class _TimestepMLP(nn.Module):
    def __init__(self, in_dim: int, dim: int, operations=nn):
        super().__init__()
        self.linear_1 = operations.Linear(in_dim, dim)
        self.linear_2 = operations.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class _TimestepEmbedding(nn.Module):
    def __init__(self, dim: int, operations=nn):
        super().__init__()
        self.timestep_embedder = _TimestepMLP(TIME_FEATURES, dim, operations)


TIME_FEATURES = 512


def sinusoidal_time(t: torch.Tensor) -> torch.Tensor:
    """t [N] in [0, 1] -> [N, 512] features: cos then sin of t * 1000 * 10000^(-i/256)."""
    half = TIME_FEATURES // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half).to(t.dtype)
    args = t[:, None] * freqs[None] * 1000
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class AdaLNSingle(nn.Module):
    """Timestep -> (per-block modulation [N, 6*dim], final-norm embedding [N, dim])."""

    def __init__(self, dim: int, operations=nn):
        super().__init__()
        self.emb = _TimestepEmbedding(dim, operations)
        self.linear = operations.Linear(dim, 6 * dim)

    def forward(self, time_features: torch.Tensor, dtype: torch.dtype):
        embedded = self.emb.timestep_embedder(time_features.to(dtype))
        return self.linear(F.silu(embedded)), embedded


class FlowEstimator(nn.Module):
    casts_own_weights = True  # moves its own weights to the activations' device per call (partial loads)

    def __init__(self, heads: int, head_dim: int, in_channels: int, out_channels: int,
                 num_layers: int, num_layers_2: int, operations=nn):
        super().__init__()
        dim, dim2 = heads * head_dim, 2 * heads * head_dim
        self.head_dim = head_dim
        self.proj_in = ConvProjection(in_channels, dim, operations=operations)
        self.transformer_blocks = nn.ModuleList(Block(dim, heads, head_dim, operations) for _ in range(num_layers))
        self.transformer_blocks_2 = nn.ModuleList(Block(dim2, heads, 2 * head_dim, operations) for _ in range(num_layers_2))
        self.connection_proj = ConvProjection(in_channels + dim, dim2, operations=operations)
        self.scale_shift_table = nn.Parameter(torch.empty(2, dim))
        self.scale_shift_table_2 = nn.Parameter(torch.empty(2, dim2))
        self.proj_out = ConvProjection(dim2, out_channels, operations=operations)
        self.adaln_single = AdaLNSingle(dim, operations)
        self.adaln_single_2 = AdaLNSingle(dim2, operations)

    def _rope(self, length: int, device):
        """RoPE tables of both stacks, kept for the last (length, device): every Euler step reuses them."""
        key = (length, str(device))
        if getattr(self, "_rope_key", None) != key:
            self._rope_cache = (rope_tables(length, self.head_dim, device), rope_tables(length, 2 * self.head_dim, device))
            self._rope_key = key
        return self._rope_cache

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype: that of the input convolution's weight (a Linear's weight may be fp8, or a
        host's quantized tensor reporting the host's compute dtype; the convolution is always a
        plain cast layer, so a partial load never changes it)."""
        return self.proj_in.ffn_1.weight.dtype

    @staticmethod
    def _final_norm(x: torch.Tensor, table: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        shift, scale = (table.to(x.device, x.dtype)[None] + embedded[:, None]).chunk(2, dim=1)
        x = F.layer_norm(x.float(), (x.shape[-1],), eps=1e-6).to(x.dtype)
        return x * (1 + scale) + shift

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x [B, T, in_channels], t [B] or [1] (shared by the batch) -> velocity [B, T, out_channels]."""
        dtype = self.dtype
        x = x.to(dtype)
        length = x.shape[1]
        time_features = sinusoidal_time(t.float().reshape(-1))
        rope, rope_2 = self._rope(length, x.device)

        mod, embedded = self.adaln_single(time_features, dtype)
        s = self.proj_in(x)
        for block in self.transformer_blocks:
            s = block(s, mod, rope)
        s = self._final_norm(s, self.scale_shift_table, embedded)

        mod2, embedded2 = self.adaln_single_2(time_features, dtype)
        h = self.connection_proj(torch.cat([x, s], dim=-1))
        for block in self.transformer_blocks_2:
            h = block(h, mod2, rope_2)
        h = self._final_norm(h, self.scale_shift_table_2, embedded2)
        return self.proj_out(h)
