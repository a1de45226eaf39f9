"""Tags + lyrics -> the LM prompt: [S, 9] tokens (8 audio streams + 1 text stream) and a stream mask.

Layout: ``<tag>tags</tag>`` tokens with BOS/EOS, one empty slot where a MuQ reference-audio
embedding goes, then the lyrics tokens with BOS/EOS; only the text stream is enabled in a prompt.
Both texts are lower-cased, as the model was trained. The texts are taken as they are: reading
them from files is the command line's business (text_input.text_or_file).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..codes import CODEBOOKS
from ..errors import PromptError
from ..text_input import check_text
from .config import GenConfig

STREAMS = CODEBOOKS + 1  # the audio codebooks + text


@dataclass
class Prompt:
    tokens: torch.Tensor  # [S, 9] int64
    mask: torch.Tensor  # [S, 9] bool
    muq_index: int
    tags: str
    lyrics: str

    @property
    def length(self) -> int:
        return int(self.tokens.shape[0])


def _with_bos_eos(ids: list[int], cfg: GenConfig) -> list[int]:
    if not ids or ids[0] != cfg.text_bos_id:
        ids = [cfg.text_bos_id] + ids
    if ids[-1] != cfg.text_eos_id:
        ids = ids + [cfg.text_eos_id]
    return ids


def build_prompt(tokenizer, gen_config: GenConfig, tags: str, lyrics: str) -> Prompt:
    """``tokenizer`` is a ``tokenizers.Tokenizer`` (the checkpoint's tokenizer.json)."""
    tags = check_text(tags, "tags").strip().lower()
    lyrics = check_text(lyrics, "lyrics").lower()
    if not tags:
        raise PromptError("The tags are empty: give comma-separated style tags, e.g. 'piano,happy,wedding'.")
    if not lyrics.strip():
        raise PromptError("The lyrics are empty: give the song's lyrics, e.g. '[Verse]\\nfirst line ...'.")
    if not tags.startswith("<tag>"):
        tags = "<tag>" + tags
    if not tags.endswith("</tag>"):
        tags = tags + "</tag>"
    tag_ids = _with_bos_eos(tokenizer.encode(tags).ids, gen_config)
    lyric_ids = _with_bos_eos(tokenizer.encode(lyrics).ids, gen_config)
    length = len(tag_ids) + 1 + len(lyric_ids)
    tokens = torch.zeros(length, STREAMS, dtype=torch.long)
    tokens[: len(tag_ids), -1] = torch.tensor(tag_ids)
    tokens[len(tag_ids) + 1 :, -1] = torch.tensor(lyric_ids)
    mask = torch.zeros(length, STREAMS, dtype=torch.bool)
    mask[:, -1] = True
    return Prompt(tokens, mask, muq_index=len(tag_ids), tags=tags, lyrics=lyrics)
