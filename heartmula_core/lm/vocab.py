"""Which audio ids the sampler may emit: the codec's codebook entries and the end-of-audio id.

The LM's audio vocabulary (config.json ``audio_vocab_size``) is the codebook plus a few special ids
placed right after it; gen_config.json names one of them, ``audio_eos_id``. In the released files
the codebook has 8192 entries, the vocabulary 8197 ids and EOS is 8193 (the tiny test model: 64,
69 and 65): the specials start one below EOS, as the text side's BOS/EOS do in the Llama-3
tokenizer. Only the codec's config.json states the codebook size, so an LM alone derives it as
``audio_eos_id - 1``; whoever holds the codec passes its ``codebook_size`` instead.

Every other special id is masked before sampling: the codec refuses it, and the official loop,
which samples it freely, would hand it to the codec (heartlib PR #86 clamps such ids instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import CheckpointError


@dataclass(frozen=True)
class AudioVocab:
    size: int  # logits per codebook
    codebook_size: int  # ids 0 .. codebook_size - 1 are codec entries
    eos_id: int

    def allowed(self, device, with_eos: bool = True) -> torch.Tensor:
        """[size] bool: True where an id may be sampled."""
        ids = torch.arange(self.size, device=device)
        keep = ids < self.codebook_size
        return keep | (ids == self.eos_id) if with_eos else keep


def audio_vocab(vocab_size: int, eos_id: int, codebook_size: int | None = None) -> AudioVocab:
    """The layout for an LM with ``vocab_size`` audio ids and end-of-audio ``eos_id``; the codebook
    size is the codec's when given, else derived from EOS (see the module docstring)."""
    if codebook_size is None:
        codebook_size = eos_id - 1
    if not 0 < codebook_size <= eos_id < vocab_size:
        raise CheckpointError(
            f"The audio ids do not fit together: vocabulary {vocab_size} (config.json audio_vocab_size), "
            f"end of audio {eos_id} (gen_config.json audio_eos_id), codebook {codebook_size}. The end-of-audio id "
            "must lie inside the vocabulary and past the codebook; check that gen_config.json and the codec "
            "belong to this LM.")
    return AudioVocab(vocab_size, codebook_size, eos_id)
