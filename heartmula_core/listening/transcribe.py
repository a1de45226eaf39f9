"""Lyrics transcription with HeartTranscriptor (a Whisper fine-tune) or any Whisper checkpoint.

Whisper hears at most 30 s at a time, so a song is cut into chunks of at most 30 s. Each cut is
placed at the quietest moment of the last few seconds before the 30 s limit, which rarely splits a
sung word. Chunks of every song in the batch are decoded together in mini-batches and the text of
each song is the text of its chunks in order. Decoding uses the settings of the official example:
beam search with temperature fallback (a chunk whose text repeats itself too much or whose tokens
are too unlikely is decoded again at the next temperature).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch

from ..errors import HeartMuLaError
from .audio_in import audible_length, to_mono
from .hf_models import LoadedModel, load_pretrained

WHISPER_RATE = 16000
CHUNK_SECONDS = 30.0
CUT_SEARCH_SECONDS = 5.0
CUT_FRAME_SECONDS = 0.1
# Defaults of the official lyrics-transcription example.
DEFAULT_TEMPERATURES = (0.0, 0.1, 0.2, 0.4)
DEFAULT_BEAMS = 2
DEFAULT_MAX_NEW_TOKENS = 256
COMPRESSION_RATIO_THRESHOLD = 1.8
LOGPROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.4


def load_transcriber(folder: str | Path, dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a Whisper folder on the CPU in ``dtype`` (fp16 when it will run on a GPU, else fp32)."""
    return load_pretrained(folder, "whisper", "WhisperForConditionalGeneration", "WhisperProcessor", dtype)


def plan_chunks(
    mono: torch.Tensor,
    rate: int = WHISPER_RATE,
    max_seconds: float = CHUNK_SECONDS,
    search_seconds: float = CUT_SEARCH_SECONDS,
    frame_seconds: float = CUT_FRAME_SECONDS,
) -> list[tuple[int, int]]:
    """Cut points of one mono song [N]: (start, end) sample ranges of at most ``max_seconds``.

    When more than ``max_seconds`` remain, the last ``search_seconds`` before the limit are split into
    frames of ``frame_seconds``; the cut goes to the middle of the frame with the least energy (the
    latest one on ties, to keep chunks long).
    """
    total = int(mono.shape[-1])
    max_len = int(round(max_seconds * rate))
    frame = max(1, int(round(frame_seconds * rate)))
    n_frames = max(1, int(round(search_seconds * rate)) // frame)
    chunks = []
    start = 0
    while total - start > max_len:
        region_start = start + max_len - n_frames * frame
        region = mono[region_start : start + max_len].reshape(n_frames, frame)
        energy = region.double().pow(2).sum(dim=1)
        quietest = n_frames - 1 - int(torch.argmin(energy.flip(0)))
        cut = region_start + quietest * frame + frame // 2
        chunks.append((start, cut))
        start = cut
    if total > start:
        chunks.append((start, total))
    return chunks


def check_language(model: torch.nn.Module, language: str) -> str | None:
    """'auto' -> None (the model detects it per chunk); a code must be one the model knows."""
    language = (language or "auto").strip().lower()
    if language == "auto":
        return None
    lang_to_id = getattr(model.generation_config, "lang_to_id", None) or {}
    known = sorted(token.strip("<|>") for token in lang_to_id)
    if language not in known:
        hint = f"Use 'auto' or one of: {', '.join(known)}." if known else "This model only supports 'auto'."
        raise HeartMuLaError(f"Cannot transcribe: unknown language {language!r}. {hint}")
    return language


def _format_timestamped(tokenizer, ids: torch.Tensor, offset_s: float) -> str:
    """One line per segment the model timed: '[mm:ss.ss - mm:ss.ss] text', shifted by the chunk start."""
    decoded = tokenizer.decode(ids.tolist(), skip_special_tokens=True, output_offsets=True)
    lines = []
    for piece in decoded.get("offsets", []):
        text = piece["text"].strip()
        if not text:
            continue
        start, end = piece["timestamp"]
        lines.append(f"[{_clock(start + offset_s)} - {_clock(end + offset_s)}] {text}")
    if not lines:  # the model gave no timestamps: keep the text, stamped with the chunk start
        text = decoded["text"].strip()
        if text:
            lines.append(f"[{_clock(offset_s)}] {text}")
    return "\n".join(lines)


def _generate(model, features: torch.Tensor, options: dict):
    """``model.generate`` that survives a transformers bug: from 4.50 some 4.x releases crash with
    "forward() got an unexpected keyword argument 'input_ids'" when ``no_speech_threshold`` is set
    (huggingface/transformers PR 36809). Then silence detection is dropped (for this and later calls)."""
    try:
        return model.generate(features, **options)
    except TypeError as exc:
        if "no_speech_threshold" not in options or "input_ids" not in str(exc):
            raise
        options.pop("no_speech_threshold")
        return model.generate(features, **options)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, float(seconds)), 60.0)
    return f"{int(minutes):02d}:{rest:05.2f}"


def _pieces(mono: torch.Tensor) -> list[tuple[int, int, torch.Tensor]]:
    """(song index, start sample, audio) of every chunk of every song, padding left out."""
    pieces = []
    for song, wave in enumerate(mono):
        wave = wave[: audible_length(wave)]
        pieces += [(song, start, wave[start:end]) for start, end in plan_chunks(wave)]
    return pieces


def _options(model, language: str | None, num_beams: int, temperatures: tuple[float, ...], timestamps: bool,
             max_new_tokens: int) -> dict:
    """``generate`` options: beam search, and the official fallback checks when there are several
    temperatures (one temperature above 0: plain sampling)."""
    # start-of-transcript, language, task and no-timestamps take 4 of the decoder's positions
    max_new_tokens = max(1, min(int(max_new_tokens), int(model.config.max_target_positions) - 4))
    options = dict(task="transcribe", language=language, num_beams=int(num_beams),
                   max_new_tokens=int(max_new_tokens), return_timestamps=bool(timestamps))
    if len(temperatures) > 1:
        options.update(
            temperature=temperatures,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            logprob_threshold=LOGPROB_THRESHOLD,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            condition_on_prev_tokens=False,
        )
    elif temperatures[0] > 0:
        options.update(temperature=temperatures[0], do_sample=True)
    return options


def _texts(model, processor, features: torch.Tensor, options: dict, batch, timestamps: bool) -> list[str]:
    """The text of each chunk of a mini-batch (its features [b, mels, frames] on the model's device)."""
    ids = _generate(model, features, options)
    if not isinstance(ids, torch.Tensor):  # dict output (timestamps / segments)
        ids = ids["sequences"]
    if timestamps:
        return [_format_timestamped(processor.tokenizer, row, start / WHISPER_RATE)
                for (_, start, _), row in zip(batch, ids.cpu())]
    return [processor.tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids.cpu()]


@torch.no_grad()
def transcribe(
    model: torch.nn.Module,
    processor,
    waveform: torch.Tensor,
    sample_rate: int,
    language: str = "auto",
    num_beams: int = DEFAULT_BEAMS,
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
    timestamps: bool = False,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 8,
    seed: int = 0,
    on_chunk: Callable[[int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> list[str]:
    """Transcribe each song of a waveform batch [B, C, N]; returns B strings (chunks joined by newlines).

    ``temperatures``: the first is used first (0 = beam search); later ones are tried only for chunks
    that fail the repetition / likelihood checks. Sampling draws from a generator seeded with ``seed``,
    so the same audio gives the same text. ``on_chunk(done, total)`` and ``check_cancel()`` are called
    after every mini-batch.
    """
    mono = to_mono(waveform, sample_rate, WHISPER_RATE)
    language = check_language(model, language)
    temperatures = tuple(float(t) for t in temperatures) or (0.0,)
    if any(t < 0 for t in temperatures):
        raise HeartMuLaError(f"Transcription temperatures must be >= 0, got {temperatures}.")
    if num_beams < 1:
        raise HeartMuLaError(f"Transcription needs at least 1 beam, got {num_beams}.")
    pieces = _pieces(mono)
    options = _options(model, language, num_beams, temperatures, timestamps, max_new_tokens)
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    texts: list[list[str]] = [[] for _ in range(mono.shape[0])]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for first in range(0, len(pieces), batch_size):
            batch = pieces[first : first + batch_size]
            features = processor.feature_extractor(
                [p[2].numpy() for p in batch], sampling_rate=WHISPER_RATE, return_tensors="pt"
            ).input_features.to(device=device, dtype=dtype)
            for (song, _, _), text in zip(batch, _texts(model, processor, features, options, batch, timestamps)):
                if text:
                    texts[song].append(text)
            if on_chunk is not None:
                on_chunk(min(first + batch_size, len(pieces)), len(pieces))
            if check_cancel is not None:
                check_cancel()
    return ["\n".join(parts) for parts in texts]


def estimate_transcribe_bytes(config, batch_size: int, num_beams: int, dtype: torch.dtype) -> int:
    """Memory besides weights for one mini-batch: mel input, encoder activations, and per beam the
    cross-attention keys/values over 1500 audio positions plus the self-attention cache."""
    elt = torch.empty((), dtype=dtype).element_size()
    d = int(config.d_model)
    audio_positions = int(config.max_source_positions)
    text_positions = int(config.max_target_positions)
    rows = int(batch_size) * max(1, int(num_beams))
    mel = batch_size * int(config.num_mel_bins) * 2 * audio_positions * 4
    encoder = batch_size * audio_positions * max(d * 6, int(config.encoder_ffn_dim)) * elt
    attention = batch_size * int(config.encoder_attention_heads) * audio_positions * audio_positions * elt
    cross_kv = 2 * int(config.decoder_layers) * rows * audio_positions * d * elt
    self_kv = 2 * int(config.decoder_layers) * rows * text_positions * d * elt
    logits = rows * int(config.vocab_size) * 4 * 4
    return int(mel + encoder + attention + cross_kv + self_kv + logits)
