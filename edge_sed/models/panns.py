"""PANNs' plain CNNs (Cnn14, Cnn10, Cnn6) as tables of widths.

A table gives the width of each ``conv_blockN``, the pooling after it, the
kernel size and convolutions per block; :class:`CnnTable` builds the stages
(``conv_block1..N``, names as in the official checkpoints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from edge_sed.models.blocks import ConvBlock

__all__ = ["CnnTable", "CNN14", "CNN10", "CNN6"]

_POOL_2X2 = (2, 2)
_NO_POOL = (1, 1)


@dataclass(frozen=True, slots=True)
class CnnTable:
    """A PANNs CNN: ``conv_block{i}`` has ``widths[i-1]`` channels and pools by ``pools[i-1]``."""

    widths: tuple[int, ...]
    pools: tuple[tuple[int, int], ...]
    kernel_size: int = 3
    n_convs: int = 2
    block_dropout: float = 0.2
    head_dropout: float = 0.5

    @property
    def out_channels(self) -> int:
        return self.widths[-1]

    @property
    def embedding_size(self) -> int:
        return self.widths[-1]

    def build(self, *, strided: bool) -> list[tuple[str, nn.Module]]:
        if strided:
            raise ValueError("the strided layout applies to MobileNets only (PANNs CNNs pool after ReLU)")
        blocks, in_channels = [], 1
        for i, (width, pool) in enumerate(zip(self.widths, self.pools), start=1):
            block = ConvBlock(in_channels, width, kernel_size=self.kernel_size, n_convs=self.n_convs, pool_size=pool)
            blocks.append((f"conv_block{i}", block))
            in_channels = width
        return blocks

    def time_ratio(self, *, strided: bool) -> int:
        return math.prod(pool[0] for pool in self.pools)


#: PANNs ``Cnn14`` (also ``Cnn14_16k`` and ``Cnn14_DecisionLevelMax``).
CNN14 = CnnTable(widths=(64, 128, 256, 512, 1024, 2048), pools=(_POOL_2X2,) * 5 + (_NO_POOL,))
#: PANNs ``Cnn10``.
CNN10 = CnnTable(widths=(64, 128, 256, 512), pools=(_POOL_2X2,) * 4)
#: PANNs ``Cnn6`` (one 5x5 conv per block).
CNN6 = CnnTable(widths=(64, 128, 256, 512), pools=(_POOL_2X2,) * 4, kernel_size=5, n_convs=1)
