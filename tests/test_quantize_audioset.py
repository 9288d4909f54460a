"""AudioSet segment lists as labelled clips, and multi-label scoring: the parser on generated
rows, real fixture audio under YTID names, mAP against scikit-learn, and a tiny ONNX bundle
with AudioSet display names scored end to end."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sed.errors import ConfigError
from edge_sed.labels import audioset_ontology
from quantize.audioset import SEGMENTS_HEADER, Segment, read_segments
from quantize.clips import Clip, list_clips

MIDS, NAMES = audioset_ontology()
YTIDS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=11, max_size=11)
SEGMENTS = st.lists(
    st.builds(Segment, YTIDS, st.integers(0, 600_000).map(lambda ms: ms / 1000), st.just(0.0),
              st.lists(st.sampled_from(MIDS), min_size=1, max_size=6, unique=True).map(tuple)),
    max_size=20,
)


def write_segments(path: Path, rows: list[tuple[str, float, list[str]]]) -> Path:
    """An AudioSet-format segment list, spaced and quoted as the official files are."""
    lines = ["# Segments csv created Sun Mar  5 10:54:25 2017", "# num_ytids=2, num_segs=2, num_unique_labels=4, num_positive_labels=4",
             SEGMENTS_HEADER]
    lines += [f'{ytid}, {start:.3f}, {start + 10:.3f}, "{",".join(mids)}"' for ytid, start, mids in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@settings(max_examples=60, deadline=None)
@given(SEGMENTS)
def test_segment_lists_round_trip(tmp_path_factory, segments):
    path = write_segments(tmp_path_factory.mktemp("segments") / "eval_segments.csv",
                          [(s.ytid, s.start_s, list(s.mids)) for s in segments])
    with path.open(encoding="utf-8") as fh:
        parsed = read_segments(fh)
    assert parsed == [dataclasses.replace(s, end_s=float(f"{s.start_s + 10:.3f}")) for s in segments]


@pytest.fixture
def audioset_dir(tmp_path, data_dir):
    """Fixture clips copied under YTID-like names, in the three naming rules and both folders."""
    (tmp_path / "audio").mkdir()
    shutil.copy(next(data_dir.glob("esc50_dog_*.flac")), tmp_path / "audio" / "-dog_4gqARa.flac")
    shutil.copy(next(data_dir.glob("esc50_siren_*.flac")), tmp_path / "Ysiren-0RWZT.wav")  # a FLAC named .wav: read by content
    shutil.copy(next(data_dir.glob("esc50_rain_*.flac")), tmp_path / "rain_0RWZT_30000.ogg")
    return tmp_path


def test_real_audio_is_found_and_labelled_and_missing_rows_are_counted(audioset_dir, caplog):
    path = write_segments(audioset_dir / "eval_segments.csv", [
        ("-dog_4gqARa", 0.0, ["/m/0bt9lr", "/m/068hy"]),  # Dog, Domestic animals, pets
        ("siren-0RWZT", 0.0, ["/m/03kmc9"]),  # Siren
        ("rain_0RWZT", 30.0, ["/m/06mb1", "/m/0jb2l"]),  # Rain, Thunderstorm
        ("missingVid1", 0.0, ["/m/09x0r"]),
    ])
    with caplog.at_level(logging.WARNING):
        clips = list_clips(path)
    assert clips == sorted([
        Clip(audioset_dir / "audio" / "-dog_4gqARa.flac", ("Dog", "Domestic animals, pets")),
        Clip(audioset_dir / "Ysiren-0RWZT.wav", ("Siren",)),
        Clip(audioset_dir / "rain_0RWZT_30000.ogg", ("Rain", "Thunderstorm")),
    ], key=lambda clip: clip.path)
    assert "1 of 4 segments have no audio; skipped" in caplog.text
    with pytest.raises(ConfigError, match="has no folds"):
        list_clips(path, fold=5)


def test_unknown_mid_and_no_audio_are_one_line_errors(tmp_path):
    unknown = write_segments(tmp_path / "unknown.csv", [("abcdefghijk", 0.0, ["/m/09x0r", "/m/nope"])])
    with pytest.raises(ConfigError, match=r"not AudioSet classes: '/m/nope'; check") as error:
        list_clips(unknown)
    assert "\n" not in str(error.value)
    empty = write_segments(tmp_path / "empty.csv", [("abcdefghijk", 0.0, ["/m/09x0r"])])
    with pytest.raises(ConfigError, match=r"no audio found for the 1 segments of .*empty.csv.* in .*audio; put Y\{YTID\}.wav") as error:
        list_clips(empty)
    assert "\n" not in str(error.value)


def test_multi_label_map_and_accuracy_match_scikit_learn():
    from sklearn.metrics import average_precision_score

    from quantize.report import _targets, accuracy_and_map

    labels = ("a", "b", "c", "d")
    truth = [("a", "b"), ("b",), ("a", "c"), ("b", "c"), ("a",)]  # "d" never occurs
    scores = np.array([[0.9, 0.2, 0.1, 0.8], [0.3, 0.7, 0.6, 0.1], [0.2, 0.4, 0.5, 0.3], [0.6, 0.1, 0.3, 0.2], [0.4, 0.3, 0.7, 0.1]])
    target = np.array([[label in clip for label in labels] for clip in truth])
    assert np.array_equal(_targets(scores.shape, labels, truth), target)
    accuracy, mean_ap = accuracy_and_map(scores, target)
    # top-1: a (in a,b) yes; b yes; c (in a,c) yes; a (in b,c) no; c (in a) no
    assert accuracy == pytest.approx(3 / 5)
    assert mean_ap == pytest.approx(np.mean([average_precision_score(target[:, k], scores[:, k]) for k in range(3)]))
    assert mean_ap == pytest.approx(average_precision_score(target[:, :3], scores[:, :3], average="macro"))


def test_compare_models_scores_audioset_clips_end_to_end(tmp_path, audioset_dir):
    from quantize.report import compare_models

    from bundles import build_audioset_bundle

    bundle = build_audioset_bundle(tmp_path / "audioset-tagger.onnx")
    path = write_segments(audioset_dir / "eval_segments.csv", [
        ("-dog_4gqARa", 0.0, ["/m/0bt9lr", "/m/068hy"]),  # Dog (a model class), Domestic animals (not)
        ("siren-0RWZT", 0.0, ["/m/03kmc9", "/m/0bt9lr"]),  # Siren, Dog
        ("rain_0RWZT", 30.0, ["/m/0jb2l"]),  # Thunderstorm only: not a model class, dropped
    ])
    report = compare_models([bundle], list_clips(path), latency_runs=1)
    row = report.models[0]
    assert report.labelled and report.n_clips == 2
    assert "measured on the 2 of 3 clips" in report.note and "(2 labels outside them dropped)" in report.note
    assert "top-1 class is one of their labels" in report.note
    assert 0.0 <= row.mean_average_precision <= 1.0 and row.accuracy in (0.0, 0.5, 1.0)
    assert row.accuracy == 1.0  # the tagger knows its own fixture clips
