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
  weights are cast to the GPU on the fly.
"""

from __future__ import annotations

from typing import Callable

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import comfy.utils

DTYPE_CHOICES = ["auto", "bf16", "fp16", "fp32"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def lm_devices() -> tuple[torch.device, torch.device]:
    """(load, offload) devices of the LM: the main torch device; RAM unless --highvram/--gpu-only."""
    return mm.get_torch_device(), mm.unet_offload_device()


def codec_devices() -> tuple[torch.device, torch.device]:
    """(load, offload) devices of the codec: ComfyUI's VAE devices (honours --cpu-vae)."""
    return mm.vae_device(), mm.vae_offload_device()


def pick_dtype(choice: str, load_device, allowed=DTYPE_CHOICES) -> torch.dtype:
    """``auto`` = bf16 where ComfyUI says the device runs it well, else fp32. The server does not
    check dropdown values of V3 nodes, so the choice is checked here."""
    if choice not in allowed:
        raise ValueError(f"dtype must be one of {', '.join(allowed)}, got {choice!r}.")
    if choice == "auto":
        return torch.bfloat16 if mm.should_use_bf16(load_device) else torch.float32
    return _DTYPES[choice]


def layer_operations():
    """Layers that skip weight init and can be cast on the fly when ComfyUI loads a model partially."""
    return comfy.ops.disable_weight_init


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


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
