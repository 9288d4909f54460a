"""PANNs' MobileNetV1 and MobileNetV2 as tables of rows.

Both build one ``features`` Sequential whose indices match the official
checkpoints. ``strided=True`` gives the deployment layout: each stride-2 3x3
conv + ``AvgPool2d(2)`` becomes one 4x4 stride-2 conv (see
:mod:`edge_sed.models.reparam`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from torch import nn

from edge_sed.models.blocks import InvertedResidual, conv_bn_act, depthwise_separable, pointwise_bn_act

__all__ = ["MobileNetV1Table", "MobileNetV2Table", "MOBILENET_V1", "MOBILENET_V2", "MOBILENET_V2_X0_5"]


def _divisible_by_8(channels: float) -> int:
    """*channels* rounded to the nearest multiple of 8, never below 90 % of it (Sandler et al.'s rule)."""
    rounded = max(8, int(channels + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * channels else rounded


@dataclass(frozen=True, slots=True)
class MobileNetV1Table:
    """A stem conv (``stem_channels``, stride ``stem_stride``) then one depthwise-separable
    block per ``(out_channels, stride)`` row."""

    stem_channels: int
    stem_stride: int
    rows: tuple[tuple[int, int], ...]
    embedding_size: int
    block_dropout: float = 0.0
    head_dropout: float = 0.5

    @property
    def out_channels(self) -> int:
        return self.rows[-1][0]

    def build(self, *, strided: bool) -> list[tuple[str, nn.Module]]:
        layers = [conv_bn_act(1, self.stem_channels, self.stem_stride, nn.ReLU, strided=strided)]
        in_channels = self.stem_channels
        for out_channels, stride in self.rows:
            layers.append(depthwise_separable(in_channels, out_channels, stride, strided=strided))
            in_channels = out_channels
        return [("features", nn.Sequential(*layers))]

    def time_ratio(self, *, strided: bool) -> int:
        return self.stem_stride * math.prod(stride for _, stride in self.rows)


@dataclass(frozen=True, slots=True)
class MobileNetV2Table:
    """A stem conv, then ``(t, c, n, s)`` rows of inverted residuals (expansion t,
    c channels, n blocks, the first with stride s), then a 1x1 conv to ``last_channels``."""

    stem_channels: int
    stem_stride: int
    rows: tuple[tuple[int, int, int, int], ...]
    last_channels: int
    embedding_size: int
    block_dropout: float = 0.0
    head_dropout: float = 0.0  # PANNs' MobileNetV2 has no dropout before fc1

    @property
    def out_channels(self) -> int:
        return self.last_channels

    def build(self, *, strided: bool) -> list[tuple[str, nn.Module]]:
        layers: list[nn.Module] = [conv_bn_act(1, self.stem_channels, self.stem_stride, nn.ReLU6, strided=strided)]
        in_channels = self.stem_channels
        for expand_ratio, channels, repeats, stride in self.rows:
            for i in range(repeats):
                layers.append(InvertedResidual(in_channels, channels, stride if i == 0 else 1, expand_ratio, strided=strided))
                in_channels = channels
        layers.append(nn.Sequential(*pointwise_bn_act(in_channels, self.last_channels, nn.ReLU6)))
        return [("features", nn.Sequential(*layers))]

    def time_ratio(self, *, strided: bool) -> int:
        return self.stem_stride * math.prod(stride for *_, stride in self.rows)

    def thinned(self, width: float) -> MobileNetV2Table:
        """This table with every channel count below the last conv times *width* (0 < width <= 1),
        rounded to multiples of 8; the last conv keeps its channels, as in Sandler et al."""
        if not 0 < width <= 1:
            raise ValueError(f"width must be in (0, 1], got {width!r}")
        rows = tuple((t, _divisible_by_8(c * width), n, s) for t, c, n, s in self.rows)
        return dataclasses.replace(self, stem_channels=_divisible_by_8(self.stem_channels * width), rows=rows)


#: PANNs ``MobileNetV1``.
MOBILENET_V1 = MobileNetV1Table(
    stem_channels=32,
    stem_stride=2,
    rows=((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *((512, 1),) * 5, (1024, 2), (1024, 1)),
    embedding_size=1024,
)
#: PANNs ``MobileNetV2``: the (t, c, n, s) rows of Sandler et al. with a 32-channel stem.
MOBILENET_V2 = MobileNetV2Table(
    stem_channels=32,
    stem_stride=2,
    rows=((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 2), (6, 160, 3, 1), (6, 320, 1, 1)),
    last_channels=1280,
    embedding_size=1024,
)
#: MobileNetV2 at width 0.5: about a third of the multiply-adds, for CPUs where ``listen`` must cost less.
MOBILENET_V2_X0_5 = MOBILENET_V2.thinned(0.5)
