"""A HeartMuLa LM with random weights built directly on the target device (no checkpoint needed)."""

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


__all__ = ["random_lm", "random_prompt", "no_early_end", "GenConfig"]
