"""CLAP scoring: how well a song matches a text description (cosine of audio and text embeddings).

Any CLAP checkpoint in Hugging Face format loads (``transformers`` ClapModel + ClapProcessor), e.g.
a music CLAP such as larger_clap_music; HeartCLAP can use the same path once its weights are
published in that format.

CLAP hears a fixed window (``max_length_s`` of its feature extractor, 10 s for the LAION models).
A song is cut into consecutive windows of exactly that length, the last one aligned to the song's
end (so it overlaps its neighbour instead of being padded); each window is scored against the text
and the song's score is the mean. Every window gets ``is_longer = False``: no window exceeds the
model's length, and the extractor's habit of marking a random clip as "longer" when none is would
make scores depend on what else is in the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch

from ..errors import HeartMuLaError
from .audio_in import audible_length, to_mono
from .hf_models import LoadedModel, load_pretrained


def load_clap(folder: str | Path, dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a CLAP folder on the CPU in ``dtype``; an unknown folder layout is a CheckpointError."""
    return load_pretrained(folder, "clap", "ClapModel", "ClapProcessor", dtype)


def window_starts(num_samples: int, window: int) -> list[int]:
    """Start of each scoring window: every ``window`` samples, the last one ending at the song's end."""
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, window))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def _pooled(output) -> torch.Tensor:
    """transformers 4.x returns the embedding tensor, 5.x a model output whose pooler_output it is."""
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return torch.nn.functional.normalize(tensor.float(), dim=-1)


@torch.no_grad()
def embed_texts(model, processor, texts: Sequence[str]) -> torch.Tensor:
    """Unit-length text embeddings [T, D], one text at a time so padding never changes a result."""
    device = next(model.parameters()).device
    rows = []
    for text in texts:
        tokens = processor.tokenizer([text], return_tensors="pt", truncation=True)
        tokens = {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        rows.append(_pooled(model.get_text_features(**tokens)))
    return torch.cat(rows).cpu()


@torch.no_grad()
def embed_windows(model, processor, windows: Sequence[torch.Tensor]) -> torch.Tensor:
    """Unit-length audio embeddings [W, D] of mono windows at the model's rate."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    features = processor.feature_extractor(
        [w.numpy() for w in windows], sampling_rate=processor.feature_extractor.sampling_rate, return_tensors="pt"
    )
    input_features = features["input_features"].to(device=device, dtype=dtype)
    is_longer = torch.zeros(len(windows), 1, dtype=torch.bool, device=device)
    return _pooled(model.get_audio_features(input_features=input_features, is_longer=is_longer)).cpu()


def _windows(mono: torch.Tensor, window: int) -> tuple[list[int], list[torch.Tensor]]:
    """(owning song, mono window) of every scoring window; the padding of a batch is not scored."""
    owners, clips = [], []
    for song, wave in enumerate(mono):
        wave = wave[: audible_length(wave) or window]
        for start in window_starts(wave.numel(), window):
            owners.append(song)
            clips.append(wave[start : start + window])
    return owners, clips


def _texts_per_song(texts: Sequence[str], songs: int) -> list[str]:
    texts = [str(t) for t in texts]
    if len(texts) == 1 and songs > 1:
        texts = texts * songs
    if len(texts) != songs:
        raise HeartMuLaError(f"Got {len(texts)} texts for {songs} songs. Give one text for all or one per song.")
    if any(not t.strip() for t in texts):
        raise HeartMuLaError("The text to compare with is empty: give a description of the music.")
    return texts


def clap_scores(
    model,
    processor,
    waveform: torch.Tensor,
    sample_rate: int,
    texts: Sequence[str],
    windows_per_batch: int = 16,
    on_batch: Callable[[int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> list[float]:
    """Mean cosine similarity per song of a waveform batch [B, C, N] with its text, each in [-1, 1].

    ``texts``: one text for all songs or one per song. Trailing exact zeros (the padding of shorter
    songs in a batch) are not scored.
    """
    mono = to_mono(waveform, sample_rate, int(processor.feature_extractor.sampling_rate))
    texts = _texts_per_song(texts, mono.shape[0])
    owners, clips = _windows(mono, int(processor.feature_extractor.nb_max_samples))
    unique = sorted(set(texts))
    text_embeds = embed_texts(model, processor, unique)
    text_of_song = torch.stack([text_embeds[unique.index(t)] for t in texts])

    sums = torch.zeros(mono.shape[0], dtype=torch.float64)
    counts = torch.zeros(mono.shape[0], dtype=torch.float64)
    for first in range(0, len(clips), windows_per_batch):
        audio = embed_windows(model, processor, clips[first : first + windows_per_batch])
        idx = torch.tensor(owners[first : first + windows_per_batch])
        cosine = (audio * text_of_song[idx]).sum(dim=-1).double()
        sums.index_add_(0, idx, cosine)
        counts.index_add_(0, idx, torch.ones_like(cosine))
        if on_batch is not None:
            on_batch(min(first + windows_per_batch, len(clips)), len(clips))
        if check_cancel is not None:
            check_cancel()
    return [float(max(-1.0, min(1.0, s))) for s in (sums / counts).tolist()]


def estimate_clap_bytes(model, processor, windows_per_batch: int, dtype: torch.dtype) -> int:
    """Memory besides weights for one batch of windows: the spectrogram image and the activations of
    the widest audio-encoder stage (a generous multiple of its hidden states)."""
    elt = torch.empty((), dtype=dtype).element_size()
    audio = model.config.audio_config
    spec = int(audio.spec_size)
    image = windows_per_batch * 4 * spec * spec * 4
    first_stage = (spec // int(audio.patch_stride[0] if isinstance(audio.patch_stride, (list, tuple))
                                else audio.patch_stride)) ** 2
    hidden = windows_per_batch * first_stage * int(audio.patch_embeds_hidden_size) * elt
    return int(image + 16 * hidden)
