"""The codes file: a safetensors file with ``codes`` [B, 8, T] int64 and ``lengths`` [B] int64."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import torch

from .atomic import OutputTarget, atomic_write
from .errors import CodesError

MAX_FILE_BYTES = 1 << 31  # 64 songs of 10 minutes take 25 MB; anything near this is not a codes file


def save_codes(path: str | Path | OutputTarget, codes: torch.Tensor, lengths: torch.Tensor) -> Path:
    """Write atomically: a temporary file in the same folder, renamed into place when complete."""
    from safetensors.torch import save

    check_codes(codes, lengths, str(path.given if isinstance(path, OutputTarget) else path))
    tensors = {"codes": codes.to(torch.int64).contiguous().cpu(), "lengths": lengths.to(torch.int64).cpu()}
    data = save(tensors, metadata={"format": "heartmula-codes", "frame_rate": "12.5"})  # small: bytes in memory
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


def check_codes(codes: torch.Tensor, lengths: torch.Tensor, where: str = "codes") -> None:
    """Shapes and dtypes (bool is not a token, a float is not a length); values are the codec's job."""
    if not isinstance(codes, torch.Tensor) or not isinstance(lengths, torch.Tensor):
        raise CodesError(f"{where}: codes and lengths must be tensors, got {type(codes).__name__} and {type(lengths).__name__}.")
    if codes.dim() != 3 or codes.shape[1] != 8 or not _is_integer(codes):
        raise CodesError(f"{where}: codes must be an integer tensor [batch, 8, frames], got {codes.dtype} {list(codes.shape)}.")
    if lengths.dim() != 1 or lengths.shape[0] != codes.shape[0] or not _is_integer(lengths):
        raise CodesError(f"{where}: lengths must be integers [batch] = [{codes.shape[0]}], got {lengths.dtype} {list(lengths.shape)}.")
    if codes.shape[0] < 1:
        raise CodesError(f"{where}: holds no songs (batch 0).")
    if int(lengths.min()) < 1 or int(lengths.max()) > codes.shape[-1]:
        raise CodesError(f"{where}: lengths {lengths.tolist()} must lie between 1 and the {codes.shape[-1]} frames stored.")
