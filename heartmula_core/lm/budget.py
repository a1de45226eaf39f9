"""What a generation needs, known before it runs: frames for a length in seconds, room in the
model's context, KV-cache sizes and memory. Callers check these before any weight moves."""

from __future__ import annotations

import torch

from ..codes import FRAME_RATE
from ..errors import PromptError
from ..settings import check_seconds
from .prompt import Prompt

CACHE_BUCKET = 256  # KV caches are sized in steps of this, so compiled/captured steps can be reused


def frames_for_seconds(seconds: float, name: str = "seconds") -> int:
    """Frames for a length in seconds; NaN, infinite or non-positive lengths are refused."""
    return int(round(check_seconds(seconds, name) * FRAME_RATE))


def cache_length(config, prompt_length: int, max_frames: int) -> int:
    """Backbone KV-cache positions for a prompt and ``max_frames``: rounded up to a bucket, at most
    the context."""
    limit = config.backbone.max_seq_len
    return min(-(-(prompt_length + max_frames) // CACHE_BUCKET) * CACHE_BUCKET, limit)


def check_fits(config, prompt: Prompt, max_frames: int) -> None:
    """Prompt plus ``max_frames`` must fit the LM's context (``config``: a HeartMuLaConfig, so this
    runs before the weights load)."""
    limit = config.backbone.max_seq_len
    if max_frames < 1:
        raise PromptError(f"The length limit must allow at least one frame (got {max_frames}); ask for more seconds.")
    if prompt.length + max_frames > limit:
        room = max(limit - prompt.length, 0)
        raise PromptError(
            f"The prompt is {prompt.length} tokens and {max_frames} frames ({max_frames / FRAME_RATE:.1f} s) were "
            f"asked for, but the model's context holds {limit} positions: at most {room} frames "
            f"({room / FRAME_RATE:.1f} s) fit. Shorten the lyrics or ask for fewer seconds."
        )


def estimate_generation_bytes(config, prompt_length: int, max_frames: int, batch_size: int, cfg_scale: float,
                              dtype: torch.dtype) -> int:
    """Memory a generation needs beyond the weights (ComfyUI's ``memory_required``): the KV caches
    and RoPE/mask tables it allocates, plus the prompt pass's activations (the peak; SDPA's fused
    kernels never hold the attention scores). benchmarks/run.py checks it against measured peaks."""
    rows = batch_size * (2 if cfg_scale != 1.0 else 1)
    size = torch.empty((), dtype=dtype).element_size()
    bb, dec = config.backbone, config.decoder
    max_len = cache_length(config, prompt_length, max_frames)
    caches = 2 * rows * size * (bb.num_layers * bb.num_kv_heads * max_len * bb.head_dim
                                + dec.num_layers * dec.num_kv_heads * config.audio_num_codebooks * dec.head_dim)
    tables = max_len * max_len + 8 * max_len * bb.head_dim // 2
    hidden = rows * prompt_length * (4 * bb.embed_dim + 3 * bb.intermediate_dim) * size
    return int(caches + tables + hidden)
