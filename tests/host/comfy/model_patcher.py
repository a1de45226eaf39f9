"""Stand-in for ``comfy.model_patcher.ModelPatcher``: holds a model and its two devices, and weight
patches (LoRAs) the way ComfyUI keeps them.

Like the real one it sets ``model.device`` and never changes weights on its own. ``load`` moves the
model only when the load device differs from where it is (never in CPU tests). Patches: ``clone``
shares the model (and the backup of original weights) and copies the patch lists; ``add_patches``
records ``(strength, patch, strength_model, offset, function)`` per weight key present in the
model; ``load`` puts back the weights of another clone's patches, then patches this one's into the
model as ComfyUI's full load does (float32 copy, the layer's ``convert_weight`` / ``set_weight``
where it has them, ``comfy.lora.calculate_weight``), and ``detach`` puts the originals back.
"""

from __future__ import annotations

import uuid

import torch

from . import lora, model_management


def get_key_weight(model, key):
    """(weight, set_func, convert_func) of ``key``: the layer's ``set_<name>`` / ``convert_<name>`` hooks."""
    owner_name, _, name = key.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    return getattr(owner, name), getattr(owner, f"set_{name}", None), getattr(owner, f"convert_{name}", None)


def _set_param(model, key, value):
    owner_name, _, name = key.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    setattr(owner, name, torch.nn.Parameter(value, requires_grad=False))


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.size = size
        self.model = model
        if getattr(self.model, "device", None) is None:
            self.model.device = offload_device
        self.load_device = load_device
        self.offload_device = offload_device
        self.weight_inplace_update = weight_inplace_update
        self.patches = {}
        self.backup = {}
        self.patches_uuid = uuid.uuid4()
        if not hasattr(self.model, "current_weight_patches_uuid"):
            self.model.current_weight_patches_uuid = None
        self.model_size()

    def model_size(self):
        if self.size > 0:
            return self.size
        self.size = model_management.module_size(self.model)
        return self.size

    def loaded_size(self):
        return self.size if self.model.device == self.load_device else 0

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def clone(self):
        n = self.__class__(self.model, self.load_device, self.offload_device, self.size,
                           weight_inplace_update=self.weight_inplace_update)
        n.patches = {k: v[:] for k, v in self.patches.items()}
        n.patches_uuid = self.patches_uuid
        n.backup = self.backup
        return n

    def add_patches(self, patches, strength_patch=1.0, strength_model=1.0):
        model_sd = self.model.state_dict()
        added = []
        for key in patches:
            if key in model_sd:
                added.append(key)
                self.patches.setdefault(key, []).append((strength_patch, patches[key], strength_model, None, None))
        self.patches_uuid = uuid.uuid4()
        return added

    def patch_weight_to_device(self, key, device_to=None, inplace_update=False):
        if key not in self.patches:
            return
        weight, set_func, convert_func = get_key_weight(self.model, key)
        if key not in self.backup:
            self.backup[key] = weight.to(device=self.offload_device)
        temp = weight.to(device=device_to or weight.device, dtype=torch.float32, copy=True)
        if convert_func is not None:
            temp = convert_func(temp, inplace=True)
        out = lora.calculate_weight(self.patches[key], temp, key)
        if set_func is None:
            _set_param(self.model, key, out.to(weight.dtype))
        else:
            set_func(out, inplace_update=inplace_update, seed=0)

    def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False):
        if self.model.current_weight_patches_uuid not in (None, self.patches_uuid):
            self.unpatch_model()
        if device_to is not None and self.model.device != device_to:
            self.model.to(device_to)
        if self.model.current_weight_patches_uuid is None:
            for key in self.patches:
                self.patch_weight_to_device(key, device_to=device_to)
            self.model.current_weight_patches_uuid = self.patches_uuid
        self.model.device = device_to

    def unpatch_model(self, device_to=None, unpatch_weights=True):
        if unpatch_weights:
            for key, weight in self.backup.items():
                _set_param(self.model, key, weight)
            self.backup.clear()
            self.model.current_weight_patches_uuid = None
        if device_to is not None:
            self.model.to(device_to)
            self.model.device = device_to

    def detach(self, unpatch_all=True):
        if self.model.device != self.offload_device:
            self.model.to(self.offload_device)
        self.model.device = self.offload_device
        if unpatch_all:
            self.unpatch_model(self.offload_device)
        return self.model

    def current_loaded_device(self):
        return self.model.device
