"""Shared building blocks of the model zoo, with PANNs' module names and order.

The order of children inside each block is part of the checkpoint format
(``features.N.M`` indices), so it follows PANNs exactly:

- :class:`ConvBlock`: ``conv1..n`` then ``bn1..n``; conv-BN-ReLU repeated, then
  pooling (CNN14/10 use two 3x3 convs, CNN6 one 5x5).
- :func:`conv_bn_act`: MobileNet stem ``[conv 3x3, pool, BN, act]``.
- :func:`depthwise_separable`: MobileNetV1 ``[dw 3x3, pool, BN, ReLU, pw 1x1, BN, ReLU]``.
- :class:`InvertedResidual`: MobileNetV2 ``conv = [pw, BN, ReLU6, dw 3x3, pool, BN, ReLU6, pw, BN]``
  (without the first three when the expansion is 1).
- :func:`pointwise_bn_act`: ``[conv 1x1, BN, act]``.

Downsampling: PANNs' MobileNets use a 3x3 stride-1 conv followed by
``AvgPool2d(stride)`` (the "pool" layout). The "strided" layout replaces the
pair by one 4x4 stride-2 conv (padding 1) followed by ``nn.Identity()`` at the
same index; :mod:`edge_sed.models.reparam` converts one into the other exactly.

Heads: :func:`pool_clip` and :func:`pool_segments` reduce feature maps
(batch, channels, time, freq) as PANNs does before ``fc1``;
:func:`expand_framewise` turns segment-level outputs into frame-level ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvBlock",
    "conv_bn_act",
    "depthwise_separable",
    "pointwise_bn_act",
    "InvertedResidual",
    "downsampling_conv",
    "STRIDED_KERNEL",
    "pool_clip",
    "pool_segments",
    "expand_framewise",
    "init_panns",
]

#: Kernel size of the strided-layout conv that equals a 3x3 conv + 2x2 average pool.
STRIDED_KERNEL = 4


class ConvBlock(nn.Module):
    """PANNs ``ConvBlock`` (two 3x3 convs) / ``ConvBlock5x5`` (one 5x5): conv-BN-ReLU x n, then pool.

    (batch, in, time, freq) -> (batch, out, time // pool[0], freq // pool[1])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        n_convs: int = 2,
        pool_size: tuple[int, int] = (2, 2),
    ) -> None:
        super().__init__()
        self.n_convs = n_convs
        self.pool_size = pool_size
        for i in range(1, n_convs + 1):
            conv = nn.Conv2d(in_channels if i == 1 else out_channels, out_channels, kernel_size, 1, kernel_size // 2, bias=False)
            self.add_module(f"conv{i}", conv)
        for i in range(1, n_convs + 1):
            self.add_module(f"bn{i}", nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.n_convs + 1):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        return F.avg_pool2d(x, kernel_size=self.pool_size) if self.pool_size != (1, 1) else x


def downsampling_conv(in_channels: int, out_channels: int, stride: int, *, groups: int = 1, strided: bool = False) -> list[nn.Module]:
    """``[conv, pool]``: a 3x3 stride-1 conv and ``AvgPool2d(stride)`` (PANNs' layout),
    or with ``strided`` and stride 2 a 4x4 stride-2 conv and ``Identity`` (same indices)."""
    if strided and stride == 2:
        conv = nn.Conv2d(in_channels, out_channels, STRIDED_KERNEL, 2, 1, groups=groups, bias=False)
        return [conv, nn.Identity()]
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, groups=groups, bias=False)
    return [conv, nn.Identity() if strided else nn.AvgPool2d(stride)]


def conv_bn_act(in_channels: int, out_channels: int, stride: int, act: type[nn.Module], *, strided: bool = False) -> nn.Sequential:
    """MobileNet stem ``[conv 3x3, pool, BN, act]`` (PANNs ``conv_bn``)."""
    return nn.Sequential(
        *downsampling_conv(in_channels, out_channels, stride, strided=strided),
        nn.BatchNorm2d(out_channels),
        act(),
    )


def pointwise_bn_act(in_channels: int, out_channels: int, act: type[nn.Module] | None) -> list[nn.Module]:
    """``[conv 1x1, BN, act]`` (or ``[conv 1x1, BN]`` when *act* is None)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False), nn.BatchNorm2d(out_channels)]
    return layers + ([act()] if act is not None else [])


def _depthwise_bn_act(channels: int, stride: int, act: type[nn.Module], strided: bool) -> list[nn.Module]:
    return [*downsampling_conv(channels, channels, stride, groups=channels, strided=strided), nn.BatchNorm2d(channels), act()]


def depthwise_separable(in_channels: int, out_channels: int, stride: int, *, strided: bool = False) -> nn.Sequential:
    """MobileNetV1 ``conv_dw``: ``[dw 3x3, pool, BN, ReLU, pw 1x1, BN, ReLU]``."""
    return nn.Sequential(
        *_depthwise_bn_act(in_channels, stride, nn.ReLU, strided),
        *pointwise_bn_act(in_channels, out_channels, nn.ReLU),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1 (if t > 1), depthwise 3x3 with downsampling, project 1x1;
    a residual connection when the stride is 1 and the widths agree."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int, *, strided: bool = False) -> None:
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        expand = pointwise_bn_act(in_channels, hidden, nn.ReLU6) if expand_ratio != 1 else []
        self.conv = nn.Sequential(
            *expand,
            *_depthwise_bn_act(hidden, stride, nn.ReLU6, strided),
            *pointwise_bn_act(hidden, out_channels, None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


def init_panns(module: nn.Module) -> None:
    """PANNs' initialisation: Xavier-uniform conv/linear weights, zero biases, BN 1/0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def pool_clip(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, time, freq) -> (batch, channels): mean over freq, then max + mean over time."""
    x = x.mean(dim=3)
    return x.amax(dim=2) + x.mean(dim=2)


def pool_segments(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, time, freq) -> (batch, time, channels): mean over freq, then
    3-tap max + average smoothing over time (PANNs' decision-level models)."""
    x = x.mean(dim=3)
    x = F.max_pool1d(x, kernel_size=3, stride=1, padding=1) + F.avg_pool1d(x, kernel_size=3, stride=1, padding=1)
    return x.transpose(1, 2)


def expand_framewise(segments: torch.Tensor, ratio: int, n_frames: int) -> torch.Tensor:
    """(batch, segments, classes) -> (batch, n_frames, classes): each segment repeated
    *ratio* times, then the last value repeated up to *n_frames* (PANNs' interpolate + pad)."""
    frames = segments.repeat_interleave(ratio, dim=1)[:, :n_frames]
    missing = n_frames - frames.shape[1]
    return torch.cat([frames, frames[:, -1:].expand(-1, missing, -1)], dim=1) if missing > 0 else frames
