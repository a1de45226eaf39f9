"""A LoRA checked against the LM it is for, before any weight of the LM loads: the architecture comes
from the config (a torch.nn build on the meta device, no memory), so a LoRA of another model, of
another HeartMuLa size or of a kind the pack does not apply is one error within a second, never a
partial LoRA discovered after minutes of loading.

The result (``Adapter``) holds, per LM weight key, what every front door applies: the command line
merges it into the loaded weights (merge.py), the node hands it to ComfyUI's patcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..errors import LoraError
from ..lm.config import HeartMuLaConfig
from ..lm.load import build_lm
from ..quant.storage import plan_for
from ..quant.source import QuantizingSource
from ..weights import TensorSource
from .files import LoraFile, read_lora
from .names import ALPHA, DORA, DOWN, UP, WHOLE, spellings, split_key

SHOWN = 4  # example keys named in an error


@dataclass(frozen=True)
class LowRank:
    """One layer's update: ``up @ down x alpha / rank`` (kohya's and ComfyUI's convention)."""

    up: torch.Tensor  # [out, rank]
    down: torch.Tensor  # [rank, in]
    alpha: float

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])


@dataclass(frozen=True)
class Adapter:
    """A LoRA that fits the LM: ``low_rank`` per weight key (``backbone.layers.0.attn.q_proj.weight``),
    and for the modules it replaces whole (PEFT's modules_to_save) ``diff`` = saved - the checkpoint's
    weight, float32 (at strength s a module becomes base + s x diff)."""

    path: Path
    low_rank: dict[str, LowRank]
    diff: dict[str, torch.Tensor]

    @property
    def keys(self) -> list[str]:
        return list(self.low_rank) + list(self.diff)

    def nbytes(self) -> int:
        tensors = [t for f in self.low_rank.values() for t in (f.up, f.down)] + list(self.diff.values())
        return sum(t.numel() * t.element_size() for t in tensors)


def architecture(config: HeartMuLaConfig) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """(weight key -> shape, the Linear layers' names) of the LM ``config`` describes, from a meta build."""
    model = build_lm(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}
    return shapes, {name for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def _examples(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _group(lora: LoraFile, names: dict[str, tuple[str, str]]) -> tuple[dict, list[str]]:
    """{layer: {kind: (key, trainer's name)}} for every key naming a layer of the LM, and the keys that name none."""
    groups: dict[str, dict[str, tuple[str, str]]] = {}
    unmatched = []
    for key in lora.tensors:
        split = split_key(key)
        spelled = names.get(split[0]) if split else None
        if spelled is None:
            unmatched.append(key)
            continue
        layer, trainer_name = spelled
        kind = split[1] if split[1] != WHOLE else f"{WHOLE}.{split[2]}"
        groups.setdefault(layer, {})[kind] = (key, trainer_name)
    return groups, unmatched


def _alpha(lora: LoraFile, parts: dict, rank: int) -> float:
    """A layer's alpha: its own ``.alpha`` key, else adapter_config.json's, else the rank (scale 1)."""
    if ALPHA in parts:
        value = lora.tensors[parts[ALPHA][0]]
        if value.numel() != 1:
            raise LoraError(f"LoRA {lora.path}: {parts[ALPHA][0]} must hold one number, it holds {value.numel()}.")
        return float(value.reshape(()).double())
    configured = lora.config.alpha(parts[DOWN][1], rank) if lora.config else None
    return float(rank) if configured is None else configured


def _low_rank(lora: LoraFile, layer: str, parts: dict, shape: tuple[int, ...], problems: dict) -> LowRank | None:
    if DOWN not in parts or UP not in parts:
        have, lack = (DOWN, "lora_B / lora_up") if DOWN in parts else (UP, "lora_A / lora_down")
        problems["half"].append(f"{parts[have][0]} (no {lack})")
        return None
    up, down = lora.tensors[parts[UP][0]], lora.tensors[parts[DOWN][0]]
    if up.dim() != 2 or down.dim() != 2 or up.shape[1] != down.shape[0] or (up.shape[0], down.shape[1]) != shape:
        problems["shape"].append(f"{layer} (LoRA {list(up.shape)} @ {list(down.shape)}, layer {list(shape)})")
        return None
    return LowRank(up, down, _alpha(lora, parts, int(down.shape[0])))


def fit_adapter(lora: LoraFile, config: HeartMuLaConfig, checkpoint: Sequence[Path] = ()) -> Adapter:
    """``lora`` checked against the LM of ``config``: every key names one of its layers, every layer
    gets both factors of its shape, no DoRA, and every module of modules_to_save exists and is in the
    file. All that is wrong is said in one ``LoraError``. ``checkpoint``: the LM's weight files, read
    only for the modules the LoRA replaces whole (their base weights)."""
    shapes, linear = architecture(config)
    layers = {k.rpartition(".")[0] for k in shapes if k.endswith((".weight", ".bias"))}
    groups, unmatched = _group(lora, spellings(layers))
    dora = [p[DORA][0] for p in groups.values() if DORA in p]
    if dora:
        raise LoraError(f"LoRA {lora.path} is a DoRA ({_examples(dora)}): DoRA rescales each weight by learned "
                        "magnitudes, which a plain LoRA merge cannot do; it is not supported. Use a plain LoRA.")
    problems: dict[str, list[str]] = {"half": [], "shape": [], "whole": []}
    low_rank, whole = {}, {}
    saved = _saved_modules(lora, layers)
    for layer, parts in groups.items():
        if DOWN in parts or UP in parts:
            if layer not in linear:
                unmatched += [key for key, _ in parts.values()]
            elif (factors := _low_rank(lora, layer, parts, shapes[layer + ".weight"], problems)) is not None:
                low_rank[layer + ".weight"] = factors
        for kind, (key, _name) in parts.items():
            if kind.startswith(WHOLE) and (DOWN in parts or UP in parts):
                problems["whole"].append(key)  # a layer is either low-rank or replaced, never both
            elif kind.startswith(WHOLE):
                _whole(lora, layer, kind, key, shapes, saved, whole, problems)
    missing = [f"{m}.{n}" for m in saved for n in ("weight", "bias") if f"{m}.{n}" in shapes and f"{m}.{n}" not in whole]
    _raise_problems(lora, config, unmatched, problems, missing, len(groups))
    return Adapter(lora.path, low_rank, _diffs(lora, whole, checkpoint))


def _diffs(lora: LoraFile, whole: dict[str, torch.Tensor], checkpoint: Sequence[Path]) -> dict[str, torch.Tensor]:
    """saved - base, float32, for each replaced tensor (base: the checkpoint's, dequantized if fp8)."""
    if not whole:
        return {}
    if not checkpoint:
        raise LoraError(f"LoRA {lora.path} replaces whole modules ({_examples(list(whole))}), which needs the LM's "
                        "checkpoint files to read their base weights.")
    source = QuantizingSource(TensorSource.from_files(checkpoint), plan_for({}, None))
    return {key: saved.float() - source.load(key, torch.float32) for key, saved in whole.items()}


def _saved_modules(lora: LoraFile, layers: set[str]) -> set[str]:
    """The LM modules the config's modules_to_save names (checkpoint names); one it lacks is an error."""
    if lora.config is None or not lora.config.modules_to_save:
        return set()
    names = spellings(layers)
    unknown = [m for m in lora.config.modules_to_save if m not in names]
    if unknown:
        raise LoraError(f"{lora.config.path}: modules_to_save names {_examples(unknown)}, which HeartMuLa does not "
                        "have: this adapter was trained on another model (or the trainer names those modules "
                        "otherwise). Remove them from modules_to_save only if they were never trained.")
    return {names[m][0] for m in lora.config.modules_to_save}


def _whole(lora, layer, kind, key, shapes, saved, whole, problems) -> None:
    target = f"{layer}.{kind.split('.', 1)[1]}"
    if layer not in saved:
        problems["whole"].append(key)
    elif tuple(lora.tensors[key].shape) != shapes.get(target):
        problems["shape"].append(f"{target} (LoRA {list(lora.tensors[key].shape)}, layer {list(shapes.get(target, ()))})")
    else:
        whole[target] = lora.tensors[key]


def _raise_problems(lora: LoraFile, config: HeartMuLaConfig, unmatched: list[str], problems: dict,
                    missing: list[str], matched: int) -> None:
    said = []
    if unmatched:
        said.append(f"{len(unmatched)} of its {len(lora.tensors)} keys name no layer of this LM "
                    f"({_examples(sorted(unmatched))})")
    if problems["shape"]:
        size = f"{config.backbone.num_layers} backbone layers of width {config.backbone.embed_dim}"
        said.append(f"{len(problems['shape'])} layers have another shape ({_examples(problems['shape'])}); "
                    f"it was trained for another HeartMuLa size (this LM has {size})")
    if problems["half"]:
        said.append(f"{len(problems['half'])} layers have only one of their two factors ({_examples(problems['half'])})")
    if problems["whole"]:
        said.append(f"{len(problems['whole'])} keys are whole weights, not LoRA factors "
                    f"({_examples(problems['whole'])}): a model checkpoint or a full fine-tune, not a LoRA")
    if missing:
        said.append(f"modules_to_save lists modules whose weights the file lacks ({_examples(missing)})")
    if not said and not matched:
        said.append("it holds no LoRA layers")
    if said:
        raise LoraError(f"LoRA {lora.path} cannot be applied to this LM as a whole (nothing was applied): "
                        + "; ".join(said) + ". Use a LoRA trained for this HeartMuLa model and size.")


def load_adapter(path: str | Path, config: HeartMuLaConfig, checkpoint: Sequence[Path] = ()) -> Adapter:
    """Read the LoRA at ``path`` (a file, or a folder PEFT saved) and check it against the LM of
    ``config`` (whose weight files are ``checkpoint``)."""
    return fit_adapter(read_lora(path), config, checkpoint)
