"""Tracker tuning: the search finds the per-class rules that a known score timeline needs."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sed.errors import ConfigError
from edge_sed.tuning import ScoreTimeline, TuningGrid, class_event_f1, tune_tracker

HOP_S = 0.25
LABELS = ("dog", "siren", "rare")


def _timeline(name: str, events: list[tuple[float, float, str]], blips: list[tuple[float, str]]) -> ScoreTimeline:
    """Scores of a model that rates *dog* events low (0.35) and fires a 0.95 *siren* blip of one hop."""
    times = HOP_S / 2 + np.arange(80) * HOP_S
    scores = np.full((80, len(LABELS)), 0.05, dtype=np.float32)
    for onset, offset, label in events:
        inside = (times > onset) & (times < offset)
        scores[inside, LABELS.index(label)] = 0.35 if label == "dog" else 0.9
    for time_s, label in blips:
        scores[np.argmin(abs(times - time_s)), LABELS.index(label)] = 0.95
    return ScoreTimeline(name, times, scores, HOP_S)


def test_tuning_picks_a_low_threshold_for_dog_and_filters_siren_blips() -> None:
    references = {
        f"v{i}.flac": [(2.0 + i % 3, 4.0 + i % 3, "dog"), (10.0, 13.0 + i % 2, "siren")] for i in range(6)
    }
    timelines = [_timeline(name, rows, [(16.0, "siren")]) for name, rows in references.items()]
    grid = TuningGrid(on_thresholds=(0.3, 0.5, 0.7), off_ratios=(1.0,), median_s=(0.0, 0.75), min_duration_s=(0.0, 0.5))
    result = tune_tracker(timelines, references, LABELS, grid)
    dog, siren, rare = (result.tracker.rule(label) for label in LABELS)
    assert dog.on_threshold == 0.3
    assert siren.median_s == 0.75 or siren.min_duration_s == 0.5  # the one-hop blip must go
    assert result.class_f1["dog"] == pytest.approx(1.0) and result.class_f1["siren"] == pytest.approx(1.0)
    assert np.isnan(result.class_f1["rare"]) and rare == result.tracker.default
    assert result.macro_f1 == pytest.approx(1.0) and result.default_macro_f1 < 0.75


def test_class_event_f1_uses_the_200ms_onset_collar() -> None:
    reference = {"a.flac": [(1.0, 3.0, "dog")]}
    assert class_event_f1(reference, {"a.flac": [(1.15, 3.1, "dog")]}, ["dog"])["dog"] == (1.0, 1)
    assert class_event_f1(reference, {"a.flac": [(1.3, 3.0, "dog")]}, ["dog"])["dog"] == (0.0, 1)


def test_bad_grid_is_refused() -> None:
    with pytest.raises(ConfigError, match="on_thresholds"):
        TuningGrid(on_thresholds=(0.0, 1.5))
