"""Tracker tuning: per-class rules from validation scores, scored through the detect pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_sed.backends import load_backend
from edge_sed.bundle import read_bundle
from edge_sed.cli import app
from edge_sed.config import ClassRule
from edge_sed.errors import ConfigError
from edge_sed.events import Event
from edge_sed.soundscape import Background, EventSource, SoundscapeConfig, compose, write_soundscape_set
from edge_sed.tuning import ScoredRecordings, TuningGrid, score_recordings, tune_rules

from conftest import DATA

HOP_S = 0.25
LABELS = ("dog", "siren", "rare")


def _scores(events: list[tuple[float, float, str]]) -> np.ndarray:
    """A model that rates dogs low (0.35), sirens high (0.9) and fires a one-hop 0.95 siren blip at 16 s."""
    times = HOP_S / 2 + np.arange(80) * HOP_S
    scores = np.full((80, len(LABELS)), 0.05, dtype=np.float32)
    for onset, offset, label in events:
        scores[(times > onset) & (times < offset), LABELS.index(label)] = 0.35 if label == "dog" else 0.9
    scores[np.argmin(abs(times - 16.0)), LABELS.index("siren")] = 0.95
    return scores


def test_search_finds_each_class_its_rule_and_thin_classes_keep_the_default() -> None:
    truth = {f"v{i}.flac": [(2.0 + i % 3, 5.0 + i % 3, "dog"), (10.0, 13.0 + i % 2, "siren")] for i in range(5)}
    truth["v0.flac"].append((17.0, 19.0, "rare"))
    scored = ScoredRecordings({name: _scores(rows) for name, rows in truth.items()}, LABELS, HOP_S, HOP_S / 2)
    reference = [Event(label, on, off, 1.0, file=name) for name, rows in truth.items() for on, off, label in rows]
    grid = TuningGrid(on_thresholds=(0.3, 0.5, 0.7), off_ratios=(1.0,), median_s=(0.0, 0.75), min_duration_s=(0.0, 0.5))
    no_filter = ClassRule(on_threshold=0.5, off_threshold=0.5, median_s=0.0, min_duration_s=0.0, max_gap_s=0.5)
    result = tune_rules(scored, reference, base=no_filter, grid=grid)
    dog, siren = result.tracker.rule("dog"), result.tracker.rule("siren")
    assert dog.on_threshold == 0.3
    assert siren.median_s == 0.75 or siren.min_duration_s == 0.5  # the one-hop blip must go
    assert "rare" not in dict(result.tracker.per_class)
    assert result.class_f1["dog"] == pytest.approx(1.0) and result.class_f1["siren"] == pytest.approx(1.0)
    assert result.macro_f1 > result.base_macro_f1 and result.micro_f1 == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="not scored"):
        tune_rules(scored, [Event("dog", 1.0, 2.0, 1.0, file="other.flac")])
    with pytest.raises(ConfigError, match="on_thresholds"):
        TuningGrid(on_thresholds=(0.0, 1.5))


def test_scores_come_from_the_detect_pipeline_and_tune_writes_the_rules_into_the_bundle(test_bundle, tmp_path) -> None:
    backend = load_backend(test_bundle)
    labels = ("dog", "siren", "clapping", "glass_breaking")
    sources = [EventSource(label, (next(DATA.glob(f"esc50_{label}_*.flac")),), "validation") for label in labels]
    background = Background(DATA / "background_lincity_ResidentialHigh1.flac", "residential street", "validation")
    config = SoundscapeConfig(duration_s=12.0, max_event_s=2.5, background_dbfs=-35.0)
    scapes = [
        compose([(s, 0.5 + 3.0 * k, 10.0) for k, s in enumerate(sources[shift:] + sources[:shift])], background, config)
        for shift in range(3)
    ]
    write_soundscape_set(scapes, tmp_path)
    scored = score_recordings(backend, sorted(tmp_path.glob("*.flac")), HOP_S)
    window_s = backend.bundle.stream.window_s
    assert scored.first_time_s == window_s / 2 and scored.labels == backend.bundle.labels
    expected_windows = 1 + round((12.0 - window_s) / HOP_S)
    assert [m.shape for m in scored.scores.values()] == [(expected_windows, len(scored.labels))] * 3
    result = CliRunner().invoke(
        app, ["tune", str(test_bundle), str(tmp_path / "annotations.tsv"), "-o", str(tmp_path / "tuned.onnx"), "--min-events", "3"]
    )
    assert result.exit_code == 0, result.output
    tuned = read_bundle(tmp_path / "tuned.onnx")
    assert tuned.labels == backend.bundle.labels
    tuned_f1, base_f1 = tuned.metrics["validation_event_f1"], tuned.metrics["validation_event_f1_base_rule"]
    assert 0.0 < tuned_f1 <= 1.0 and tuned_f1 >= base_f1
    assert f"validation event F1: {tuned_f1:.3f} tuned" in result.output
    assert "annotations.tsv (3 recordings, 12 events)" in tuned.provenance["tracker_tuned_on"]


def test_tune_refuses_bad_input_in_one_line(test_bundle, tmp_path) -> None:
    annotations = tmp_path / "annotations.tsv"
    annotations.write_text("filename\tonset\toffset\tevent_label\nscape.flac\t1.0\t2.0\tunicorn\n")
    cases = [
        ([str(test_bundle), str(annotations), "-o", str(tmp_path / "t.onnx")],
         f"error: '{annotations}' has events of 'unicorn', a class the model lacks; it knows: "),
        ([str(test_bundle), str(annotations), "-o", str(tmp_path / "t.txt")], "error: the tuned bundle must end in '.onnx'"),
        ([str(annotations), str(annotations), "-o", str(tmp_path / "t.onnx")], "error: tune takes an ONNX bundle (.onnx)"),
        ([str(test_bundle), str(annotations), "-o", str(tmp_path / "t.onnx"), "--min-events", "0"],
         "error: the minimum of events per class must be at least 1, got 0"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, ["tune", *args])
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), result.output
