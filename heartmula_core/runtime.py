"""Device and dtype choices shared by the command line (the nodes take ComfyUI's choices instead)."""

from __future__ import annotations

import torch

from .errors import HeartMuLaError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise HeartMuLaError("--device cuda was asked for but no CUDA GPU is visible to PyTorch; use --device cpu.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise HeartMuLaError("--device mps was asked for but MPS is not available; use --device cpu.")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device, default_gpu: torch.dtype = torch.bfloat16) -> torch.dtype:
    """auto = bf16 on a GPU that supports it (else fp16 on GPUs, fp32 on CPU)."""
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        return default_gpu if (default_gpu != torch.bfloat16 or torch.cuda.is_bf16_supported()) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
