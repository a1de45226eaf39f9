"""Llama building blocks with an external static KV cache, in the manner of gpt-fast.

Parameter names follow the checkpoints (torchtune's Llama naming): attn.{q,k,v,output}_proj,
mlp.w1 (gate) / w3 (up) / w2 (down), sa_norm.scale, mlp_norm.scale, norm.scale.
Caches, RoPE tables and masks are not module state: a generation allocates them (see
``TransformerState``) on the device it runs on and drops them afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from .config import LlamaConfig


class RMSNorm(nn.Module):
    """RMS norm computed in float32 with a learned ``scale`` (the checkpoints' name).

    It moves its own weight to the input's device and dtype per call, so a host that leaves it on
    the offload device in a partial (low-VRAM) load still works.
    """

    casts_own_weights = True

    def __init__(self, dim: int, eps: float, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.empty(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # one fused kernel; same math as below
            return F.rms_norm(x, (x.shape[-1],), self.scale.to(x.device, torch.float32), self.eps)
        xf = x.float()
        normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return normed * self.scale.to(x.device, x.dtype)


def llama3_inv_freq(cfg: LlamaConfig, device=None) -> torch.Tensor:
    """Inverse RoPE frequencies with Llama-3 long-context scaling (per pair of channels)."""
    dim = cfg.head_dim
    inv = 1.0 / (cfg.rope_base ** (torch.arange(0, dim, 2, device=device)[: dim // 2].float() / dim))
    low_wavelen = cfg.original_context / cfg.low_freq_factor
    high_wavelen = cfg.original_context / cfg.high_freq_factor
    wavelen = 2 * math.pi / inv
    smooth = (cfg.original_context / wavelen - cfg.low_freq_factor) / (cfg.high_freq_factor - cfg.low_freq_factor)
    blended = (1 - smooth) * inv / cfg.scale_factor + smooth * inv
    scaled = torch.where(wavelen > low_wavelen, inv / cfg.scale_factor, blended)
    return torch.where(wavelen < high_wavelen, inv, scaled)


def rope_table(cfg: LlamaConfig, length: int, device) -> torch.Tensor:
    """[length, head_dim // 2] unit complex numbers e^(i * pos * freq) for positions 0..length-1."""
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), llama3_inv_freq(cfg, device))
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs (re, im) of x [B, S, H, D] by table [S, D/2] (one position per
    slot) or [B, S, D/2] (each row its own positions). Computed in float32 as one complex multiply."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    rows = table[:, :, None] if table.dim() == 3 else table[None, :, None]
    return torch.view_as_real(pairs * rows).flatten(-2).type_as(x)


class KVCache:
    """Preallocated keys/values [B, kv_heads, max_len, head_dim]; written in place by position index."""

    def __init__(self, batch: int, kv_heads: int, max_len: int, head_dim: int, device, dtype):
        shape = (batch, kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        self.k.index_copy_(2, input_pos, k)
        self.v.index_copy_(2, input_pos, v)
        return self.k, self.v


@dataclass
class TransformerState:
    """Everything one generation needs besides weights: caches, RoPE table, causal mask.

    Rows of a batch share cache slots. When rows hold inputs of different lengths (songs continued
    from prefixes of different lengths), the shorter ones are left-padded so that every row's next
    input lands in the same slot: ``pads`` [R, 1] says how many leading slots of a row are padding.
    A row's RoPE position is then its slot minus its padding (exactly the positions it would have
    had alone), and no real query of a row ever attends to its padding. Both are static tensors, so
    the frame step stays one shape with no host reads."""

    caches: list[KVCache]
    rope: torch.Tensor  # [max_len, head_dim/2] complex64
    causal: torch.Tensor  # [max_len, max_len] bool
    pads: torch.Tensor | None = None  # [R, 1] int64 padding slots per row; None: no row is padded
    real: torch.Tensor | None = None  # [R, max_len] bool, True where a row's slot holds a real input

    @classmethod
    def allocate(cls, cfg: LlamaConfig, batch: int, max_len: int, device, dtype,
                 pads: torch.Tensor | None = None) -> "TransformerState":
        caches = [KVCache(batch, cfg.num_kv_heads, max_len, cfg.head_dim, device, dtype) for _ in range(cfg.num_layers)]
        causal = torch.ones(max_len, max_len, dtype=torch.bool, device=device).tril()
        state = cls(caches, rope_table(cfg, max_len, device), causal)
        if pads is not None and bool((pads > 0).any()):
            state.pads = pads.to(device=device, dtype=torch.long).reshape(batch, 1)
            state.real = torch.arange(max_len, device=device)[None] >= state.pads
        return state

    def rope_at(self, input_pos: torch.Tensor) -> torch.Tensor:
        """RoPE rotations for slots input_pos [S]: [S, D/2], or [R, S, D/2] when rows are padded."""
        if self.pads is None:
            return self.rope[input_pos]
        return self.rope[(input_pos[None] - self.pads).clamp(min=0)]

    def mask_at(self, input_pos: torch.Tensor, groups: int) -> torch.Tensor:
        """The attention mask of queries at slots input_pos [S], repeated ``groups`` times along the
        query axis (see ``grouped_attention``): [1, 1, g*S, max_len], or [R, 1, g*S, max_len] when rows
        are padded (a padding query sees the padding before it, so no row of SDPA is empty)."""
        causal = self.causal[input_pos]
        if self.real is None:
            return causal.repeat(groups, 1)[None, None]
        seen = causal[None] & (self.real[:, None, :] | ~self.real[:, input_pos, None])
        return seen.repeat(1, groups, 1)[:, None]


def grouped_attention(q, k, v, mask, groups: int) -> torch.Tensor:
    """GQA without copying keys/values: the query heads that share a KV head are folded into the
    query-length axis (q [B, H, S, D] -> [B, H/g, g*S, D]), which is exact and lets every SDPA
    backend run with the cache as it is. Query head h uses KV head h // g. ``mask`` is already
    repeated g times along its query rows (see ``TransformerState.mask_at``). Without a mask,
    plain causal attention of queries and keys that both start at slot 0 (a prefill): SDPA then skips
    the masked half instead of computing it. Keys and values are repeated per query head there
    (transient, one layer's worth), which every backend runs causally, while ``enable_gqa`` sends some
    CUDA backends to the math kernel, which holds all the scores."""
    if mask is None:
        if groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    b, h, s, d = q.shape
    folded = q.reshape(b, h // groups, groups * s, d)
    out = F.scaled_dot_product_attention(folded, k, v, attn_mask=mask)
    return out.view(b, h, s, d)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig, ops):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = ops.Linear(cfg.embed_dim, cfg.num_heads * hd, bias=False)
        self.k_proj = ops.Linear(cfg.embed_dim, cfg.num_kv_heads * hd, bias=False)
        self.v_proj = ops.Linear(cfg.embed_dim, cfg.num_kv_heads * hd, bias=False)
        self.output_proj = ops.Linear(cfg.num_heads * hd, cfg.embed_dim, bias=False)

    def forward(self, x, input_pos, cache: KVCache, rope, mask, prefill: bool = False):
        """``prefill``: x fills slots 0..S-1 of an empty cache, so its own keys are all there is to read."""
        b, s, _ = x.shape
        cfg, hd = self.cfg, self.cfg.head_dim
        q = apply_rope(self.q_proj(x).view(b, s, cfg.num_heads, hd), rope).transpose(1, 2)
        k = apply_rope(self.k_proj(x).view(b, s, cfg.num_kv_heads, hd), rope).transpose(1, 2)
        v = self.v_proj(x).view(b, s, cfg.num_kv_heads, hd).transpose(1, 2)
        if prefill:
            cache.update(input_pos, k, v)
        else:
            k, v = cache.update(input_pos, k, v)
        out = grouped_attention(q, k, v, mask, cfg.num_heads // cfg.num_kv_heads)
        return self.output_proj(out.transpose(1, 2).reshape(b, s, cfg.num_heads * hd))


class FeedForward(nn.Module):
    def __init__(self, cfg: LlamaConfig, ops):
        super().__init__()
        self.w1 = ops.Linear(cfg.embed_dim, cfg.intermediate_dim, bias=False)
        self.w3 = ops.Linear(cfg.embed_dim, cfg.intermediate_dim, bias=False)
        self.w2 = ops.Linear(cfg.intermediate_dim, cfg.embed_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig, ops):
        super().__init__()
        self.sa_norm = RMSNorm(cfg.embed_dim, cfg.norm_eps)
        self.attn = Attention(cfg, ops)
        self.mlp_norm = RMSNorm(cfg.embed_dim, cfg.norm_eps)
        self.mlp = FeedForward(cfg, ops)

    def forward(self, x, input_pos, cache, rope, mask, prefill: bool = False):
        h = x + self.attn(self.sa_norm(x), input_pos, cache, rope, mask, prefill)
        return h + self.mlp(self.mlp_norm(h))


class Transformer(nn.Module):
    """A Llama decoder stack without token embedding or output layer (HeartMuLa feeds vectors)."""

    def __init__(self, cfg: LlamaConfig, ops=None):
        super().__init__()
        ops = ops or nn
        self.cfg = cfg
        self.layers = nn.ModuleList(Block(cfg, ops) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.embed_dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, input_pos: torch.Tensor, state: TransformerState,
                prefill: bool = False) -> torch.Tensor:
        """x [B, S, D] in slots input_pos [S] -> normalised hidden states [B, S, D]. ``prefill``: the
        slots are 0..S-1 of empty caches (the prompt pass): attention reads only those S keys, causal
        without a mask unless rows are padded."""
        rope = state.rope_at(input_pos)
        groups = self.cfg.num_heads // self.cfg.num_kv_heads
        if not prefill:
            mask = state.mask_at(input_pos, groups)  # once for all layers
        elif state.real is not None:
            mask = state.mask_at(input_pos, groups)[..., :x.shape[1]]
        else:
            mask = None
        for layer, cache in zip(self.layers, state.caches):
            x = layer(x, input_pos, cache, rope, mask, prefill)
        return self.norm(x)


def default_operations() -> SimpleNamespace:
    return SimpleNamespace(Linear=nn.Linear, Embedding=nn.Embedding)
