"""Which checkpoint keys a HeartCodec folder holds, and which of them decoding ignores.

Used by the loader (ignore rules) and by tests that compare against the released key manifest.
"""

from __future__ import annotations

import re

import torch

from .config import CodecConfig
from .model import build_codec
from .weight_norm import unfold_key

# Training-only state: VQ EMA statistics, the VQ input projection and the audio encoder.
_IGNORED = re.compile(
    r"^flow_matching\.vq_embed\.(layers\.\d+\._codebook\.(embed_avg|cluster_size|initted)|project_in\.(weight|bias))$"
    r"|^scalar_model\.encoder\."
)


def is_ignored_key(key: str) -> bool:
    return bool(_IGNORED.match(key))


def weight_normed_keys(model: torch.nn.Module) -> list[str]:
    """Folded ``<module>.weight`` names whose checkpoint form is a weight-norm (g, v) pair."""
    return [f"{name}.weight" for name, m in model.named_modules() if getattr(m, "stored_weight_normed", False)]


def _ignored_layout(c: CodecConfig, naming: str) -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = {}
    for q in range(c.num_quantizers):
        p = f"flow_matching.vq_embed.layers.{q}._codebook."
        keys[p + "embed_avg"] = (1, c.codebook_size, c.codebook_dim)
        keys[p + "cluster_size"] = (1, c.codebook_size)
        keys[p + "initted"] = ()
    keys["flow_matching.vq_embed.project_in.weight"] = (c.codebook_dim, c.dim)
    keys["flow_matching.vq_embed.project_in.bias"] = (c.codebook_dim,)

    def conv(prefix: str, n_out: int, n_in: int, k: int, normed: bool = True) -> None:
        keys[prefix + ".bias"] = (n_out,)
        if normed:
            g, v = unfold_key(prefix + ".weight", naming)
            keys[g], keys[v] = (n_out, 1, 1), (n_out, n_in, k)
        else:
            keys[prefix + ".weight"] = (n_out, n_in, k)

    enc = "scalar_model.encoder"
    conv(f"{enc}.0", c.init_channel, c.num_bands, c.default_kernel_size)
    i = 1
    if c.num_samples > 1:
        conv(f"{enc}.1.conv", c.init_channel, c.init_channel, c.default_kernel_size, normed=False)
        keys[f"{enc}.1.activation.weight"] = (1,)
        i = 2
    for level, (factor, kernel) in enumerate(zip(c.downsample_factors, c.downsample_kernel_sizes)):
        n_in, n_out = c.init_channel * 2 ** level, c.init_channel * 2 ** (level + 1)
        for u in range(5):
            conv(f"{enc}.{i}.convs.{u}.conv1", n_out // 2, n_in if u == 0 else n_out // 2, c.res_kernel_size)
            conv(f"{enc}.{i}.convs.{u}.conv2", n_out // 2, n_in if u == 0 else n_out // 2, 1)
            keys[f"{enc}.{i}.convs.{u}.activation1.weight"] = (1,)
            keys[f"{enc}.{i}.convs.{u}.activation2.weight"] = (1,)
        conv(f"{enc}.{i}.down_conv.layer", n_out, n_in, kernel)
        keys[f"{enc}.{i}.down_conv.activation.weight"] = (1,)
        i += 1
    conv(f"{enc}.{i}", c.latent_hidden_dim, c.init_channel * 2 ** len(c.downsample_factors), c.default_kernel_size)
    return keys


def checkpoint_layout(config: CodecConfig, naming: str = "parametrizations", include_ignored: bool = True) -> dict[str, tuple[int, ...]]:
    """Every key (and shape) a released-style checkpoint for ``config`` holds, weight norm named
    ``naming`` ('parametrizations' or 'weight_g'). Built on the meta device: costs no memory."""
    model = build_codec(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}
    for key in weight_normed_keys(model):
        weight_shape = shapes.pop(key)
        g, v = unfold_key(key, naming)
        shapes[g] = (weight_shape[0],) + (1,) * (len(weight_shape) - 1)
        shapes[v] = weight_shape
    if include_ignored:
        shapes.update(_ignored_layout(config, naming))
    return shapes
