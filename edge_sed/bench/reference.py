"""PANNs' published AudioSet results, the reference series of the MACs-vs-mAP plot.

mAP and trainable parameters are Table XII of Kong et al., "PANNs: Large-Scale
Pretrained Audio Neural Networks for Audio Pattern Recognition" (2020).
Multiply-adds are the paper's own counter (``pytorch_utils.count_flops``, which
counts about 2 per MAC and includes the 1024-tap convolutional STFT) for one
10 s clip, as measured from the official code in ``shared/reference/panns_macs.json``
(``paper_count_flops``; it reproduces Table XII's column).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PannsPoint", "PANNS_AUDIOSET", "REFERENCE_CLIP_S"]

#: The clip length PANNs' multiply-adds are counted for.
REFERENCE_CLIP_S = 10.0


@dataclass(frozen=True, slots=True)
class PannsPoint:
    """One published PANNs model: AudioSet mAP, multiply-adds per 10 s clip, trainable params."""

    model: str
    audioset_map: float
    multiply_adds: float
    params: int


PANNS_AUDIOSET: tuple[PannsPoint, ...] = (
    PannsPoint("Cnn14", 0.431, 42_219_593_359, 80_753_615),
    PannsPoint("Cnn14_16k", 0.438, 40_643_106_447, 80_753_615),
    PannsPoint("Cnn10", 0.380, 28_166_055_055, 5_219_279),
    PannsPoint("Cnn6", 0.343, 21_985_715_343, 4_837_455),
    PannsPoint("MobileNetV1", 0.389, 3_614_241_423, 4_796_303),
    PannsPoint("MobileNetV2", 0.383, 2_809_604_751, 4_075_343),
)
