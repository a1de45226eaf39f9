"""Stand-in for ``comfy.ops``: layer namespaces whose layers skip weight initialisation and, when
``comfy_cast_weights`` is set (always in ``manual_cast``; per layer when ComfyUI partially loads a
model), cast their weights to the input's device and dtype on every call."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class CastWeightBiasOp:
    comfy_cast_weights = False
    weight_function = []
    bias_function = []


def _cast(t, like):
    if t is None:
        return None
    dtype = like.dtype if like.is_floating_point() else t.dtype
    return t.to(device=like.device, dtype=dtype)


def _castable(base, call):
    """A subclass of ``base`` that skips init and, when asked, casts its parameters per call."""

    class Op(base, CastWeightBiasOp):
        def reset_parameters(self):
            return None

        def forward(self, input, *args, **kwargs):
            if self.comfy_cast_weights:
                return call(self, input, _cast(self.weight, input), _cast(getattr(self, "bias", None), input))
            return super().forward(input, *args, **kwargs)

    Op.__name__ = Op.__qualname__ = base.__name__
    return Op


def _embedding_call(m, ids, weight, bias):
    weight = m.weight.to(device=ids.device)
    return F.embedding(ids, weight, m.padding_idx, m.max_norm, m.norm_type, m.scale_grad_by_freq, m.sparse)


class disable_weight_init:
    Linear = _castable(torch.nn.Linear, lambda m, x, w, b: F.linear(x, w, b))
    Conv1d = _castable(torch.nn.Conv1d, lambda m, x, w, b: m._conv_forward(x, w, b))
    Conv2d = _castable(torch.nn.Conv2d, lambda m, x, w, b: m._conv_forward(x, w, b))
    ConvTranspose1d = _castable(
        torch.nn.ConvTranspose1d,
        lambda m, x, w, b: F.conv_transpose1d(x, w, b, m.stride, m.padding, m.output_padding, m.groups, m.dilation))
    GroupNorm = _castable(torch.nn.GroupNorm, lambda m, x, w, b: F.group_norm(x, m.num_groups, w, b, m.eps))
    LayerNorm = _castable(torch.nn.LayerNorm,
                          lambda m, x, w, b: F.layer_norm(x, m.normalized_shape, w, b, m.eps))
    RMSNorm = _castable(torch.nn.RMSNorm, lambda m, x, w, b: F.rms_norm(x, m.normalized_shape, w, m.eps))
    Embedding = _castable(torch.nn.Embedding, _embedding_call)


class manual_cast(disable_weight_init):
    class Linear(disable_weight_init.Linear):
        comfy_cast_weights = True

    class Conv1d(disable_weight_init.Conv1d):
        comfy_cast_weights = True

    class Conv2d(disable_weight_init.Conv2d):
        comfy_cast_weights = True

    class ConvTranspose1d(disable_weight_init.ConvTranspose1d):
        comfy_cast_weights = True

    class GroupNorm(disable_weight_init.GroupNorm):
        comfy_cast_weights = True

    class LayerNorm(disable_weight_init.LayerNorm):
        comfy_cast_weights = True

    class RMSNorm(disable_weight_init.RMSNorm):
        comfy_cast_weights = True

    class Embedding(disable_weight_init.Embedding):
        comfy_cast_weights = True
