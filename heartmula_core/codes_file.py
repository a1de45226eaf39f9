"""The codes file: a safetensors file with ``codes`` [B, 8, T] int64 and ``lengths`` [B] int64."""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write
from .errors import CodesError


def save_codes(path: str | Path, codes: torch.Tensor, lengths: torch.Tensor) -> Path:
    """Write atomically: a temporary file in the same folder, renamed into place when complete."""
    from safetensors.torch import save_file

    check_codes(codes, lengths, str(path))
    tensors = {"codes": codes.to(torch.int64).contiguous().cpu(), "lengths": lengths.to(torch.int64).cpu()}
    return atomic_write(path, ".safetensors", lambda tmp: save_file(
        tensors, tmp, metadata={"format": "heartmula-codes", "frame_rate": "12.5"}))


def load_codes(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CodesError(f"Codes file {path} does not exist.")
    try:
        data = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
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


def check_codes(codes: torch.Tensor, lengths: torch.Tensor, where: str = "codes") -> None:
    if codes.dim() != 3 or codes.shape[1] != 8 or codes.is_floating_point():
        raise CodesError(f"{where}: codes must be an integer tensor [batch, 8, frames], got {codes.dtype} {list(codes.shape)}.")
    if lengths.dim() != 1 or lengths.shape[0] != codes.shape[0]:
        raise CodesError(f"{where}: lengths must be [batch] = [{codes.shape[0]}], got {list(lengths.shape)}.")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > codes.shape[-1]):
        raise CodesError(f"{where}: lengths {lengths.tolist()} must lie between 1 and the {codes.shape[-1]} frames stored.")
