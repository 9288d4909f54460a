"""Clip-level tagging of a recording with a zoo model (``edge-sed tag``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge_sed.audio import read_audio
from edge_sed.errors import AudioInputError
from edge_sed.models.checkpoint import LoadedCheckpoint
from edge_sed.models.tagger import SoundTagger

__all__ = ["TagResult", "min_samples", "clip_scores", "tag_file"]


@dataclass(frozen=True, slots=True)
class TagResult:
    """Clip-level scores of one file, one per label, in the model's output order."""

    file: str
    labels: list[str]
    scores: list[float]

    def top(self, k: int) -> list[tuple[str, float]]:
        """The *k* highest-scoring ``(label, score)`` pairs, best first."""
        order = np.argsort(-np.asarray(self.scores), kind="stable")[:k]
        return [(self.labels[i], self.scores[i]) for i in order]


def min_samples(model: SoundTagger) -> int:
    """The shortest waveform the model accepts: its backbone needs ``time_ratio`` frames."""
    config = model.frontend_config
    return max((model.time_ratio - 1) * config.hop_length, config.n_fft // 2 + 1)


def clip_scores(model: SoundTagger, samples: np.ndarray) -> np.ndarray:
    """Clip-level probabilities of one mono waveform at the model's rate.

    Parameters
    ----------
    samples : ndarray, shape (n_samples,), float32

    Returns
    -------
    ndarray, shape (classes,), float32 in [0, 1]
    """
    needed = min_samples(model)
    if len(samples) < needed:
        rate = model.frontend_config.sample_rate
        raise AudioInputError(
            f"audio is {len(samples) / rate:.3f} s long; {model.architecture} needs at least {needed / rate:.3f} s"
        )
    with torch.inference_mode():
        output = model(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None])
    return output["clipwise_output"][0].numpy()


def tag_file(path: str | Path, checkpoint: LoadedCheckpoint) -> TagResult:
    """Read *path* (any rate and channel count: resampled, down-mixed) and tag it."""
    samples, _ = read_audio(path, checkpoint.frontend.sample_rate)
    scores = clip_scores(checkpoint.model, samples)
    return TagResult(file=str(path), labels=list(checkpoint.labels), scores=[float(s) for s in scores])
