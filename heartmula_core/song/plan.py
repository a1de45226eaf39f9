"""The one check before any weights load (``plan_song``, ``plan_decode``): the settings, the prompt's
fit in the model's context, the song to continue against the LM, and the memory it all needs. Every
front door calls it, so a mistake costs a second, never the minutes of sampling before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from ..codec import estimate_decode_bytes
from ..codes import FRAME_RATE, load_codes
from ..lm.budget import check_fits, estimate_generation_bytes, frames_for_seconds
from ..lm.prefix import Prefix, kept_lengths, kept_per_song
from ..lm.prompt import Prompt, build_prompt
from ..lm.vocab import audio_vocab
from ..settings import SongSettings, shown
from .models import CodecModel, LMModel


@dataclass(frozen=True)
class SongPlan:
    """A checked song job: what ``sample_song`` runs."""

    settings: SongSettings  # checked
    prompt: Prompt
    max_frames: int  # frames of the whole song, kept frames included
    start: Prefix | None  # the songs to continue, checked against the LM (None: new songs)
    kept: tuple[int, ...]  # frames kept of each song continued, each written batch_size times (empty: new songs)
    songs: int  # songs written
    eos_id: int
    codebook_size: int | None  # the codec's, when known (the LM never samples an id it refuses)
    generation_bytes: int  # what the generation needs beyond the weights, in the LM's compute dtype

    @property
    def new_frames(self) -> int:
        """Frames sampled at most (the progress bar's total)."""
        return self.max_frames - min(self.kept, default=0)


def name_of(names: Mapping[str, str] | None, knob: str) -> str:
    return (names or {}).get(knob, knob)


def song_start(codes, lengths, keep_seconds, names: Mapping[str, str] | None = None) -> Prefix:
    """The frames kept of each song of ``codes`` [B, 8, T] (``lengths`` [B]): all (``keep_seconds``
    None or negative, extend) or the first ``keep_seconds`` (a variation), which every song must have."""
    keep = -1 if keep_seconds is None else keep_seconds
    return Prefix(codes, kept_lengths(list(lengths), keep, name_of(names, "keep_seconds")))


def read_start(settings: SongSettings, names: Mapping[str, str] | None = None) -> Prefix | None:
    """``settings.continue_from`` (a codes file) as the songs to continue; None for new songs."""
    if settings.continue_from is None:
        return None
    codes, lengths = load_codes(settings.continue_from)
    return song_start(codes, lengths.tolist(), settings.keep_seconds, names)


def prompt_for(lm: LMModel, tags: str, lyrics: str) -> Prompt:
    return build_prompt(lm.tokenizer, lm.gen_config, tags, lyrics)


def plan_song(lm: LMModel, prompt: Prompt, settings: SongSettings, start: Prefix | None = None,
              codebook_size: int | None = None, names: Mapping[str, str] | None = None) -> SongPlan:
    """Everything about one song job that can be known before the LM's weights load, checked: the
    settings (named as the door spells them, ``names``), the prompt plus the song's length against the
    context, the songs to continue (``start``) against the LM's codebooks, and the memory the
    generation needs (``lm.check_memory``: the command line's RAM/VRAM check; nothing in ComfyUI,
    which frees what ``ready`` asks for)."""
    settings = settings.checked(names)
    max_frames = frames_for_seconds(settings.seconds, name_of(names, "seconds"))
    eos_id = lm.gen_config.audio_eos_id
    audio_vocab(lm.config.audio_vocab_size, eos_id, codebook_size)
    where = f"{name_of(names, 'continue_from')} {settings.continue_from or ''}".strip()
    kept = kept_per_song(start, lm.config, eos_id, codebook_size, where)  # per song of ``start``, not repeated
    check_fits(lm.config, prompt, max_frames, kept)
    songs = settings.batch_size * (len(kept) or 1)
    needed = estimate_generation_bytes(lm.config, prompt.length, max_frames, songs, settings.cfg_scale, lm.dtype,
                                       kept)  # counts the longest and shortest kept only
    n = {k: name_of(names, k) for k in ("batch_size", "seconds", "dtype", "weight_dtype")}
    lm.check_memory(needed, f"Sampling {shown(songs)} song(s) of up to {settings.seconds:g} s with {lm.name}",
                    f"Lower {n['batch_size']} or {n['seconds']}, pick a smaller {n['dtype']}, or hold the weights "
                    f"in fp8 ({n['weight_dtype']} fp8_e4m3fn).")
    return SongPlan(settings, prompt, max_frames, start, tuple(kept), songs, eos_id, codebook_size, needed)


@dataclass(frozen=True)
class DecodePlan:
    """A checked decode: songs, the longest one's frames, and the memory it needs beyond the weights."""

    settings: SongSettings
    songs: int
    frames: int
    needed: int


def plan_decode(codec: CodecModel, songs: int, frames: int, settings: SongSettings,
                names: Mapping[str, str] | None = None) -> DecodePlan:
    """The decoder's settings and the memory ``songs`` songs of up to ``frames`` frames need,
    checked before the codec's weights load (``codec.check_memory``, as for ``plan_song``)."""
    settings = settings.checked(names)
    needed = estimate_decode_bytes(codec.config, songs, codec.dtype, frames=frames)
    codec.check_memory(needed, f"Decoding {songs} song(s) of up to {math.ceil(frames / FRAME_RATE)} s",
                       "Decode fewer songs at once (save the codes, decode them one by one), hold the "
                       f"transformer's weights in fp8 ({name_of(names, 'weight_dtype')} fp8_e4m3fn), or use "
                       f"{name_of(names, 'device')} cpu.")
    return DecodePlan(settings, songs, frames, needed)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")
