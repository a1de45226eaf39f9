"""Audio files: waveforms to WAV / FLAC / MP3 (16-bit PCM, clipped to [-1, 1]) and the raw float
waveform to safetensors, all or nothing (atomic.py).

Files are encoded in memory and the bytes written by Python: libsndfile reports a full disk only as
"System error", Python's own write says which error it was.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from .atomic import atomic_write, atomic_write_all, is_null_device
from .errors import HeartMuLaError

# extension -> (soundfile format, subtype)
AUDIO_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III")}


def writable_format(extension: str, who: str) -> tuple[str, str]:
    """(format, subtype) of an extension (".flac"); refused, naming ``who`` asked for it, when it is
    unknown or when this libsndfile cannot write it (MP3 needs libsndfile >= 1.1)."""
    import soundfile

    fmt = AUDIO_FORMATS.get(extension.lower())
    if fmt is None:
        raise HeartMuLaError(f"{who}: unknown audio extension; use .wav, .flac or .mp3.")
    if fmt[0] not in soundfile.available_formats():
        raise HeartMuLaError(
            f"{who}: this soundfile/libsndfile ({soundfile.__libsndfile_version__}) cannot write {fmt[0]}; "
            "use .wav or .flac, or install libsndfile >= 1.1 for MP3."
        )
    return fmt


def audio_format(path: Path, what: str = "--out") -> tuple[str, str]:
    """(format, subtype) soundfile writes ``path`` in, by its extension."""
    if is_null_device(path):
        return AUDIO_FORMATS[".wav"]  # nothing is written: any format will do
    return writable_format(Path(path).suffix, f"{what} {path}")


def audio_paths(out: str | Path, count: int) -> list[Path]:
    """One song: the path as given. Several: name_0.ext, name_1.ext, ... (the null device: itself)."""
    out = Path(out)
    if count == 1 or is_null_device(out):
        return [out] * count
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(count)]


def _encoder(data, sample_rate: int, fmt: str, subtype: str):
    def write(tmp: str) -> None:
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, data, sample_rate, format=fmt, subtype=subtype)
        Path(tmp).write_bytes(buffer.getbuffer())
    return write


def write_audio(out, waveform: torch.Tensor, lengths_samples: list[int], sample_rate: int,
                targets: list | None = None) -> list[Path]:
    """waveform [B, 2, N] float32 -> one file per song, each cut to its own length. All or nothing:
    every song goes to a temporary file first, and only when all are written are they renamed."""
    import soundfile

    paths = audio_paths(out, waveform.shape[0])
    fmt, subtype = audio_format(paths[0])
    items = [(target, Path(path).suffix,
              _encoder(song[:, :n].clamp(-1.0, 1.0).T.contiguous().numpy(), sample_rate, fmt, subtype))
             for target, path, song, n in zip(targets or paths, paths, waveform, lengths_samples)]
    return atomic_write_all(items, errors=(soundfile.SoundFileError,))


def write_waveform(path, waveform: torch.Tensor) -> Path:
    """The raw float waveform [B, 2, N] as safetensors (``waveform``)."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    return atomic_write(path, ".safetensors", lambda tmp: save_file({"waveform": waveform.contiguous()}, tmp),
                        errors=(SafetensorError,))
