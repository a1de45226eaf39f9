"""What a generation needs, known before it runs: frames for a length in seconds, room in the
model's context, KV-cache sizes and memory. Callers check these before any weight moves."""

from __future__ import annotations

import torch

from ..codes import FRAME_RATE
from ..errors import PromptError, SettingsError
from ..settings import check_seconds
from .prompt import Prompt

CACHE_BUCKET = 256  # KV caches are sized in steps of this, so compiled/captured steps can be reused


def frames_for_seconds(seconds: float, name: str = "seconds") -> int:
    """Frames for a length in seconds; NaN, infinite, non-positive lengths and lengths shorter than
    one frame are refused."""
    frames = int(round(check_seconds(seconds, name) * FRAME_RATE))
    if frames < 1:
        raise SettingsError(f"{name} must allow at least one frame ({1 / FRAME_RATE:g} s), got {seconds:g}; ask "
                            "for more seconds.")
    return frames


def cache_length(config, prompt_length: int, max_frames: int, spread: int = 0) -> int:
    """Backbone KV-cache slots for a prompt and ``max_frames``, rounded up to a bucket, at most the
    context; plus ``spread`` slots of padding when continued songs have prefixes of different lengths
    (slots, not positions: padding never counts against the context, see prefix.py)."""
    limit = config.backbone.max_seq_len
    needed = prompt_length + max_frames + spread
    return min(-(-needed // CACHE_BUCKET) * CACHE_BUCKET, max(limit, needed))


def check_fits(config, prompt: Prompt, max_frames: int, kept: list[int] = ()) -> None:
    """Prompt plus ``max_frames`` must fit the LM's context (``config``: a HeartMuLaConfig, so this
    runs before the weights load). ``kept``: frames kept per song when continuing saved codes; the
    length limit counts them (it is the length of the whole song) and must leave room to write on."""
    limit, length = config.backbone.max_seq_len, prompt.length
    if max_frames < 1:
        raise PromptError(f"The length limit must allow at least one frame (got {max_frames}); ask for more seconds.")
    longest = max(kept, default=0)
    if not kept and length >= limit:
        raise PromptError(
            f"The prompt (tags and lyrics) is {length} tokens, but the model's context holds {limit} positions "
            "for the prompt and the song together: shorten the lyrics (or the tags).")
    if length + longest >= limit:
        room = max(limit - length - 1, 0)
        raise PromptError(
            f"The prompt is {length} tokens and the song to continue keeps {longest} frames ({longest / FRAME_RATE:.1f} "
            f"s), but the model's context holds {limit} positions: with this prompt at most {room} frames "
            f"({room / FRAME_RATE:.1f} s) can be kept. Keep fewer seconds or shorten the lyrics.")
    if longest >= max_frames:
        raise PromptError(
            f"The length limit counts the whole song: {max_frames} frames ({max_frames / FRAME_RATE:.1f} s) leave "
            f"nothing to write after the {longest} kept frames ({longest / FRAME_RATE:.1f} s). Ask for more seconds "
            "than the part you keep.")
    if length + max_frames > limit:
        room = max(limit - length, 0)
        raise PromptError(
            f"The prompt is {length} tokens and {max_frames} frames ({max_frames / FRAME_RATE:.1f} s) were "
            f"asked for, but the model's context holds {limit} positions: at most {room} frames "
            f"({room / FRAME_RATE:.1f} s) fit. Shorten the lyrics or ask for fewer seconds."
        )


def estimate_generation_bytes(config, prompt_length: int, max_frames: int, batch_size: int, cfg_scale: float,
                              dtype: torch.dtype, kept: list[int] = ()) -> int:
    """Memory a generation needs beyond the weights (ComfyUI's ``memory_required``): the KV caches
    and RoPE/mask tables it allocates, plus the prefill pass's activations over the prompt and any
    kept frames (``kept``: per song; the peak; SDPA's fused kernels never hold the attention scores,
    but padded rows bring a mask per row). benchmarks/run.py checks it against measured peaks."""
    rows = batch_size * (2 if cfg_scale != 1.0 else 1)
    size = torch.empty((), dtype=dtype).element_size()
    bb, dec = config.backbone, config.decoder
    longest, spread = max(kept, default=0), max(kept, default=0) - min(kept, default=0)
    max_len = cache_length(config, prompt_length, max_frames, spread)
    prefill = prompt_length + longest
    caches = 2 * rows * size * (bb.num_layers * bb.num_kv_heads * max_len * bb.head_dim
                                + dec.num_layers * dec.num_kv_heads * config.audio_num_codebooks * dec.head_dim)
    tables = max_len * max_len + 8 * max_len * bb.head_dim // 2
    masks = (rows if spread else 1) * (bb.num_heads // bb.num_kv_heads) * prefill * max_len
    hidden = rows * prefill * (4 * bb.embed_dim + 3 * bb.intermediate_dim) * size
    return int(caches + tables + masks + hidden)
