"""PEFT's ``adapter_config.json``: the fields that change what a LoRA's tensors mean.

A PEFT LoRA layer adds ``lora_B @ lora_A x scale`` to its weight, scale = ``lora_alpha / r`` (or
``lora_alpha / sqrt(r)`` with ``use_rslora``; ``alpha_pattern`` may give a layer its own alpha).
The rank is read from the tensors themselves, so only alpha comes from here. Fields that make the
tensors mean something else (DoRA's magnitudes, a transposed ``fan_in_fan_out`` layer, a bias on
lora_B, another PEFT method) are refused: applying such a file as a plain LoRA would quietly give
another model.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import LoraError


MAX_CONFIG_BYTES = 1 << 20  # PEFT's adapter_config.json is about 1 KB
REFUSED = {  # PEFT fields whose tensors would mean something else when merged as a plain LoRA
    "fan_in_fan_out": "transposed layers", "lora_bias": "a bias on lora_B", "layer_replication": "replicated layers",
    "use_qalora": "QALoRA's pooled inputs", "alora_invocation_tokens": "a LoRA active only after given tokens",
    "target_parameters": "LoRA on bare parameters", "trainable_token_indices": "trained token embeddings",
}


@dataclass(frozen=True)
class AdapterConfig:
    path: Path
    lora_alpha: float | None  # None: not given (alpha = rank)
    use_rslora: bool
    alpha_pattern: dict  # module name pattern -> alpha (PEFT's per-layer override)
    modules_to_save: tuple[str, ...]  # whole modules the file replaces

    def alpha(self, module: str, rank: int) -> float | None:
        """Layer ``module``'s alpha (its name as the trainer's model named it) in the convention of
        kohya's ``.alpha`` keys and ComfyUI (scale = alpha / rank), or None when the config gives none.
        Patterns match as PEFT matches them: the whole name or a dotted tail."""
        alpha = self.lora_alpha
        for pattern, value in self.alpha_pattern.items():
            if re.match(rf"(.*\.)?({pattern})$", module):
                alpha = value
                break
        if alpha is None or not self.use_rslora:
            return alpha
        return alpha * rank / math.sqrt(rank)  # rsLoRA: scale alpha / sqrt(rank)


def _number(value, field: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise LoraError(f"{path}: {field} must be a finite number, got {value!r}. Fix the file or remove it (then "
                        "alpha = rank).")
    return float(value)


def _flag(config: dict, field: str, path: Path) -> bool:
    """A true/false field (absent or null: false); the string "false" is not false, so it is refused."""
    value = config.get(field)
    if value is not None and not isinstance(value, bool):
        raise LoraError(f"{path}: {field} must be true or false, got {json.dumps(value)[:40]}. Fix the file.")
    return bool(value)


def _refuse(config: dict, path: Path) -> None:
    """One error for fields that make the tensors mean something other than a plain LoRA."""
    peft_type = config.get("peft_type", "LORA")
    if str(peft_type).upper() != "LORA":
        raise LoraError(f"{path}: peft_type is {peft_type!r}; only LoRA adapters (peft_type LORA) can be applied.")
    if _flag(config, "use_dora", path):
        raise LoraError(f"{path}: use_dora is true. DoRA adapters rescale each weight by learned magnitudes, "
                        "which a plain LoRA merge cannot do; they are not supported. Train a LoRA without DoRA.")
    for field, why in REFUSED.items():
        if config.get(field):
            raise LoraError(f"{path}: {field} is set ({why}), which a plain LoRA merge cannot reproduce; this "
                            "adapter is not supported. Train a plain LoRA.")


def read_adapter_config(path: Path) -> AdapterConfig | None:
    """The config at ``path`` (None when there is none), checked; anything but a small regular file
    there is refused unread (a folder or pipe, or gigabytes: PEFT writes about 1 KB)."""
    if not os.path.lexists(path):
        return None
    if not path.is_file():
        raise LoraError(f"{path} is not a file (a folder, pipe or broken link), so it is not PEFT's adapter config. "
                        "Remove it, or put the trainer's adapter_config.json there.")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise LoraError(f"{path} is {path.stat().st_size / 1e6:.1f} MB; PEFT's adapter config is a few KB, so this is "
                        "not one. Fix it, or remove it (then alpha = rank).")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise LoraError(f"{path} is not valid JSON ({why}). Fix it, or remove it (then alpha = rank).") from None
    if not isinstance(config, dict):
        raise LoraError(f"{path} must hold a JSON object (PEFT's adapter config). Fix it or remove it.")
    _refuse(config, path)
    alpha = config.get("lora_alpha")
    pattern = config.get("alpha_pattern") or {}
    if not isinstance(pattern, dict):
        raise LoraError(f"{path}: alpha_pattern must be an object (module name -> alpha), got {pattern!r}.")
    for key in pattern:
        try:
            re.compile(str(key))
        except re.error:
            raise LoraError(f"{path}: alpha_pattern key {key!r} is not a valid pattern. Fix the file.") from None
    saved = config.get("modules_to_save") or ()
    if isinstance(saved, str):
        saved = (saved,)
    if not isinstance(saved, (list, tuple)) or not all(isinstance(m, str) for m in saved):
        raise LoraError(f"{path}: modules_to_save must be a list of module names, got {saved!r}.")
    return AdapterConfig(path, None if alpha is None else _number(alpha, "lora_alpha", path),
                         _flag(config, "use_rslora", path),
                         {str(k): _number(v, f"alpha_pattern[{k!r}]", path) for k, v in pattern.items()},
                         tuple(saved))
