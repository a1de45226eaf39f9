"""HeartCodec hyper-parameters, read from a checkpoint folder's config.json.

Missing fields take the defaults of the released model, so a trimmed config.json still describes
the real codec; unknown fields (transformers bookkeeping, training-only settings) are kept aside.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoints.folders import read_json_object
from ..codes import CODEBOOKS, SAMPLE_RATE
from ..errors import CheckpointError


@dataclass(frozen=True)
class CodecConfig:
    # residual VQ (decoding needs the sizes only; decay etc. are training settings)
    dim: int = 512
    codebook_size: int = 8192
    codebook_dim: int = 32
    num_quantizers: int = CODEBOOKS
    decay: float = 0.9
    commitment_weight: float = 1.0
    threshold_ema_dead_code: int = 2
    use_cosine_sim: bool = False
    # flow-matching transformer
    attention_head_dim: int = 64
    in_channels: int = 1024
    norm_type: str = "ada_norm_single"
    num_attention_heads: int = 24
    num_layers: int = 24
    num_layers_2: int = 6
    out_channels: int = 256
    # scalar (convolutional) decoder
    num_bands: int = 1
    sample_rate: int = SAMPLE_RATE
    causal: bool = True
    num_samples: int = 2
    downsample_factors: tuple[int, ...] = (3, 4, 4, 4, 5)
    downsample_kernel_sizes: tuple[int, ...] = (6, 8, 8, 8, 10)
    upsample_factors: tuple[int, ...] = (5, 4, 4, 4, 3)
    upsample_kernel_sizes: tuple[int, ...] = (10, 8, 8, 8, 6)
    latent_hidden_dim: int = 128
    default_kernel_size: int = 7
    delay_kernel_size: int = 5
    init_channel: int = 64
    res_kernel_size: int = 7
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def samples_per_latent_frame(self) -> int:
        """Audio samples one 25 Hz latent frame becomes (upsampling product x num_samples)."""
        n = self.num_samples
        for f in self.upsample_factors:
            n *= f
        return n

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "CodecConfig":
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values, extra = {}, {}
        for key, value in raw.items():
            if key not in known:
                extra[key] = value
                continue
            if isinstance(value, list):
                value = tuple(value)
            values[key] = value
        cfg = cls(**values, extra=extra)
        cfg._validate(source)
        return cfg

    @classmethod
    def from_folder(cls, folder: str | Path) -> "CodecConfig":
        path = Path(folder) / "config.json"
        fix = "A HeartCodec folder holds config.json next to its weights; re-download the folder."
        return cls.from_dict(read_json_object(path, fix), str(path))

    def _validate(self, source: str) -> None:
        def bad(field_name: str, why: str) -> CheckpointError:
            return CheckpointError(f"{source}: field '{field_name}' {why}.")

        for name in ("dim", "codebook_size", "codebook_dim", "num_quantizers", "attention_head_dim",
                     "num_attention_heads", "in_channels", "out_channels", "init_channel",
                     "latent_hidden_dim", "num_samples", "num_bands"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise bad(name, f"must be a positive integer, got {value!r}")
        if self.norm_type != "ada_norm_single":
            raise bad("norm_type", f"is {self.norm_type!r}; only 'ada_norm_single' (the released codec) is supported")
        if self.out_channels != 2 * self.latent_hidden_dim:
            raise bad("out_channels", f"({self.out_channels}) must be twice latent_hidden_dim ({self.latent_hidden_dim}): each latent frame holds both stereo channels")
        if self.in_channels != 2 * self.out_channels + self.dim:
            raise bad("in_channels", f"({self.in_channels}) must equal 2 x out_channels + dim = {2 * self.out_channels + self.dim}")
        if self.attention_head_dim % 2:
            raise bad("attention_head_dim", "must be even (rotary embedding)")
        if len(self.upsample_factors) != len(self.upsample_kernel_sizes):
            raise bad("upsample_kernel_sizes", "must have one entry per upsample factor")
        for f, k in zip(self.upsample_factors, self.upsample_kernel_sizes):
            if self.causal and k != 2 * f:
                raise bad("upsample_kernel_sizes", f"must be twice each upsample factor in a causal codec (got {k} for {f})")
