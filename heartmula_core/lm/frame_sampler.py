"""One generation's state (KV caches, positions, the generator, the allowed ids) and its two
steps: the prompt pass (the prompt and any kept frames of songs being continued) and the frame step.

The frame step takes and returns tensors only and never reads a value back to the host, so it can
be captured (CUDA graphs / torch.compile, see capture.py).
"""

from __future__ import annotations

import torch

from .layers import TransformerState
from .model import HeartMuLa
from .prefix import prefill_order
from .prompt import Prompt
from .sampling import draw_race, guide, sample_top_k
from .vocab import AudioVocab


class FrameSampler:
    """Per-generation state (KV caches, positions, generator) and the two steps that use it."""

    def __init__(self, model: HeartMuLa, *, songs: int, cfg_scale: float, top_k: int, temperature: float,
                 max_len: int, generator: torch.Generator, device, dtype, vocab: AudioVocab | None = None,
                 pads: torch.Tensor | None = None):
        """``pads`` [songs]: leading padding slots per song when continued songs keep different numbers
        of frames (see prefix.py); None when every row starts at slot 0."""
        self.model, self.songs = model, songs
        # ids the codec accepts, plus EOS after the first frame (a song has at least one frame); None: all
        self.allowed_first = vocab.allowed(device, with_eos=False) if vocab else None
        self.allowed = vocab.allowed(device) if vocab else None
        self.cfg_scale = cfg_scale if cfg_scale != 1.0 else None  # None: no guidance rows
        self.rows = songs * (2 if self.cfg_scale is not None else 1)
        self.top_k, self.temperature, self.generator = top_k, temperature, generator
        self.device, self.dtype = device, dtype
        c = model.config
        row_pads = pads.repeat(self.rows // songs) if pads is not None else None  # CFG twins share a song's
        self.backbone_state = TransformerState.allocate(c.backbone, self.rows, max_len, device, dtype, row_pads)
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
        tokens = sample_top_k(guide(logits, self.songs, self.cfg_scale), self.top_k, self.temperature, race, allowed)
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

    def prompt_pass(self, prompt: Prompt, race: torch.Tensor, kept: torch.Tensor | None = None) -> torch.Tensor:
        """The prefill: the first frame after the prompt (never EOS: a song has at least one frame), or
        after the kept frames [songs, n, K] (aligned as prefix.Prefix.aligned lays them out)."""
        allowed = self.allowed_first if kept is None else self.allowed
        return self._frame_from_hidden(self.prompt_hidden(prompt, kept), race, allowed)

    def prompt_hidden(self, prompt: Prompt, kept: torch.Tensor | None = None) -> torch.Tensor:
        """Run the backbone over the prompt and the kept frames in one pass, filling the cache; last
        hidden state [R, D]."""
        text = prompt.tokens[:, -1].to(self.device).expand(self.rows, -1)
        uncond = torch.arange(self.rows, device=self.device) >= self.songs if self.cfg_scale is not None else \
            torch.zeros(self.rows, dtype=torch.bool, device=self.device)
        x = self.model.embed_prompt(text, prompt.muq_index, uncond, self.dtype)
        if kept is not None:
            frames = kept.to(self.device).repeat(self.rows // self.songs, 1, 1).transpose(1, 2)  # [R, K, n]
            x = torch.cat([x, self.model.embed_frames(frames).to(self.dtype)], dim=1)
            pads = self.backbone_state.pads  # None when no row is padded
            if pads is not None:
                order = prefill_order(prompt.length, pads[:, 0].cpu(), kept.shape[-1]).to(self.device)
                x = x.gather(1, order[..., None].expand(-1, -1, x.shape[-1]))
        pos = torch.arange(x.shape[1], device=self.device)
        return self.model.backbone(x, pos, self.backbone_state, prefill=True)[:, -1]

    def step(self, previous: torch.Tensor, position: torch.Tensor, race: torch.Tensor) -> torch.Tensor:
        """The frame step, tensors in and out, no host sync: previous frame [R, n] at backbone
        position [1] with the frame's noise [n, B, V] -> next frame [R, n]."""
        x = self.model.embed_frame(previous).to(self.dtype)
        h = self.model.backbone(x, position, self.backbone_state)[:, -1]
        return self._frame_from_hidden(h, race, self.allowed)
