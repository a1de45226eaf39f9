"""Token generation: one prompt pass, then the frame step repeated until EOS or the length limit.

The frame step takes and returns tensors only and never reads a value back to the host, so it can
be captured (CUDA graphs / torch.compile). The only synchronisation is the EOS check, once every
``eos_check_every`` frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import PromptError
from ..prompt import Prompt
from ..settings import check_sampling, check_seconds, seeded_generator, whole
from .capture import RUNNERS, pick_runner
from .layers import TransformerState
from .model import HeartMuLa
from .sampling import draw_race, guide, sample_top_k
from .vocab import AudioVocab, audio_vocab

FRAME_RATE = 12.5


@dataclass
class Generated:
    codes: torch.Tensor  # [B, 8, T] int64 on CPU (rows past a song's length are 0)
    lengths: torch.Tensor  # [B] int64
    prompt_seconds: float
    frame_seconds: float  # wall time of the frame steps after the prompt pass
    frames_run: int  # frame steps run (including any past the last EOS)

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.frame_seconds / max(self.frames_run - 1, 1)


CACHE_BUCKET = 256  # KV caches are sized in steps of this, so compiled/captured steps can be reused


def bucketed_length(needed: int, limit: int) -> int:
    return min(-(-needed // CACHE_BUCKET) * CACHE_BUCKET, limit)


def cache_length(model: HeartMuLa, prompt_length: int, max_frames: int) -> int:
    return bucketed_length(prompt_length + max_frames, context_limit(model))


def frames_for_seconds(seconds: float, name: str = "seconds") -> int:
    """Frames for a length in seconds; NaN, infinite or non-positive lengths are refused."""
    return int(round(check_seconds(seconds, name) * FRAME_RATE))


def context_limit(model: HeartMuLa) -> int:
    return model.config.backbone.max_seq_len


def check_fits(model: HeartMuLa, prompt: Prompt, max_frames: int) -> None:
    check_fits_config(model.config, prompt, max_frames)


def check_fits_config(config, prompt: Prompt, max_frames: int) -> None:
    """check_fits before the weights load: only the config's context length matters."""
    limit = config.backbone.max_seq_len
    if max_frames < 1:
        raise PromptError(f"The length limit must allow at least one frame (got {max_frames}); ask for more seconds.")
    if prompt.length + max_frames > limit:
        room = max(limit - prompt.length, 0)
        raise PromptError(
            f"The prompt is {prompt.length} tokens and {max_frames} frames ({max_frames / FRAME_RATE:.1f} s) were asked for, "
            f"but the model's context holds {limit} positions: at most {room} frames ({room / FRAME_RATE:.1f} s) fit. "
            "Shorten the lyrics or ask for fewer seconds."
        )


class FrameSampler:
    """Per-generation state (KV caches, positions, generator) and the two steps that use it."""

    def __init__(self, model: HeartMuLa, *, songs: int, cfg_scale: float, top_k: int, temperature: float,
                 max_len: int, generator: torch.Generator, device, dtype, vocab: AudioVocab | None = None):
        self.model, self.songs = model, songs
        # ids the codec accepts, plus EOS after the first frame (a song has at least one frame); None: all
        self.allowed_first = vocab.allowed(device, with_eos=False) if vocab else None
        self.allowed = vocab.allowed(device) if vocab else None
        self.cfg = cfg_scale if cfg_scale != 1.0 else None
        self.rows = songs * (2 if self.cfg is not None else 1)
        self.top_k, self.temperature, self.generator = top_k, temperature, generator
        self.device, self.dtype = device, dtype
        c = model.config
        self.backbone_state = TransformerState.allocate(c.backbone, self.rows, max_len, device, dtype)
        self.decoder_state = TransformerState.allocate(c.decoder, self.rows, c.audio_num_codebooks, device, dtype)
        self.decoder_pos = [torch.arange(0, 2, device=device)] + [
            torch.tensor([i], device=device) for i in range(2, c.audio_num_codebooks)
        ]

    def draw_noise(self) -> torch.Tensor:
        """The random draws of one frame (the only use of the generator)."""
        c = self.model.config
        return draw_race(self.generator, c.audio_num_codebooks, self.songs, c.audio_vocab_size, self.device)

    def _sample(self, logits: torch.Tensor, race: torch.Tensor, allowed) -> torch.Tensor:
        """Sample once per song from guided logits and share the token with its CFG twin: [R]."""
        tokens = sample_top_k(guide(logits, self.songs, self.cfg), self.top_k, self.temperature, race, allowed)
        return tokens.repeat(self.rows // self.songs)

    def _frame_from_hidden(self, last_h: torch.Tensor, race: torch.Tensor, allowed) -> torch.Tensor:
        """Backbone output [R, D] + frame noise -> all codebooks of the frame [R, n] via the depth decoder."""
        m = self.model
        token = self._sample(m.codebook0_head(last_h), race[0], allowed)
        tokens = [token]
        x = m.projection(torch.stack([last_h, m.embed_audio(0, token).to(self.dtype)], dim=1))
        for i in range(1, m.config.audio_num_codebooks):
            h = m.decoder(x, self.decoder_pos[i - 1], self.decoder_state)[:, -1]
            token = self._sample(m.codebook_logits(i, h), race[i], allowed)
            tokens.append(token)
            if i + 1 < m.config.audio_num_codebooks:
                x = m.projection(m.embed_audio(i, token).to(self.dtype)[:, None])
        return torch.stack(tokens, dim=1)

    def prompt_pass(self, prompt: Prompt, race: torch.Tensor) -> torch.Tensor:
        return self._frame_from_hidden(self.prompt_hidden(prompt), race, self.allowed_first)

    def prompt_hidden(self, prompt: Prompt) -> torch.Tensor:
        """Run the backbone over the prompt, filling the cache; last hidden state [R, D]."""
        text = prompt.tokens[:, -1].to(self.device).expand(self.rows, -1)
        uncond = torch.arange(self.rows, device=self.device) >= self.songs if self.cfg is not None else \
            torch.zeros(self.rows, dtype=torch.bool, device=self.device)
        x = self.model.embed_prompt(text, prompt.muq_index, uncond, self.dtype)
        pos = torch.arange(prompt.length, device=self.device)
        return self.model.backbone(x, pos, self.backbone_state)[:, -1]

    def step(self, previous: torch.Tensor, position: torch.Tensor, race: torch.Tensor) -> torch.Tensor:
        """The frame step, tensors in and out, no host sync: previous frame [R, n] at backbone
        position [1] with the frame's noise [n, B, V] -> next frame [R, n]."""
        x = self.model.embed_frame(previous).to(self.dtype)
        h = self.model.backbone(x, position, self.backbone_state)[:, -1]
        return self._frame_from_hidden(h, race, self.allowed)


def estimate_generation_bytes(config, prompt_length: int, max_frames: int, batch_size: int, cfg_scale: float,
                              dtype: torch.dtype) -> int:
    """Memory a generation needs beyond the weights (ComfyUI's ``memory_required``): the KV caches
    and RoPE/mask tables it allocates, plus the prompt pass's activations (the peak; SDPA's fused
    kernels never hold the attention scores). benchmarks/run.py checks it against measured peaks."""
    rows = batch_size * (2 if cfg_scale != 1.0 else 1)
    size = torch.empty((), dtype=dtype).element_size()
    bb, dec = config.backbone, config.decoder
    max_len = bucketed_length(prompt_length + max_frames, bb.max_seq_len)
    caches = 2 * rows * size * (bb.num_layers * bb.num_kv_heads * max_len * bb.head_dim
                                + dec.num_layers * dec.num_kv_heads * config.audio_num_codebooks * dec.head_dim)
    tables = max_len * max_len + 8 * max_len * bb.head_dim // 2
    hidden = rows * prompt_length * (4 * bb.embed_dim + 3 * bb.intermediate_dim) * size
    return int(caches + tables + hidden)


def model_device_dtype(model: HeartMuLa):
    w = model.text_embeddings.weight
    return w.device, w.dtype


@torch.inference_mode()
def generate(
    model: HeartMuLa,
    prompt: Prompt,
    *,
    max_frames: int,
    eos_id: int,
    temperature: float = 1.0,
    top_k: int = 50,
    cfg_scale: float = 1.5,
    batch_size: int = 1,
    generator: torch.Generator | None = None,
    seed: int = 0,
    device=None,
    dtype=None,
    on_frame: Callable[[int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
    eos_check_every: int | None = None,
    capture: str = "auto",
    codebook_size: int | None = None,
) -> Generated:
    """Sample ``batch_size`` independent songs for one prompt. Same seed, same codes.

    ``generator`` (or a fresh one seeded with ``seed`` on the run device) is the only randomness.
    ``check_cancel`` is called before every frame and cancels by raising; caches are freed either way.
    ``capture``: auto (CUDA graph on CUDA, eager elsewhere), eager, compile or cuda_graph.
    ``eos_check_every``: frames between the host reads that stop the loop once every song ended
    (default 1 in eager mode, 8 with a CUDA graph, where the read would stall the queue).
    ``codebook_size``: the codec's (default: derived from ``eos_id``, see vocab.py). Only codebook
    entries and EOS are ever sampled, and a song ends at the first frame holding EOS anywhere.
    """
    check_sampling(temperature, top_k, cfg_scale, batch_size)
    whole(max_frames, "max_frames", 1, hint=" Ask for more seconds.")
    check_fits(model, prompt, max_frames)
    vocab = audio_vocab(model.config.audio_vocab_size, eos_id, codebook_size)
    dev, dt = model_device_dtype(model)
    device, dtype = torch.device(device or dev), dtype or dt
    if generator is None:
        generator = seeded_generator(seed, device)
    sampler = FrameSampler(model, songs=batch_size, cfg_scale=cfg_scale, top_k=top_k, temperature=temperature,
                           max_len=cache_length(model, prompt.length, max_frames), generator=generator,
                           device=device, dtype=dtype, vocab=vocab)
    runner_name = pick_runner(capture, device, model)
    if eos_check_every is None:
        eos_check_every = 8 if runner_name == "cuda_graph" else 1
    runner = RUNNERS[runner_name](sampler)
    try:
        return _sample_song(sampler, runner, prompt, max_frames, eos_id, on_frame, check_cancel, eos_check_every)
    finally:
        del runner, sampler


def _sample_song(sampler: FrameSampler, runner, prompt: Prompt, max_frames: int, eos_id: int, on_frame,
                 check_cancel, eos_check_every: int) -> Generated:
    """The frame loop: the prompt pass, then one step per frame until every song ended or the limit."""
    batch_size, device = sampler.songs, sampler.device
    codes = torch.zeros(batch_size, sampler.model.config.audio_num_codebooks, max_frames, dtype=torch.long,
                        device=device)
    lengths = torch.full((batch_size,), max_frames, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    if check_cancel:
        check_cancel()
    t0 = time.perf_counter()
    frame = sampler.prompt_pass(prompt, sampler.draw_noise())  # never EOS: a song has at least one frame
    codes[:, :, 0] = frame[:batch_size]
    if on_frame:
        on_frame(1, max_frames)
    t1 = time.perf_counter()
    frames_run = 1
    for t in range(1, max_frames):
        if check_cancel:
            check_cancel()
        frame = runner(frame, prompt.length + t - 1)
        frames_run += 1
        song_frame = frame[:batch_size]
        codes[:, :, t] = song_frame
        ended = (song_frame == eos_id).any(dim=-1) & ~done
        lengths = torch.where(ended, t, lengths)
        done |= ended
        if on_frame:
            on_frame(t + 1, max_frames)
        if t % eos_check_every == 0 and bool(done.all()):
            break
    t2 = time.perf_counter()
    lengths_cpu = lengths.cpu()
    out = codes[:, :, :int(lengths_cpu.max())].cpu()
    for b, length in enumerate(lengths_cpu.tolist()):
        out[b, :, length:] = 0
    return Generated(out, lengths_cpu, t1 - t0, t2 - t1, frames_run)
