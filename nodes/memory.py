"""Models on one GPU the ComfyUI way: ModelPatcher wrapping, load requests with our own memory
estimates, progress bars and the Cancel check.

Rules this module keeps (docs/ARCHITECTURE.md, "nodes/"):
- models are built on the offload device and wrapped in a patcher; only ComfyUI moves them. The LM
  gets a plain ModelPatcher (a full load keeps its weights resident, so its frame step can be
  captured as a CUDA graph); the codec gets ComfyUI's CoreModelPatcher (DynamicVRAM pages its
  weights into VRAM on demand where the host has it);
- a node that runs a model first calls ``load_models_gpu([patcher], memory_required=estimate)``,
  so ComfyUI evicts whatever else does not fit (the codec while the LM samples and vice versa),
  then runs on ``patcher.load_device``;
- layers come from ``comfy.ops`` so a model that does not fit is partially loaded and its other
  weights are cast to the GPU on the fly. The listening models (``transformers`` Whisper and CLAP)
  are made of torch.nn layers, so ``partial_load_safe`` says no and they are always loaded whole,
  in a plain ModelPatcher (CoreModelPatcher pages only comfy.ops layers: it would move them whole
  anyway), inside a ``HeldModel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import comfy.utils

from ..heartmula_core.runtime import DTYPES
from ..heartmula_core.weights import module_bytes

_RUNS_WELL = {torch.bfloat16: lambda device: mm.should_use_bf16(device),
              torch.float16: lambda device: mm.should_use_fp16(device)}


@dataclass(frozen=True)
class Placement:
    """Where a kind of model lives and in which precision: its (load, offload) devices, the dtype
    choices its loader node offers, and what ``auto`` means."""

    devices: Callable[[], tuple]
    dtypes: tuple[str, ...]
    auto: torch.dtype  # auto = this where ComfyUI says the load device runs it well, else fp32


PLACEMENTS = {
    # the main torch device; RAM unless --highvram/--gpu-only
    "lm": Placement(lambda: (mm.get_torch_device(), mm.unet_offload_device()), ("auto", "bf16", "fp16", "fp32"),
                    torch.bfloat16),
    # ComfyUI's VAE devices (honours --cpu-vae); the authors report audible loss below fp32, so no auto
    "codec": Placement(lambda: (mm.vae_device(), mm.vae_offload_device()), ("fp32", "bf16", "fp16"), torch.float32),
    # ComfyUI's text-encoder devices: like the text encoders, these are transformers models
    "whisper": Placement(lambda: (mm.text_encoder_device(), mm.text_encoder_offload_device()),
                         ("auto", "fp16", "fp32"), torch.float16),
    "clap": Placement(lambda: (mm.text_encoder_device(), mm.text_encoder_offload_device()),
                      ("fp32", "fp16", "auto"), torch.float16),
}


def loader_dtype(kind: str, choice: str, load_device) -> torch.dtype:
    """The dtype of ``choice`` for a model of ``kind``. The server does not check dropdown values of
    V3 nodes, so the choice is checked here."""
    placement = PLACEMENTS[kind]
    if choice not in placement.dtypes:
        raise ValueError(f"dtype must be one of {', '.join(placement.dtypes)}, got {choice!r}.")
    if choice == "auto":
        prefer = placement.auto
        return prefer if prefer in _RUNS_WELL and _RUNS_WELL[prefer](load_device) else torch.float32
    return DTYPES[choice]


def layer_operations():
    """Layers that skip weight init and can be cast on the fly when ComfyUI loads a model partially."""
    return comfy.ops.disable_weight_init


class HeldModel(torch.nn.Module):
    """A container ModelPatcher may annotate freely: it writes ``model.device``, which a
    ``transformers`` model exposes as a read-only property. The real model is ``inner``."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


def wrap(model: torch.nn.Module, load_device, offload_device):
    """Hand ``model`` (already on ``offload_device``) to ComfyUI's model management in a plain
    ModelPatcher: loaded whole when it fits, its weights are ordinary tensors on the GPU."""
    model.eval()
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device,
                                            size=module_bytes(model))


def wrap_core(model: torch.nn.Module, load_device, offload_device):
    """Hand ``model`` (loaded, on ``offload_device``) over the way ComfyUI wraps its own models
    (VAEs, audio encoders): dtypes archived, then ``CoreModelPatcher``, which is ModelPatcherDynamic
    when DynamicVRAM is on (weights stay in RAM and are paged into VRAM per layer as they are used)
    and a plain ModelPatcher otherwise, or on hosts older than 0.28 that have neither."""
    model.eval()
    archive = getattr(mm, "archive_model_dtypes", None)
    if archive is not None:
        archive(model)  # the dtypes a paged layer is cast back to; read after loading, so they are final
    patcher_class = getattr(comfy.model_patcher, "CoreModelPatcher", comfy.model_patcher.ModelPatcher)
    return patcher_class(model, load_device=load_device, offload_device=offload_device, size=module_bytes(model))


def partial_load_safe(model: torch.nn.Module) -> bool:
    """Whether ComfyUI may put only part of ``model`` on the GPU and cast the rest on the fly.

    ComfyUI's ModelPatcher moves weights module by module and only modules whose parameters are all
    their own; in a partial load it leaves on the offload device any module that does not fit unless
    it is a ``comfy.ops`` layer (which casts its weights to the input's device per call). So a model
    is safe to load partially only if every module holding parameters is such a layer and holds no
    child parameters. Otherwise we ask for a full load: a parameter left behind on the CPU would
    make the first GPU matmul fail. Core modules that move their own weights to the input's device
    per call say so with ``casts_own_weights = True`` (the LM's RMSNorm and its bare ``audio_head``).
    """
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if not own or getattr(module, "casts_own_weights", False):
            continue
        if not hasattr(module, "comfy_cast_weights"):
            return False
        if any(True for child in module.children() for _ in child.parameters()):
            return False
    return True


def load_for_inference(patcher, memory_required: int) -> torch.device:
    """Ask ComfyUI to put ``patcher`` on its load device with ``memory_required`` bytes free for
    activations (evicting other models as needed); returns the device to run on."""
    mm.load_models_gpu([patcher], memory_required=int(memory_required),
                       force_full_load=not partial_load_safe(patcher.model))
    return patcher.load_device


def check_cancel() -> None:
    """Raises ComfyUI's InterruptProcessingException when the user pressed Cancel."""
    mm.throw_exception_if_processing_interrupted()


def progress_reporter(total: int) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback driving a ComfyUI progress bar on the running node."""
    bar = comfy.utils.ProgressBar(total)

    def report(done: int, new_total: int) -> None:
        bar.update_absolute(done, new_total)

    return report
