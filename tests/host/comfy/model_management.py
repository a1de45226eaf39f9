"""Stand-in for ``comfy.model_management``: devices, dtype choice, model loading, interrupts.

The real module decides what to evict from VRAM; here there is one "GPU" slot list and every call
is recorded in ``calls`` so tests can assert which patchers were requested, in which order, with
which memory estimate. Devices are the CPU unless a test overrides ``_device``.
"""

from __future__ import annotations

import threading

import torch

_device = torch.device("cpu")

calls: list[tuple[list, int]] = []  # (patchers, memory_required) of every load_models_gpu call
loaded: list = []  # patchers currently "on the GPU", most recent first
evicted: list = []  # patchers unloaded to make room, in order


def get_torch_device():
    return _device


def unet_offload_device():
    return torch.device("cpu")


def text_encoder_device():
    return _device


def text_encoder_offload_device():
    return torch.device("cpu")


def vae_device():
    return _device


def vae_offload_device():
    return torch.device("cpu")


def intermediate_device():
    return torch.device("cpu")


def is_device_cpu(device) -> bool:
    return torch.device(device).type == "cpu"


def should_use_bf16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    if device is not None and is_device_cpu(device):
        return False
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    if device is not None and is_device_cpu(device):
        return False
    return torch.cuda.is_available()


def module_size(module) -> int:
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                    force_full_load=False):
    """Record the request; model the single GPU: loading one model evicts every other one."""
    calls.append((list(models), memory_required))
    for other in list(loaded):
        if not any(other is m for m in models):
            loaded.remove(other)
            other.detach()
            evicted.append(other)
    for m in models:
        if not any(m is x for x in loaded):
            m.load(m.load_device)
            loaded.insert(0, m)


def load_model_gpu(model):
    return load_models_gpu([model])


def unload_all_models():
    for m in list(loaded):
        loaded.remove(m)
        m.detach()


def soft_empty_cache(force=False):
    pass


def reset_recording():
    calls.clear()
    loaded.clear()
    evicted.clear()


class InterruptProcessingException(BaseException):
    """Cancel. A BaseException as in ComfyUI 0.28 and later (0.3.64: Exception), so an ``except
    Exception`` in the pack cannot swallow it on the stand-in either."""


_interrupt_lock = threading.RLock()
_interrupt = False


def interrupt_current_processing(value=True):
    global _interrupt
    with _interrupt_lock:
        _interrupt = value


def processing_interrupted():
    with _interrupt_lock:
        return _interrupt


def throw_exception_if_processing_interrupted():
    global _interrupt
    with _interrupt_lock:
        if _interrupt:
            _interrupt = False
            raise InterruptProcessingException()
