"""A HeartMuLa LM with random weights built directly on the target device (no checkpoint needed),
or written as a checkpoint folder the real loaders read (``write_lm``)."""

import dataclasses
import json
import shutil
from pathlib import Path

import torch

from heartmula_core.lm.load import build_lm
from heartmula_core.lm.config import GenConfig, HeartMuLaConfig
from heartmula_core.lm.prompt import Prompt


def random_lm(config: HeartMuLaConfig, device, dtype, seed: int = 0):
    model = build_lm(config, device="meta")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for name, t in list(model.state_dict(keep_vars=True).items()):
        fan_in = t.shape[-1] if t.dim() > 1 else 1
        value = torch.randn(t.shape, generator=gen) * (0.5 / fan_in ** 0.5 if t.dim() > 1 else 1.0)
        if name.endswith(".scale"):
            value = torch.ones(t.shape)
        owner, _, leaf = name.rpartition(".")
        mod = model.get_submodule(owner) if owner else model
        mod._parameters[leaf] = torch.nn.Parameter(value.to(device=device, dtype=dtype), requires_grad=False)
    return model.eval()


TINY_CKPT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiny" / "ckpt"


def write_lm(config: HeartMuLaConfig, folder: Path) -> Path:
    """An LM folder (config.json, float32 model.safetensors, the tiny checkpoint's tokenizer and
    gen_config) holding ``random_lm(config)``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    blob = {"model_type": "heartmula", "backbone": dataclasses.asdict(config.backbone),
            "decoder": dataclasses.asdict(config.decoder), "text_vocab_size": config.text_vocab_size,
            "audio_vocab_size": config.audio_vocab_size, "audio_num_codebooks": config.audio_num_codebooks,
            "muq_dim": config.muq_dim}
    (folder / "config.json").write_text(json.dumps(blob))
    save_file({k: v.contiguous() for k, v in random_lm(config, "cpu", torch.float32).state_dict().items()},
              str(folder / "model.safetensors"))
    for name in ("tokenizer.json", "gen_config.json"):
        shutil.copy(TINY_CKPT / name, folder / name)
    return folder


def random_prompt(config: HeartMuLaConfig, length: int = 120, seed: int = 0) -> Prompt:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(length, 9, dtype=torch.long)
    tokens[:, -1] = torch.randint(2, config.text_vocab_size, (length,), generator=gen)
    mask = torch.zeros(length, 9, dtype=torch.bool)
    mask[:, -1] = True
    return Prompt(tokens, mask, muq_index=20, tags="<tag>random</tag>", lyrics="random")


def no_early_end(config: HeartMuLaConfig) -> dict:
    """``generate`` arguments that run every frame asked for: a valid end-of-audio id (the last of the
    vocabulary) that the loop never checks for, so a random model's EOS cannot end the run early."""
    return {"eos_id": config.audio_vocab_size - 1, "eos_check_every": 1 << 30}


__all__ = ["random_lm", "random_prompt", "no_early_end", "write_lm", "GenConfig", "TINY_CKPT"]
