"""Stand-in for ``comfy.lora``: ComfyUI's LoRA loader for the layouts the pack hands it, and the sums
its patcher does with the result.

``load_lora(lora, to_load)`` maps each LoRA layer name of ``to_load`` (-> model weight key) to a patch:
``<name>.lora_up.weight`` / ``lora_down.weight`` (+ ``<name>.alpha``) become a low-rank patch,
``<name>.diff`` / ``<name>.diff_b`` a ("diff", (tensor,)) patch of the weight / the bias, as in
ComfyUI 0.3.64 and 0.28 (there the low-rank patch is a ``weight_adapter.LoRAAdapter``).
``calculate_weight`` adds patches as ComfyUI does: ``w += (strength x alpha / rank) x (up @ down)``
in the intermediate dtype, ``w += strength x diff``.
"""

from __future__ import annotations

import logging

import torch


class _LowRank:
    """What ComfyUI's LoRAAdapter holds: (up, down, alpha or None, mid, dora_scale, reshape)."""

    name = "lora"

    def __init__(self, loaded_keys, weights):
        self.loaded_keys = loaded_keys
        self.weights = weights

    def calculate_weight(self, weight, key, strength, strength_model, offset, function,
                         intermediate_dtype=torch.float32, original_weight=None):
        up = self.weights[0].to(weight.device, intermediate_dtype)
        down = self.weights[1].to(weight.device, intermediate_dtype)
        alpha = self.weights[2] / down.shape[0] if self.weights[2] is not None else 1.0
        diff = torch.mm(up.flatten(start_dim=1), down.flatten(start_dim=1)).reshape(weight.shape)
        weight += function(((strength * alpha) * diff).type(weight.dtype))
        return weight


def load_lora(lora, to_load, log_missing=True):
    patch_dict, loaded = {}, set()
    for name, key in to_load.items():
        alpha = lora[f"{name}.alpha"].item() if f"{name}.alpha" in lora else None
        if f"{name}.alpha" in lora:
            loaded.add(f"{name}.alpha")
        up, down = f"{name}.lora_up.weight", f"{name}.lora_down.weight"
        if up in lora:
            patch_dict[key] = _LowRank({up, down}, (lora[up], lora[down], alpha, None, None, None))
            loaded.update((up, down))
        for suffix, target in (("diff", key), ("diff_b", key[: -len(".weight")] + ".bias")):
            if f"{name}.{suffix}" in lora:
                patch_dict[target] = ("diff", (lora[f"{name}.{suffix}"],))
                loaded.add(f"{name}.{suffix}")
    if log_missing:
        for k in lora:
            if k not in loaded:
                logging.warning("lora key not loaded: %s", k)
    return patch_dict


def calculate_weight(patches, weight, key, intermediate_dtype=torch.float32, original_weights=None):
    for strength, value, strength_model, _offset, function in patches:
        function = function or (lambda a: a)
        if strength_model != 1.0:
            weight *= strength_model
        if isinstance(value, _LowRank):
            weight = value.calculate_weight(weight, key, strength, strength_model, None, function, intermediate_dtype)
        elif value[0] == "diff" and strength != 0.0:
            weight += function(strength * value[1][0].to(weight.device, weight.dtype))
    return weight
