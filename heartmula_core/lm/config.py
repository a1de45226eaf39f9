"""Configuration of the HeartMuLa LM: a Llama backbone, a small Llama "depth" decoder, and heads.

config.json in a released folder names its transformers by flavor (``llama-3B`` ...). A config may
also carry explicit ``backbone`` / ``decoder`` objects (the argument names of the Llama 3.2 builder the
checkpoints were trained with); those override the flavor's dimensions field by field.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError


@dataclass(frozen=True)
class LlamaConfig:
    num_layers: int
    num_heads: int
    num_kv_heads: int
    embed_dim: int
    intermediate_dim: int
    max_seq_len: int
    rope_base: float = 500_000.0
    scale_factor: float = 32.0
    norm_eps: float = 1e-5
    # Llama-3 frequency scaling constants (fixed in the models HeartMuLa builds on).
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_context: int = 8192

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


def _llama(layers, heads, kv_heads, dim, hidden, max_seq):
    return LlamaConfig(num_layers=layers, num_heads=heads, num_kv_heads=kv_heads, embed_dim=dim,
                       intermediate_dim=hidden, max_seq_len=max_seq)


FLAVORS: dict[str, LlamaConfig] = {
    "llama-3B": _llama(28, 24, 8, 3072, 8192, 8192),
    "llama-300M": _llama(3, 8, 4, 3072, 8192, 2048),
    "llama-7B": _llama(32, 32, 8, 4096, 14336, 8192),
    "llama-400M": _llama(4, 8, 4, 3072, 8192, 2048),
}

_LLAMA_FIELDS = {f.name for f in dataclasses.fields(LlamaConfig)}
_IGNORED_LLAMA_FIELDS = {"attn_dropout", "vocab_size"}


@dataclass(frozen=True)
class HeartMuLaConfig:
    backbone: LlamaConfig = field(default_factory=lambda: FLAVORS["llama-3B"])
    decoder: LlamaConfig = field(default_factory=lambda: FLAVORS["llama-300M"])
    text_vocab_size: int = 128_256
    audio_vocab_size: int = 8197
    audio_num_codebooks: int = 8
    muq_dim: int = 512

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json") -> "HeartMuLaConfig":
        def transformer(part: str, default_flavor: str) -> LlamaConfig:
            flavor = data.get(f"{part}_flavor", default_flavor)
            explicit = data.get(part)
            if explicit is None and flavor not in FLAVORS:
                raise CheckpointError(
                    f"{source}: {part}_flavor '{flavor}' is not a known flavor ({', '.join(FLAVORS)}) "
                    f"and no explicit '{part}' object gives its dimensions. Add a '{part}' object or fix the flavor name."
                )
            base = dataclasses.asdict(FLAVORS.get(flavor, FLAVORS[default_flavor]))
            if explicit:
                unknown = set(explicit) - _LLAMA_FIELDS - _IGNORED_LLAMA_FIELDS
                if unknown:
                    raise CheckpointError(f"{source}: unknown field(s) {sorted(unknown)} in '{part}'.")
                base.update({k: v for k, v in explicit.items() if k in _LLAMA_FIELDS})
            cfg = LlamaConfig(**base)
            if cfg.embed_dim % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
                raise CheckpointError(
                    f"{source}: '{part}' has embed_dim {cfg.embed_dim}, num_heads {cfg.num_heads}, "
                    f"num_kv_heads {cfg.num_kv_heads}; embed_dim must divide by num_heads and num_heads by num_kv_heads."
                )
            return cfg

        defaults = cls()
        return cls(
            backbone=transformer("backbone", "llama-3B"),
            decoder=transformer("decoder", "llama-300M"),
            text_vocab_size=int(data.get("text_vocab_size", defaults.text_vocab_size)),
            audio_vocab_size=int(data.get("audio_vocab_size", defaults.audio_vocab_size)),
            audio_num_codebooks=int(data.get("audio_num_codebooks", defaults.audio_num_codebooks)),
            muq_dim=int(data.get("muq_dim", defaults.muq_dim)),
        )

    @classmethod
    def from_file(cls, path: Path) -> "HeartMuLaConfig":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"Cannot read {path}: {exc}. Re-download the model folder.") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path} must hold a JSON object.")
        return cls.from_dict(data, str(path))


@dataclass(frozen=True)
class GenConfig:
    """Special token ids, read from gen_config.json (defaults are the released model's)."""

    text_bos_id: int = 128000
    text_eos_id: int = 128001
    audio_eos_id: int = 8193
    empty_id: int = 0

    @classmethod
    def from_file(cls, path: Path) -> "GenConfig":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"Cannot read {path}: {exc}. Re-download gen_config.json.") from None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in known})
