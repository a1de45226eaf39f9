"""The HeartMuLa module: backbone + depth decoder + embeddings and heads (checkpoint key names)."""

from __future__ import annotations

import torch
from torch import nn

from .config import HeartMuLaConfig
from .layers import Transformer, default_operations


class HeartMuLa(nn.Module):
    """Weights and the pure functions of one frame; the generation loop lives in generation.py.

    Every frame position holds 8 audio tokens + 1 text token. Prompt positions use the text token
    only, generated positions the 8 audio tokens only; a position's input is the sum of the
    embeddings of its enabled streams.

    ``audio_head`` is a bare parameter (its checkpoint key has no ``.weight``); it is moved to the
    activations' device per use, so a partial (low-VRAM) load that leaves it behind still works.
    """

    casts_own_weights = True

    def __init__(self, config: HeartMuLaConfig, operations=None):
        super().__init__()
        ops = operations or default_operations()
        self.config = config
        bb, dec = config.backbone.embed_dim, config.decoder.embed_dim
        v, n = config.audio_vocab_size, config.audio_num_codebooks
        self.backbone = Transformer(config.backbone, ops)
        self.decoder = Transformer(config.decoder, ops)
        self.text_embeddings = ops.Embedding(config.text_vocab_size, bb)
        self.audio_embeddings = ops.Embedding(v * n, bb)
        self.unconditional_text_embedding = ops.Embedding(1, bb)
        self.projection = ops.Linear(bb, dec, bias=False)
        self.codebook0_head = ops.Linear(bb, v, bias=False)
        self.audio_head = nn.Parameter(torch.empty(n - 1, dec, v))
        self.muq_linear = ops.Linear(config.muq_dim, bb)

    # --- embeddings -----------------------------------------------------------------------------
    def embed_prompt(self, tokens: torch.Tensor, muq_index: int, uncond: torch.Tensor, dtype) -> torch.Tensor:
        """Prompt rows [R, S] of text ids -> [R, S, D]. Rows where ``uncond`` is True see the learned
        unconditional embedding at every text position (classifier-free guidance); the MuQ slot holds
        muq_linear(zeros) (no reference audio) or, for unconditional rows, the unconditional embedding."""
        rows, _ = tokens.shape
        text = self.text_embeddings(tokens).to(dtype)
        null = self.unconditional_text_embedding.weight.to(tokens.device, dtype)  # [1, D]; may sit on the offload device
        text = torch.where(uncond[:, None, None], null[None], text)
        muq_in = torch.zeros(rows, self.config.muq_dim, device=tokens.device, dtype=dtype)
        muq = torch.where(uncond[:, None], null, self.muq_linear(muq_in).to(dtype))
        text[:, muq_index] = muq
        return text

    def embed_audio(self, codebook: int, codes: torch.Tensor) -> torch.Tensor:
        return self.audio_embeddings(codes + codebook * self.config.audio_vocab_size)

    def embed_frame(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [R, 8] of the previous frame -> the next backbone input [R, 1, D]."""
        return self.embed_frames(codes[:, None])

    def embed_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [R, K, 8] of K frames -> the backbone inputs that follow them, [R, K, D]: the input
        after a frame is the sum of its 8 tokens' embeddings (no depth-decoder pass is involved)."""
        n = self.config.audio_num_codebooks
        offsets = torch.arange(n, device=codes.device) * self.config.audio_vocab_size
        return self.audio_embeddings(codes + offsets).sum(dim=-2)

    def codebook_logits(self, codebook: int, decoder_last: torch.Tensor) -> torch.Tensor:
        """Logits of codebook >= 1 from the last decoder hidden state [R, D_dec]."""
        return decoder_last @ self.audio_head[codebook - 1].to(decoder_last.device, decoder_last.dtype)
