"""Device and dtype choices of the command line (the nodes take ComfyUI's devices, and the same dtype
names), and memory checks before work starts."""

from __future__ import annotations

import torch

from .errors import HeartMuLaError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_CHOICES = ("auto", *DTYPES)


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


GB = 1e9


def available_bytes(device: torch.device) -> int | None:
    """Memory a new allocation can still get on ``device`` (None: unknown, e.g. MPS)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                fields = dict(line.split(":", 1) for line in f)
            return int(fields["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return None
    return None


def in_gb(nbytes: int) -> str:
    """``nbytes`` for a message, in GB (a count of songs beyond a float's range makes a size beyond it)."""
    return f"{nbytes / GB:.2f} GB" if nbytes < 1e300 else f"10^{int(int(nbytes).bit_length() * 0.30103) - 9} GB"


def check_memory(needed: int, device: torch.device, what: str, fix: str) -> None:
    """Refuse up front what cannot fit, rather than fail (or be killed) after minutes of work."""
    free = available_bytes(device)
    if free is not None and needed > free:
        raise HeartMuLaError(f"{what} needs about {in_gb(needed)} on {device} but only {free / GB:.2f} GB "
                             f"is available. {fix}")


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "can't allocate memory" in str(exc)))


class memory_errors:
    """``with memory_errors(needed, device, what, fix):`` turns an allocation failure into one
    HeartMuLaError saying how much the work needs."""

    def __init__(self, needed: int, device: torch.device, what: str, fix: str):
        self.needed, self.device, self.what, self.fix = needed, device, what, fix

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        if exc is not None and is_out_of_memory(exc):
            raise HeartMuLaError(f"{self.what} ran out of memory on {self.device}: it needs about "
                                 f"{in_gb(self.needed)} besides what is already loaded. {self.fix}") from None
        return False
