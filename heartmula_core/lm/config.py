"""Configuration of the HeartMuLa LM: a Llama backbone, a small Llama "depth" decoder, and heads.

config.json in a released folder names its transformers by flavor (``llama-3B`` ...). A config may
also carry explicit ``backbone`` / ``decoder`` objects (the argument names of the Llama 3.2 builder the
checkpoints were trained with); those override the flavor's dimensions field by field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoints.folders import read_json_object
from ..codes import CODEBOOKS
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

# Upper limits: far above any released Llama, low enough that a typo (num_layers 1000000) is refused
# before the model is built instead of filling memory.
_LLAMA_INT_LIMITS = {"num_layers": 1024, "num_heads": 1024, "num_kv_heads": 1024, "embed_dim": 1 << 17,
                     "intermediate_dim": 1 << 19, "max_seq_len": 1 << 22, "original_context": 1 << 22}
_LLAMA_POSITIVE_FLOATS = ("rope_base", "scale_factor", "norm_eps", "low_freq_factor", "high_freq_factor")
_TOP_INT_LIMITS = {"text_vocab_size": 1 << 22, "audio_vocab_size": 1 << 22, "audio_num_codebooks": 64,
                   "muq_dim": 1 << 16}


def _whole(value, limit: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise CheckpointError(f"{where} must be a whole number from 1 to {limit}, got {value!r}.")
    return value


def _check_llama(cfg: LlamaConfig, where: str) -> None:
    """Each field in range, then the relations the layers rely on."""
    for name, limit in _LLAMA_INT_LIMITS.items():
        _whole(getattr(cfg, name), limit, f"{where}.{name}")
    for name in _LLAMA_POSITIVE_FLOATS:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise CheckpointError(f"{where}.{name} must be a positive number, got {value!r}.")
    if cfg.embed_dim % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
        raise CheckpointError(
            f"{where} has embed_dim {cfg.embed_dim}, num_heads {cfg.num_heads}, num_kv_heads "
            f"{cfg.num_kv_heads}; embed_dim must divide by num_heads and num_heads by num_kv_heads."
        )
    if cfg.head_dim % 2:
        raise CheckpointError(f"{where}: embed_dim / num_heads = {cfg.head_dim} must be even (RoPE rotates channel pairs).")
    if cfg.high_freq_factor <= cfg.low_freq_factor:
        raise CheckpointError(f"{where}.high_freq_factor ({cfg.high_freq_factor}) must be above low_freq_factor "
                              f"({cfg.low_freq_factor}).")


@dataclass(frozen=True)
class HeartMuLaConfig:
    backbone: LlamaConfig = field(default_factory=lambda: FLAVORS["llama-3B"])
    decoder: LlamaConfig = field(default_factory=lambda: FLAVORS["llama-300M"])
    text_vocab_size: int = 128_256
    audio_vocab_size: int = 8197
    audio_num_codebooks: int = CODEBOOKS
    muq_dim: int = 512

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json") -> "HeartMuLaConfig":
        """Read and check a config; every problem is a CheckpointError naming ``source`` and the field."""
        def transformer(part: str, default_flavor: str) -> LlamaConfig:
            flavor = data.get(f"{part}_flavor", default_flavor)
            explicit = data.get(part)
            if not isinstance(flavor, str) or not (explicit is None or isinstance(explicit, dict)):
                raise CheckpointError(f"{source}: '{part}_flavor' must be a name and '{part}' an object of "
                                      f"dimensions, got {flavor!r} and {type(explicit).__name__}.")
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
            _check_llama(cfg, f"{source}: '{part}'")
            return cfg

        defaults = cls()
        top = {name: _whole(data.get(name, getattr(defaults, name)), limit, f"{source}: '{name}'")
               for name, limit in _TOP_INT_LIMITS.items()}
        return cls(backbone=transformer("backbone", "llama-3B"), decoder=transformer("decoder", "llama-300M"), **top)

    @classmethod
    def from_file(cls, path: Path) -> "HeartMuLaConfig":
        return cls.from_dict(read_json_object(path, "Re-download the model folder."), str(path))


@dataclass(frozen=True)
class GenConfig:
    """Special token ids, read from gen_config.json (defaults are the released model's)."""

    text_bos_id: int = 128000
    text_eos_id: int = 128001
    audio_eos_id: int = 8193
    empty_id: int = 0

    @classmethod
    def from_file(cls, path: Path, config: HeartMuLaConfig | None = None) -> "GenConfig":
        """Read gen_config.json; with the LM's ``config``, each id must also fit its vocabulary."""
        data = read_json_object(path, "Re-download gen_config.json.")
        known = {f.name for f in dataclasses.fields(cls)}
        gen = cls(**{k: v for k, v in data.items() if k in known})
        gen.check(str(path), config)
        return gen

    def check(self, source: str, config: HeartMuLaConfig | None = None) -> None:
        vocab = {"text_bos_id": "text_vocab_size", "text_eos_id": "text_vocab_size",
                 "audio_eos_id": "audio_vocab_size", "empty_id": None}
        for name, size_field in vocab.items():
            value = getattr(self, name)
            size = getattr(config, size_field) if config is not None and size_field else None
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (size is not None and value >= size):
                limit = f"an id below the LM's {size_field} ({size})" if size is not None else "a whole number >= 0"
                raise CheckpointError(f"{source}: '{name}' must be {limit}, got {value!r}. Use the gen_config.json "
                                      "that ships with this LM.")
