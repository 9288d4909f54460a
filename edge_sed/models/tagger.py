"""The one model class of the zoo: front end, ``bn0``, a backbone from a table, a head.

Every architecture in :mod:`edge_sed.models.registry` is a :class:`SoundTagger`
built from a backbone table (:mod:`edge_sed.models.panns`,
:mod:`edge_sed.models.mobilenet`); only the table and the head kind differ.
Child names and order are PANNs' (``spectrogram_extractor``,
``logmel_extractor``, ``bn0``, backbone, ``fc1``, ``fc_audioset``), so the
state_dict of a PANNs configuration equals the official one key for key.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from edge_sed.config import FrontendConfig
from edge_sed.models.blocks import expand_framewise, init_panns, pool_clip, pool_segments
from edge_sed.models.frontend import TorchLogMel

__all__ = ["BackboneTable", "SoundTagger", "FRAMEWISE_DROPOUT"]

#: Dropout between ``fc1`` and ``fc_audioset`` in the decision-level (frame-wise) head.
FRAMEWISE_DROPOUT = 0.5


class BackboneTable(Protocol):
    """What a backbone table provides to :class:`SoundTagger`."""

    out_channels: int  # channels of the last feature map (fc1's input)
    embedding_size: int  # fc1's output
    block_dropout: float  # dropout after each top-level backbone stage (training only)
    head_dropout: float  # dropout before fc1 (training only)

    def build(self, *, strided: bool) -> list[tuple[str, nn.Module]]:
        """The backbone's top-level children, named as in PANNs, in order."""
        ...

    def time_ratio(self, *, strided: bool) -> int:
        """By how much the backbone divides the number of frames."""
        ...


class SoundTagger(nn.Module):
    """Log-mel front end + ``bn0`` + backbone + clip-level or decision-level head.

    ``forward(waveform (batch, n_samples))`` and ``forward_logmel(logmel
    (batch, frames, n_mels))`` return a dict:

    - ``clipwise_output`` (batch, classes): sigmoid probabilities;
    - ``logits`` (batch, classes): the same before the sigmoid;
    - ``embedding`` (batch, embedding_size): ``fc1``'s output (not dropped out);
    - ``framewise_output`` (batch, frames, classes), frame-wise models only:
      segment probabilities repeated to the input frame rate.
    """

    def __init__(
        self,
        *,
        architecture: str,
        table: BackboneTable,
        frontend: FrontendConfig,
        num_classes: int,
        framewise: bool = False,
        strided: bool = False,
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.frontend_config = frontend
        self.num_classes = num_classes
        self.framewise = framewise
        self.strided = strided
        self.time_ratio = table.time_ratio(strided=strided)
        self._block_dropout = table.block_dropout
        self._head_dropout = table.head_dropout
        logmel = TorchLogMel(frontend)
        self.spectrogram_extractor = logmel.spectrogram_extractor
        self.logmel_extractor = logmel.logmel_extractor
        self.bn0 = nn.BatchNorm2d(frontend.n_mels)
        self._stages = []
        for name, module in table.build(strided=strided):
            self.add_module(name, module)
            self._stages.append(name)
        self.fc1 = nn.Linear(table.out_channels, table.embedding_size)
        self.fc_audioset = nn.Linear(table.embedding_size, num_classes)
        init_panns(self)

    def logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(batch, n_samples) -> (batch, frames, n_mels): the front end alone."""
        return self.logmel_extractor(self.spectrogram_extractor(waveform))

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_logmel(self.logmel(waveform))

    def forward_logmel(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything after the front end, from ``bn0`` on."""
        return self.forward_normalised(self.bn0(logmel.unsqueeze(1).transpose(1, 3)).transpose(1, 3))

    def forward_normalised(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything after ``bn0``: (batch, 1, frames, n_mels) -> the output dict."""
        n_frames = x.shape[2]
        for name in self._stages:
            x = getattr(self, name)(x)
            if self._block_dropout:
                x = F.dropout(x, p=self._block_dropout, training=self.training)
        if self.framewise:
            return self._decision_level(x, n_frames)
        x = F.dropout(pool_clip(x), p=self._head_dropout, training=self.training)
        embedding = F.relu(self.fc1(x))
        logits = self.fc_audioset(embedding)
        return {"clipwise_output": torch.sigmoid(logits), "logits": logits, "embedding": embedding}

    def _decision_level(self, x: torch.Tensor, n_frames: int) -> dict[str, torch.Tensor]:
        x = F.dropout(pool_segments(x), p=self._head_dropout, training=self.training)
        hidden = F.relu(self.fc1(x))
        segment_logits = self.fc_audioset(F.dropout(hidden, p=FRAMEWISE_DROPOUT, training=self.training))
        logits = segment_logits.amax(dim=1)
        return {
            "clipwise_output": torch.sigmoid(logits),
            "logits": logits,
            "embedding": hidden.amax(dim=1),
            "framewise_output": expand_framewise(torch.sigmoid(segment_logits), self.time_ratio, n_frames),
        }
