"""ModelPatcher wrapping for the ``transformers`` models of the listening nodes (Whisper, CLAP).

ComfyUI's ModelPatcher writes ``model.device`` and a few bookkeeping attributes on the module it
holds; a ``transformers`` model exposes ``device`` as a read-only property, so it is held inside a
plain container module instead. These models are made of ordinary torch.nn layers, which ComfyUI
cannot load partially, so they are always loaded whole (``force_full_load``), in a plain
ModelPatcher: ComfyUI's CoreModelPatcher (DynamicVRAM) pages only comfy.ops layers, so it would move
these whole anyway.
"""

from __future__ import annotations

import torch

import comfy.model_management as mm

from . import memory


class HeldModel(torch.nn.Module):
    """Container that ModelPatcher may annotate freely; the real model is ``inner``."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


def choose_dtype(choice: str, load_device) -> torch.dtype:
    """auto = fp16 where ComfyUI says the device runs it well, else fp32."""
    if choice == "auto":
        return torch.float16 if mm.should_use_fp16(load_device) else torch.float32
    return torch.float16 if choice == "fp16" else torch.float32


def wrap(model: torch.nn.Module, load_device, offload_device):
    model.eval()
    return memory.wrap(HeldModel(model), load_device, offload_device)


def load_whole(patcher, memory_required: int) -> torch.nn.Module:
    """Put the whole model on its load device with ``memory_required`` bytes left for activations."""
    mm.load_models_gpu([patcher], memory_required=int(memory_required), force_full_load=True)
    return patcher.model.inner
