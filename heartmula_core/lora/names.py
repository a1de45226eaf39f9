"""Which LM layer a LoRA key means, whatever trainer wrote it.

Keys are ``<layer spelling>.<part>``. The layer is spelled in one of two name sets, with or without
a trainer's prefix:
- the checkpoint's own (torchtune's Llama names: ``backbone.layers.0.attn.q_proj``, ``mlp.w1``);
- the Hugging Face Llama re-statement trainers wrap with PEFT (SimpleTuner's ``heartmula`` family:
  ``self_attn.q_proj``, ``mlp.gate_proj``). The two differ in names only: no weight is permuted, so
  ``attn.output_proj`` is ``self_attn.o_proj``, ``mlp.w1`` / ``w2`` / ``w3`` are gate / down / up;
- prefixes: PEFT's ``base_model.model.``, ComfyUI's ``diffusion_model.`` / ``transformer.``, and
  kohya's underscore spelling (``lora_unet_backbone_layers_0_attn_q_proj``).
The part says what the tensor is: the low-rank factors (``lora_A`` / ``lora_down`` [r, in],
``lora_B`` / ``lora_up`` [out, r]), kohya's ``alpha``, DoRA's magnitudes (refused), or a whole
``weight`` / ``bias`` (PEFT's ``modules_to_save``).
"""

from __future__ import annotations

import re
from typing import Iterable

HF_NAMES = {"attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj", "attn.v_proj": "self_attn.v_proj",
            "attn.output_proj": "self_attn.o_proj", "mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.down_proj",
            "mlp.w3": "mlp.up_proj"}
_BLOCK_LAYER = re.compile(r"^((?:backbone|decoder)\.layers\.\d+\.)(attn\.\w+|mlp\.w\d)$")
DOTTED_PREFIXES = ("", "base_model.model.", "diffusion_model.", "transformer.")
UNDERSCORE_PREFIXES = ("lora_unet_", "lora_transformer_", "lycoris_", "lora_")

DOWN, UP, ALPHA, DORA, WHOLE = "down", "up", "alpha", "dora", "whole"
PARTS = {
    "lora_A.weight": DOWN, "lora_A.default.weight": DOWN, "lora_down.weight": DOWN, "lora.down.weight": DOWN,
    "lora_A": DOWN,
    "lora_B.weight": UP, "lora_B.default.weight": UP, "lora_up.weight": UP, "lora.up.weight": UP, "lora_B": UP,
    "alpha": ALPHA,
    "dora_scale": DORA, "lora_magnitude_vector": DORA, "lora_magnitude_vector.weight": DORA,
    "lora_magnitude_vector.default.weight": DORA,
    "weight": WHOLE, "bias": WHOLE,
}
_BY_LENGTH = sorted(PARTS, key=len, reverse=True)


def hf_name(layer: str) -> str:
    """The Hugging Face Llama name of a checkpoint layer (the same name where the two agree)."""
    match = _BLOCK_LAYER.match(layer)
    if match and match.group(2) in HF_NAMES:
        return match.group(1) + HF_NAMES[match.group(2)]
    return layer


def spellings(layers: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Every spelling a LoRA file may use for each of ``layers`` (checkpoint names) -> (the layer,
    the name the trainer's model gave it, which PEFT's alpha_pattern matches)."""
    found: dict[str, tuple[str, str]] = {}
    for layer in layers:
        for name in dict.fromkeys((layer, hf_name(layer))):
            for prefix in DOTTED_PREFIXES:
                found[prefix + name] = (layer, name)
            for prefix in UNDERSCORE_PREFIXES:
                found[prefix + name.replace(".", "_")] = (layer, name)
    return found


def split_key(key: str) -> tuple[str, str, str] | None:
    """``key`` as (layer spelling, part kind, part name), or None when it ends in no known part."""
    for part in _BY_LENGTH:
        if key.endswith("." + part) and len(key) > len(part) + 1:
            return key[: -len(part) - 1], PARTS[part], part
    return None
