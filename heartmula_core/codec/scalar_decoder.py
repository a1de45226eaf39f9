"""The convolutional ("scalar") decoder: a 128-channel latent at 25 Hz -> one audio channel at 48 kHz.

Its weight-normalised convolutions are plain convolutions here: the checkpoint's (g, v) pairs are
folded into one weight when loading (weight norm is constant at inference). The decoder first snaps
the latent to the 1/9 grid the codec was trained on. Attribute names follow the checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PReLU(nn.Module):
    """Single-parameter PReLU (kept local so any ``operations`` namespace works)."""

    casts_own_weights = True  # moves its own weights to the activations' device per call (partial loads)

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.weight.to(x.device, x.dtype))


def conv1d(operations, n_in: int, n_out: int, kernel: int, dilation: int = 1, causal: bool = False,
           weight_norm: bool = True):
    """A Conv1d whose forward (via ``run_conv``) keeps the time length (left padding when causal).

    ``weight_norm`` marks convolutions stored as (g, v) pairs in the checkpoint.
    """
    pad = 0 if causal else (kernel * dilation - dilation) // 2
    conv = operations.Conv1d(n_in, n_out, kernel, dilation=dilation, padding=pad)
    conv.causal_left_pad = dilation * (kernel - 1) if causal else 0
    conv.stored_weight_normed = weight_norm
    return conv


def run_conv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if conv.causal_left_pad:
        x = F.pad(x, (conv.causal_left_pad, 0))
    return conv(x)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int, kernel: int, causal: bool, operations=nn):
        super().__init__()
        self.conv1 = conv1d(operations, channels, channels, kernel, dilation, causal)
        self.conv2 = conv1d(operations, channels, channels, 1, 1, causal)
        self.activation1 = PReLU()
        self.activation2 = PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation1(run_conv(self.conv1, x))
        return x + self.activation2(run_conv(self.conv2, y))


class _Upsample(nn.Module):
    def __init__(self, n_in: int, n_out: int, stride: int, kernel: int, causal: bool, operations=nn):
        super().__init__()
        pad = 0 if causal else (kernel - stride) // 2
        self.layer = operations.ConvTranspose1d(n_in, n_out, kernel, stride=stride, padding=pad)
        self.layer.stored_weight_normed = True
        self.trim = stride if causal else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer(x)
        return x[:, :, : -self.trim] if self.trim else x


class DecoderBlock(nn.Module):
    """Transposed-conv upsampling, then five dilated residual units (dilations 1, 3, 5, 7, 9)."""

    def __init__(self, n_in: int, n_out: int, stride: int, up_kernel: int, res_kernel: int, causal: bool, operations=nn):
        super().__init__()
        self.up_conv = _Upsample(n_in, n_out, stride, up_kernel, causal, operations)
        self.convs = nn.ModuleList(ResidualUnit(n_out, d, res_kernel, causal, operations) for d in (1, 3, 5, 7, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up_conv(x)
        for unit in self.convs:
            x = unit(x)
        return x


class RepeatThenConv(nn.Module):
    """Repeat every time step ``repeats`` times, then conv + PReLU (the final 2x upsampling)."""

    def __init__(self, channels: int, repeats: int, kernel: int, causal: bool, operations=nn):
        super().__init__()
        self.repeats = repeats
        self.conv = conv1d(operations, channels, channels, kernel, 1, causal, weight_norm=False)
        self.activation = PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.repeat_interleave(self.repeats, dim=2)
        return self.activation(run_conv(self.conv, x))


class ScalarDecoder(nn.Module):
    """Holds ``decoder`` (a ModuleList, as in the checkpoint) and runs it."""

    def __init__(self, config, operations=nn):
        super().__init__()
        c = config
        n_up = len(c.upsample_factors)
        width = lambda i: c.init_channel * 2 ** (n_up - i)  # noqa: E731
        layers: list[nn.Module] = [conv1d(operations, c.latent_hidden_dim, width(0), c.delay_kernel_size, 1, False)]
        for i, (factor, kernel) in enumerate(zip(c.upsample_factors, c.upsample_kernel_sizes)):
            layers.append(DecoderBlock(width(i), width(i + 1), factor, kernel, c.res_kernel_size, c.causal, operations))
        if c.num_samples > 1:
            layers.append(RepeatThenConv(c.init_channel, c.num_samples, c.default_kernel_size, c.causal, operations))
        layers.append(conv1d(operations, c.init_channel, c.num_bands, c.default_kernel_size, 1, c.causal))
        self.decoder = nn.ModuleList(layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [N, latent_hidden_dim, T] -> audio [N, num_bands, T * samples_per_frame]."""
        x = torch.round(9 * latent) / 9
        for layer in self.decoder:
            x = run_conv(layer, x) if hasattr(layer, "causal_left_pad") else layer(x)
        return x
