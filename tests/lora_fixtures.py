"""LoRAs for the tests, made the way trainers make them.

- ``peft_lora``: PEFT itself (``get_peft_model`` + ``save_pretrained``) over a Hugging Face-named twin
  of the tiny LM, as SimpleTuner's ``heartmula`` family does; ``peft_merged`` merges such LoRAs into
  a checkpoint with PEFT's own ``merge_and_unload``, the reference the pack must reproduce.
- ``hand_lora``: the kohya / ComfyUI layouts written by hand, over either name set.

The twin's names come from the issue's table (issue 22), not from the pack's code, so a wrong name
mapping in the pack cannot agree with itself here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lm_fixtures import TINY_CKPT, TINY_LM

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TWIN_NAMES = {"attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj", "attn.v_proj": "self_attn.v_proj",
              "attn.output_proj": "self_attn.o_proj", "mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.down_proj",
              "mlp.w3": "mlp.up_proj"}
_LAYER = re.compile(r"^((?:backbone|decoder)\.layers\.\d+\.)(attn\.\w+|mlp\.w\d)\.weight$")


def peft():
    return pytest.importorskip("peft", reason="PEFT is a test dependency (pyproject [test]); scripts/setup-dev "
                                              "installs it")


def twin_name(key: str) -> str | None:
    """The twin's name of a checkpoint key (``backbone.layers.0.attn.output_proj.weight`` ->
    ``backbone.layers.0.self_attn.o_proj.weight``); None for keys outside the blocks' projections."""
    m = _LAYER.match(key)
    return f"{m.group(1)}{TWIN_NAMES[m.group(2)]}.weight" if m else None


class Twin(nn.Module):
    """The tiny LM's block projections under Hugging Face Llama names, plus the LM's other Linears
    under the checkpoint's names (what PEFT sees when a trainer re-states HeartMuLa as Llama)."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        for key, value in state.items():
            name = twin_name(key) or key
            if value.dim() != 2 or not (twin_name(key) or key in ("codebook0_head.weight", "projection.weight")):
                continue
            *path, leaf = name[: -len(".weight")].split(".")
            owner = self
            for part in path:
                if not hasattr(owner, part):
                    owner.add_module(part, nn.Module())
                owner = getattr(owner, part)
            layer = nn.Linear(value.shape[1], value.shape[0], bias=False)
            layer.weight.data.copy_(value)
            owner.add_module(leaf, layer)

    def forward(self, x):
        return x


def checkpoint_state(folder: Path = TINY_LM) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def peft_lora(folder: Path, seed: int, r: int = 4, alpha: float = 12, targets=TARGETS, **config) -> Path:
    """A PEFT LoRA of the tiny LM in ``folder`` (adapter_model.safetensors + adapter_config.json), with
    random A and B (an untrained LoRA is zero), as ``save_pretrained`` writes it."""
    lib = peft()
    torch.manual_seed(seed)
    model = lib.get_peft_model(Twin(checkpoint_state()), lib.LoraConfig(
        r=r, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=False, **config))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.5)  # a strong but not overwhelming change of the tiny LM
    model.save_pretrained(str(folder))
    return folder


def peft_merged(out: Path, adapters: list[tuple[Path, float]]) -> Path:
    """The tiny LM folder copied to ``out`` with ``adapters`` ((PEFT folder, strength), ...) merged
    by PEFT's ``merge_and_unload``, one after the other; strength through PEFT's ``set_scale``."""
    lib = peft()
    state = checkpoint_state()
    model: nn.Module = Twin(state)
    for folder, strength in adapters:
        model = lib.PeftModel.from_pretrained(model, str(folder))
        for module in model.modules():
            if isinstance(module, lib.tuners.lora.LoraLayer):
                module.set_scale("default", strength)
        model = model.merge_and_unload()
    merged = {name: p.detach().clone() for name, p in model.state_dict().items()}
    for key in state:
        name = twin_name(key) or key
        if name in merged:
            state[key] = merged[name]
    shutil.copytree(TINY_LM, out)
    save_file(state, str(out / "model.safetensors"))
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(TINY_CKPT / name, out / name)
    return out


def hand_lora(path: Path, layout: str = "kohya", names: str = "checkpoint", rank: int = 3, alpha: float | None = 6.0,
              seed: int = 0, layers=None) -> Path:
    """A LoRA file in ``layout`` ("kohya": ``lora_unet_<underscored>.lora_up/lora_down/.alpha``; "comfy":
    ``<dotted>.lora_up.weight``; "ab": ``<dotted>.lora_B/lora_A.weight`` + ``.alpha``) over the
    checkpoint's or the Hugging Face (``names="hf"``) names, for every block projection."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for key, value in checkpoint_state().items():
        if twin_name(key) is None or (layers is not None and key not in layers):
            continue
        name = (twin_name(key) if names == "hf" else key)[: -len(".weight")]
        up, down = torch.randn(value.shape[0], rank, generator=g) * 0.3, torch.randn(rank, value.shape[1], generator=g)
        if layout == "kohya":
            prefix, u, d = "lora_unet_" + name.replace(".", "_"), "lora_up.weight", "lora_down.weight"
        else:
            prefix, u, d = name, *(("lora_up.weight", "lora_down.weight") if layout == "comfy" else
                                   ("lora_B.weight", "lora_A.weight"))
        tensors[f"{prefix}.{u}"], tensors[f"{prefix}.{d}"] = up, down
        if alpha is not None:
            tensors[f"{prefix}.alpha"] = torch.tensor(alpha)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def edit_config(folder: Path, **fields) -> None:
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config.update(fields)
    path.write_text(json.dumps(config))


EXAMPLE_LORA = "heartmula_lora.safetensors"  # the name example_workflows/text_to_song_with_lora.json picks


def install_example_lora(models_dir: Path) -> Path:
    """The example workflow's LoRA in ``models_dir``/loras: a PEFT-named LoRA of the tiny LM, written
    without PEFT (the real-host harness needs no test dependency)."""
    tensors = {}
    g = torch.Generator().manual_seed(7)
    for key, value in checkpoint_state().items():
        if twin_name(key):
            prefix = "base_model.model." + twin_name(key)[: -len(".weight")]
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(2, value.shape[1], generator=g)
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(value.shape[0], 2, generator=g) * 0.2
    path = models_dir / "loras" / EXAMPLE_LORA
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
