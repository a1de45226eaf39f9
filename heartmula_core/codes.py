"""Audio codes, the tokens the LM writes and the codec reads: 8 codebooks at 12.5 frames per
second, turned into 48 kHz audio by the released codec. Their checks, and the codes file: a
safetensors file with ``codes`` [B, 8, T] int64 and ``lengths`` [B] int64.
"""

from __future__ import annotations

import numbers
import os
import stat
from pathlib import Path
from typing import Sequence

import torch

from .atomic import OutputTarget, atomic_write
from .errors import CodesError

FRAME_RATE = 12.5  # code frames per second of audio
CODEBOOKS = 8  # codes per frame
SAMPLE_RATE = 48000  # the released codec's output rate (its config.json sample_rate)
SAMPLES_PER_FRAME = int(SAMPLE_RATE / FRAME_RATE)  # 3840


def samples_for(frames: int, sample_rate: int) -> int:
    """Audio samples of ``frames`` code frames at ``sample_rate``: the song's true duration."""
    return int(frames / FRAME_RATE * sample_rate)

MAX_FILE_BYTES = 1 << 31  # 64 songs of 10 minutes take 25 MB; anything near this is not a codes file


def save_codes(path: str | Path | OutputTarget, codes: torch.Tensor, lengths: torch.Tensor) -> Path:
    """Write atomically: a temporary file in the same folder, renamed into place when complete."""
    from safetensors.torch import save

    check_codes(codes, lengths, str(path.given if isinstance(path, OutputTarget) else path))
    tensors = {"codes": codes.to(torch.int64).contiguous().cpu(), "lengths": lengths.to(torch.int64).cpu()}
    data = save(tensors, metadata={"format": "heartmula-codes", "frame_rate": str(FRAME_RATE)})  # small: bytes in memory
    return atomic_write(path, ".safetensors", lambda tmp: Path(tmp).write_bytes(data))


def _check_readable(path: Path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CodesError(f"Codes file {path} does not exist.") from None
    except (OSError, ValueError) as exc:  # a NUL in the name, a name too long, a loop of links
        raise CodesError(f"Codes file {path!s:.200}: {getattr(exc, 'strerror', None) or exc}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise CodesError(f"Codes file {path} is not a regular file (a folder, a pipe or a device). "
                         "Give a file written by 'sample' or Save HeartMuLa Codes.")
    if st.st_size > MAX_FILE_BYTES:
        raise CodesError(f"{path} is {st.st_size / 2**30:.1f} GB, far larger than any codes file; it is not one.")


def load_codes(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    _check_readable(path)
    try:
        data = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CodesError(f"{path} is not a safetensors file ({exc}). Give a file written by 'sample' or Save HeartMuLa Codes.") from None
    if "codes" not in data:
        raise CodesError(f"{path} has no 'codes' tensor (it holds: {', '.join(sorted(data)) or 'nothing'}); it is not a HeartMuLa codes file.")
    codes = data["codes"]
    if codes.dim() == 2:
        codes = codes[None]
    lengths = data.get("lengths")
    if lengths is None:
        lengths = torch.full((codes.shape[0],), codes.shape[-1], dtype=torch.int64)
    check_codes(codes, lengths, str(path))
    return codes.to(torch.int64), lengths.to(torch.int64)


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def _lengths(lengths, batch: int, frames: int, say) -> list[int]:
    """Each song's frame count: None = all stored frames; a tensor or a sequence of whole numbers."""
    if lengths is None:
        return [frames] * batch
    if isinstance(lengths, torch.Tensor):
        if lengths.dim() != 1 or not _is_integer(lengths):
            raise CodesError(say(f"lengths must be integers [batch] = [{batch}], got {lengths.dtype} "
                                 f"{list(lengths.shape)}."))
        lengths = lengths.tolist()
    values = list(lengths)
    if any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in values):
        raise CodesError(say(f"lengths must be integers, got {values!r:.200}."))
    if len(values) != batch:
        raise CodesError(say(f"lengths has {len(values)} entries for a batch of {batch} songs."))
    for b, n in enumerate(values):
        if not 1 <= n <= frames:
            raise CodesError(say(f"lengths[{b}] = {n} is outside 1..{frames} (the frames stored)."))
    return [int(n) for n in values]


def check_codes(codes, lengths: torch.Tensor | Sequence[int] | None = None, where: str | None = None,
                codebooks: int = CODEBOOKS, codebook_size: int | None = None) -> tuple[torch.Tensor, list[int]]:
    """Codes [B, 8, T] of integers (bool is not a token) and each song's length in 1..T (a float
    is not a length); with ``codebook_size``, every id of a song's frames inside the codebook.
    ``where`` names the input in messages. Returns (codes int64 on the CPU, lengths)."""
    def say(problem: str) -> str:
        return f"{where}: {problem}" if where else problem

    if not isinstance(codes, torch.Tensor):
        raise CodesError(say(f"codes must be a torch.Tensor [batch, {codebooks}, frames], got {type(codes).__name__}."))
    if codes.dim() == 3 and codes.shape[1] != codebooks:
        raise CodesError(say(f"codes must have shape [batch, {codebooks}, frames] (one row per codebook), got "
                             f"{list(codes.shape)}: {codes.shape[1]} codes per frame, so they come from another kind "
                             "of model."))
    if codes.dim() != 3 or codes.shape[0] < 1 or codes.shape[2] < 1:
        raise CodesError(say(f"codes must have shape [batch, {codebooks}, frames] (one row per codebook), got "
                             f"{list(codes.shape)}."))
    if not _is_integer(codes):
        raise CodesError(say(f"codes must be an integer tensor (token ids must hold integers), got {codes.dtype}."))
    lengths = _lengths(lengths, codes.shape[0], codes.shape[2], say)
    codes = codes.to("cpu", torch.int64)
    for b, n in enumerate(lengths if codebook_size is not None else []):
        bad = (codes[b, :, :n] < 0) | (codes[b, :, :n] >= codebook_size)
        if bool(bad.any()):
            q, t = (int(i) for i in bad.nonzero()[0])
            raise CodesError(say(
                f"codes[{b}, {q}, {t}] = {int(codes[b, q, t])} is outside the codebook (0..{codebook_size - 1}). "
                "The codes do not come from this codec's language model, or they still contain special "
                "tokens (end of audio): cut them off before decoding."))
    return codes, lengths
