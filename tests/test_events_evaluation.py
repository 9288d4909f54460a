"""Evaluation helpers: DCASE TSV files, event/segment F1 with the DCASE collars, PSDS."""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from edge_sed.config import ClassRule, TrackerConfig
from edge_sed.errors import ConfigError, MissingDependencyError
from edge_sed.evaluation import event_based_scores, psds, read_tsv, segment_based_scores, write_tsv
from edge_sed.events import Event
from edge_sed.tracker import track_events

REFERENCE = [
    Event("Dog", 1.0, 2.0, 1.0, file="a.wav"),
    Event("Dog", 5.0, 6.0, 1.0, file="a.wav"),
    Event("Siren", 3.0, 8.0, 1.0, file="a.wav"),
    Event("Dog", 2.0, 3.0, 1.0, file="b.wav"),  # never detected
]


def test_event_f1_uses_the_dcase_collars() -> None:
    estimated = [
        Event("Dog", 1.1, 2.1, 0.9, file="a.wav"),  # onset and offset within 200 ms: hit
        Event("Dog", 5.3, 6.0, 0.9, file="a.wav"),  # onset 300 ms late: miss and false alarm
        Event("Siren", 3.15, 8.9, 0.9, file="a.wav"),  # offset 900 ms late, within 20 % of 5 s: hit
        Event("Dog", 9.0, 9.5, 0.9, file="a.wav"),  # false alarm
        Event("Dog", 9.0, None, 0.9, file="a.wav"),  # onset notifications are not events
    ]
    scores = event_based_scores(REFERENCE, estimated)
    assert (scores.precision, scores.recall, scores.f1) == pytest.approx((0.5, 0.5, 0.5))
    assert scores.class_f1 == pytest.approx({"Dog": 1 / 3, "Siren": 1.0})
    assert scores.macro_f1 == pytest.approx(2 / 3)


def test_segment_f1_compares_one_second_segments() -> None:
    scores = segment_based_scores([Event("Dog", 0.0, 2.0, 1.0)], [Event("Dog", 1.0, 3.0, 0.9)])
    assert (scores.precision, scores.recall, scores.f1) == pytest.approx((0.5, 0.5, 0.5))


def test_tracked_score_steps_match_their_reference_within_the_collars() -> None:
    hop_s, labels = 0.25, ["Dog", "Siren"]
    config = TrackerConfig(default=ClassRule(median_s=0.75, min_duration_s=0.5, max_gap_s=0.5))
    times = hop_s / 2 + np.arange(48) * hop_s
    estimated = []
    for name, spans in {"a.wav": [(1.0, 2.0), (5.0, 6.0)], "b.wav": [(2.0, 3.0), (3.0, 8.0)]}.items():
        scores = np.full((len(times), 2), 0.1)
        for c, (onset, offset) in enumerate(spans):
            scores[(times > onset) & (times < offset), c] = 0.9
        estimated += [Event(ev.label, ev.onset, ev.offset, ev.confidence, file=name)
                      for ev in track_events(scores, labels, config, hop_s)]
    reference = [Event("Dog", 1.0, 2.0, 1.0, file="a.wav"), Event("Siren", 5.0, 6.0, 1.0, file="a.wav"),
                 Event("Dog", 2.0, 3.0, 1.0, file="b.wav"), Event("Siren", 3.0, 8.0, 1.0, file="b.wav")]
    assert len(estimated) == 4
    assert event_based_scores(reference, estimated).f1 == 1.0


def test_psds_ranks_true_scores_above_shuffled_ones() -> None:
    hop_s, labels, frames = 0.25, ["Dog", "Siren"], 40
    times = hop_s / 2 + np.arange(frames) * hop_s
    reference = [Event("Dog", 1.0, 3.0, 1.0, file="a.wav"), Event("Siren", 5.0, 8.0, 1.0, file="a.wav")]
    truth = np.zeros((frames, 2))
    truth[(times > 1.0) & (times < 3.0), 0] = 1.0
    truth[(times > 5.0) & (times < 8.0), 1] = 1.0
    perfect = psds({"a.wav": truth}, reference, {"a.wav": 10.0}, labels, hop_s)
    shuffled = psds({"a.wav": np.random.default_rng(0).permutation(truth)}, reference, {"a.wav": 10.0}, labels, hop_s)
    assert perfect == pytest.approx(1.0)
    assert shuffled < 0.5


def test_tsv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "events.tsv"
    write_tsv([*REFERENCE, Event("Rain", 0.5, None, 0.7), Event("Rain", 0.5, 1.25, 0.7)], path, filename="c.wav")
    assert read_tsv(path) == [*REFERENCE, Event("Rain", 0.5, 1.25, 1.0, file="c.wav")]


def test_dcase_annotations_without_header_or_events_are_read(tmp_path: Path) -> None:
    path = tmp_path / "truth.tsv"
    path.write_text("a.wav\t0.5\t1.5\tDog\nquiet.wav\na.wav\t2\t3\tSiren\n")
    assert read_tsv(path) == [Event("Dog", 0.5, 1.5, 1.0, file="a.wav"), Event("Siren", 2.0, 3.0, 1.0, file="a.wav")]


def test_a_broken_annotation_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "truth.tsv"
    path.write_text("filename\tonset\toffset\tevent_label\na.wav\tsoon\t3\tDog\n")
    with pytest.raises(ConfigError) as error:
        read_tsv(path)
    assert str(error.value) == (
        f"{str(path)!r} line 2: expected 'filename<TAB>onset<TAB>offset<TAB>event_label', got 'a.wav\\tsoon\\t3\\tDog'"
    )


def test_missing_sed_eval_names_the_train_extra() -> None:
    with mock.patch.dict(sys.modules, {"sed_eval": None}):
        with pytest.raises(MissingDependencyError) as error:
            event_based_scores(REFERENCE, REFERENCE)
    assert str(error.value) == (
        "event-based evaluation needs the [train] extra (sed_eval is not installed): pip install 'edge-sed[train]'"
    )
