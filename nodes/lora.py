"""Load HeartMuLa LoRA: an LM in, the same LM with a LoRA out, applied through ComfyUI's own patching.

The core reads the file and checks it against the LM's architecture (heartmula_core/lora); this
node only hands the result to ComfyUI: each layer in ComfyUI's LoRA layout (``lora_up`` /
``lora_down`` / ``alpha``, ``diff`` for a replaced module), turned into patches by ComfyUI's own
``comfy.lora.load_lora`` with a key map of the LM's weights, added to a clone of the input's
patcher. So, as for ComfyUI's image and ACE-Step LoRAs: the input LM and other branches of the
graph keep their weights (ComfyUI patches the shared model for whichever clone it loads and puts
the weights back when another loads), a new strength re-runs this node and the sampler but never
reloads the 3B base from disk, several nodes stack, and ComfyUI's fp8 layers, partial (low-VRAM)
loading and DynamicVRAM patch as they do for ComfyUI's own models. Fully loaded, the patched weights
are ordinary tensors on the GPU, so the sampler's CUDA graph runs with them.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch

import comfy.lora
import folder_paths
from comfy_api.latest import io

from ..heartmula_core.checkpoints.folders import weight_files
from ..heartmula_core.errors import LoraError
from ..heartmula_core.lora import Adapter, load_adapter
from ..heartmula_core.settings import check
from .base import HeartMuLaNode, widget
from .types import LMSocket

FOLDER = "loras"  # ComfyUI's folder for every LoRA (models/loras, plus extra_model_paths.yaml)


def lora_path(name: str):
    """The file ``name`` of ComfyUI's loras folders (the server does not check V3 combo values on
    every version: only a listed name is taken, so no path leaves those folders)."""
    if name not in folder_paths.get_filename_list(FOLDER):
        folders = ", ".join(folder_paths.get_folder_paths(FOLDER))
        raise LoraError(f"LoRA '{name}' is not in ComfyUI's loras folder ({folders}). Put the LoRA file there (a PEFT "
                        "/ SimpleTuner folder as a sub-folder, adapter_config.json beside its file), then refresh.")
    return folder_paths.get_full_path(FOLDER, name)


def comfy_patches(adapter: Adapter) -> dict:
    """``adapter`` as ComfyUI's patches (weight key -> patch), made by ComfyUI's own LoRA loader."""
    tensors, key_map = {}, {}
    for key, f in adapter.low_rank.items():
        name = key[: -len(".weight")]
        tensors[f"{name}.lora_up.weight"], tensors[f"{name}.lora_down.weight"] = f.up, f.down
        tensors[f"{name}.alpha"] = torch.tensor(f.alpha, dtype=torch.float64)  # read back exactly by .item()
        key_map[name] = key
    for key, diff in adapter.diff.items():
        name, _, what = key.rpartition(".")
        tensors[f"{name}.diff" if what == "weight" else f"{name}.diff_b"] = diff
        key_map[name] = f"{name}.weight"
    patches = comfy.lora.load_lora(tensors, key_map)
    if set(patches) != set(adapter.keys):
        raise LoraError(f"ComfyUI's LoRA loader took {len(patches)} of the {len(adapter.keys)} layers of LoRA "
                        f"{adapter.path}; nothing was applied. Please report this with your ComfyUI version.")
    return patches


class LoadHeartMuLaLoRA(HeartMuLaNode):
    """Applies a HeartMuLa LoRA (PEFT / SimpleTuner, kohya or ComfyUI layout) to the LM. Chain several
    to stack them; the input LM stays as it was."""

    @classmethod
    def define_schema(cls):
        return cls.declare(
            "HeartMuLaLoraLoader", "Load HeartMuLa LoRA", inputs=[
                LMSocket.Input("lm", tooltip="The LM from Load HeartMuLa LM (or from another LoRA node)."),
                io.Combo.Input("lora_name", options=folder_paths.get_filename_list(FOLDER),
                               tooltip="A LoRA file in ComfyUI's models/loras folder. A PEFT / SimpleTuner LoRA is "
                                       "its adapter_model.safetensors, with adapter_config.json beside it."),
                io.Float.Input("strength", default=1.0, **widget("lora_strength"),
                               tooltip="How strongly the LoRA changes the LM: 1 as trained, 0 off, negative values "
                                       "push the other way. Changing it does not reload the LM from disk."),
            ],
            outputs=[LMSocket.Output(display_name="lm", tooltip="The LM with the LoRA applied (a patched copy).")],
        )

    @classmethod
    def fingerprint_inputs(cls, lora_name: str = "", **_inputs):
        """The file's time and size: a LoRA replaced under the same name runs again (the LM socket is
        not passed here: ComfyUI reads only widget values for this)."""
        try:
            stat = os.stat(lora_path(lora_name))
            return f"{stat.st_mtime_ns}-{stat.st_size}"
        except (LoraError, OSError, TypeError):
            return ""  # execute reports the problem with the pack's own error

    @classmethod
    def execute(cls, lm, lora_name: str, strength: float) -> io.NodeOutput:
        strength = check("lora_strength", strength, "strength")
        adapter = load_adapter(lora_path(lora_name), lm.config, weight_files(lm.folder, "lm"))
        if strength == 0:
            return io.NodeOutput(lm)  # checked, then off: the input LM itself
        patcher = lm.patcher.clone()
        patches = comfy_patches(adapter)
        added = patcher.add_patches(patches, strength)
        if len(added) != len(patches):
            raise LoraError(f"ComfyUI's patcher took {len(added)} of the {len(patches)} layers of LoRA {adapter.path}; "
                            "nothing was applied. Please report this with your ComfyUI version.")
        return io.NodeOutput(replace(lm, patcher=patcher))


NODES = [LoadHeartMuLaLoRA]
