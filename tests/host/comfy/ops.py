"""Stand-in for ``comfy.ops``: layer namespaces whose layers skip weight initialisation and, when
``comfy_cast_weights`` is set (always in ``manual_cast``; per layer when ComfyUI partially loads a
model), cast their weights to the input's device and dtype on every call.

With DynamicVRAM on (``comfy.memory_management.aimdo_enabled``), Linear and Embedding are built as
ComfyUI builds them then: Linear with ``weight = bias = None``, Embedding with a meta weight, and
they get their tensors only through ``_load_from_state_dict`` (``load_state_dict``). As in ComfyUI,
such a Linear loaded without its weight key makes a zero placeholder of shape (in, out) and reports
the key missing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import memory_management


def _weightless() -> bool:
    """ComfyUI 0.33's rule (kept in 0.38): any OS; 0.28 also required Windows."""
    flag = memory_management.aimdo_enabled
    return bool(flag() if callable(flag) else flag)


def _take_weights(module, state_dict, prefix, local_metadata, missing_keys, unexpected_keys,
                  weight_shape, bias_shape=None):
    """What a weightless layer does with its part of a state dict (ComfyUI's lazy loader)."""
    assign = local_metadata.get("assign_to_params_buffers", False)
    for key, value in state_dict.items():
        name = key[len(prefix):]
        if name == "weight" or (bias_shape is not None and name == "bias" and value is not None):
            setattr(module, name, torch.nn.Parameter(value if assign else value.clone(), requires_grad=False))
        else:
            unexpected_keys.append(key)
    if module.weight is None:
        module.weight = torch.nn.Parameter(torch.zeros(weight_shape), requires_grad=False)
        missing_keys.append(prefix + "weight")
    if bias_shape is not None and module.bias is None and getattr(module, "comfy_need_lazy_init_bias", False):
        module.bias = torch.nn.Parameter(torch.zeros(bias_shape), requires_grad=False)
        missing_keys.append(prefix + "bias")


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


class _WeightlessLinear(_castable(torch.nn.Linear, lambda m, x, w, b: F.linear(x, w, b))):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        if not _weightless() or type(self)._load_from_state_dict is not _WeightlessLinear._load_from_state_dict:
            super().__init__(in_features, out_features, bias, device, dtype)
            return
        torch.nn.Module.__init__(self)
        self.in_features, self.out_features = in_features, out_features
        self.weight = None
        self.bias = None
        self.comfy_need_lazy_init_bias = bias
        self.weight_comfy_model_dtype = self.bias_comfy_model_dtype = dtype

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        if not _weightless():
            return super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                                 unexpected_keys, error_msgs)
        _take_weights(self, state_dict, prefix, local_metadata, missing_keys, unexpected_keys,
                      weight_shape=(self.in_features, self.out_features), bias_shape=(self.out_features,))


class _WeightlessEmbedding(_castable(torch.nn.Embedding, _embedding_call)):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        if not _weightless() or type(self)._load_from_state_dict is not _WeightlessEmbedding._load_from_state_dict:
            super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, scale_grad_by_freq,
                             sparse, _weight, _freeze, device, dtype)
            return
        torch.nn.Module.__init__(self)
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.weight = torch.nn.Parameter(torch.empty((num_embeddings, embedding_dim), device="meta",
                                                     dtype=dtype or torch.get_default_dtype()), requires_grad=False)
        self.bias = None
        self.weight_comfy_model_dtype = dtype

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        if not _weightless():
            return super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                                 unexpected_keys, error_msgs)
        _take_weights(self, state_dict, prefix, local_metadata, missing_keys, unexpected_keys,
                      weight_shape=(self.num_embeddings, self.embedding_dim))


_WeightlessLinear.__name__ = _WeightlessLinear.__qualname__ = "Linear"
_WeightlessEmbedding.__name__ = _WeightlessEmbedding.__qualname__ = "Embedding"


class disable_weight_init:
    Linear = _WeightlessLinear
    Conv1d = _castable(torch.nn.Conv1d, lambda m, x, w, b: m._conv_forward(x, w, b))
    Conv2d = _castable(torch.nn.Conv2d, lambda m, x, w, b: m._conv_forward(x, w, b))
    ConvTranspose1d = _castable(
        torch.nn.ConvTranspose1d,
        lambda m, x, w, b: F.conv_transpose1d(x, w, b, m.stride, m.padding, m.output_padding, m.groups, m.dilation))
    GroupNorm = _castable(torch.nn.GroupNorm, lambda m, x, w, b: F.group_norm(x, m.num_groups, w, b, m.eps))
    LayerNorm = _castable(torch.nn.LayerNorm,
                          lambda m, x, w, b: F.layer_norm(x, m.normalized_shape, w, b, m.eps))
    RMSNorm = _castable(torch.nn.RMSNorm, lambda m, x, w, b: F.rms_norm(x, m.normalized_shape, w, m.eps))
    Embedding = _WeightlessEmbedding


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
