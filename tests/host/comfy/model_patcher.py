"""Stand-in for ``comfy.model_patcher.ModelPatcher``: holds a model and its two devices.

Like the real one it sets ``model.device`` and never changes weights on its own. ``load`` moves the
model only when the load device differs from where it is (never in CPU tests).
"""

from __future__ import annotations

from . import model_management


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.size = size
        self.model = model
        if getattr(self.model, "device", None) is None:
            self.model.device = offload_device
        self.load_device = load_device
        self.offload_device = offload_device
        self.weight_inplace_update = weight_inplace_update
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

    def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False):
        if device_to is not None and self.model.device != device_to:
            self.model.to(device_to)
        self.model.device = device_to

    def detach(self, unpatch_all=True):
        if self.model.device != self.offload_device:
            self.model.to(self.offload_device)
        self.model.device = self.offload_device
        return self.model

    def current_loaded_device(self):
        return self.model.device
