"""Choose a bundle's per-class tracking rules on validation recordings.

The model's scores are recorded by running the very pipeline ``edge-sed
detect`` runs (:func:`edge_sed.pipeline.run`: streaming log-mel, one window
every hop), so the rules are tuned on exactly what the detector sees. The
offline tracker (:func:`edge_sed.tracker.track_events`, which gives the events
the streaming one gives) is then replayed over the scores for each candidate
rule and scored with event-based F1 (:func:`edge_sed.evaluation.event_based_scores`).

Classes are tracked independently, so one replay with one rule for every class
scores that rule for all classes at once. The search runs in stages
(coordinate ascent): on/off thresholds, then the median-filter length, then
the minimum duration. The default rule is the one with the best micro F1
(every false alarm of every class counts); a class gets its own rule only with
at least ``min_events_per_class`` validation events and when that rule reaches
``min_class_f1``, so no rule is fitted to one or two examples.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from edge_sed.backends import Backend
from edge_sed.config import ClassRule, StreamConfig, TrackerConfig, resolve
from edge_sed.errors import ConfigError
from edge_sed.evaluation import event_based_scores
from edge_sed.events import Event, StreamStatus
from edge_sed.pipeline import PipelineConfig, run
from edge_sed.sinks import SinkSet
from edge_sed.sources import FileSource
from edge_sed.tracker import track_events

__all__ = [
    "BASE_RULE",
    "MIN_EVENTS_PER_CLASS",
    "ScoredRecordings",
    "TuningGrid",
    "TuningResult",
    "score_recordings",
    "tune_rules",
    "tune_bundle",
]

log = logging.getLogger(__name__)

#: What the search starts from: the off-threshold stays at 60 % of the on-threshold.
BASE_RULE = ClassRule(on_threshold=0.5, off_threshold=0.3, median_s=0.5, min_duration_s=0.25, max_gap_s=0.5)
#: Classes with fewer validation events than this keep the default rule ...
MIN_EVENTS_PER_CLASS = 4
#: ... and so do classes whose own best rule reaches a lower event F1 than this (a rule
#: that finds one event in twenty mostly adds false alarms).
MIN_CLASS_F1 = 0.2


@dataclass(frozen=True, slots=True)
class ScoredRecordings:
    """A model's scores over recordings, one row per analysis window.

    ``scores`` maps each file to an array of shape (windows, classes); window
    ``k`` is centred at ``first_time_s + k * hop_s`` seconds.
    """

    scores: dict[str, np.ndarray]
    labels: tuple[str, ...]
    hop_s: float
    first_time_s: float

    def events(self, tracker: TrackerConfig) -> list[Event]:
        """The complete events *tracker* finds in every recording (``Event.file`` set)."""
        return [
            dataclasses.replace(event, file=name)
            for name, matrix in self.scores.items()
            for event in track_events(matrix, self.labels, tracker, self.hop_s, first_time_s=self.first_time_s)
        ]


@dataclass(frozen=True, slots=True)
class TuningResult:
    """The chosen rules and the validation event-based F1 with them and with the base rule alone."""

    tracker: TrackerConfig
    class_f1: dict[str, float]
    micro_f1: float
    macro_f1: float
    base_micro_f1: float
    base_macro_f1: float


class _ScoreRecorder:
    """A sink that keeps the score row of every window (and ignores events)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, ...]] = []

    def emit(self, event: Event) -> None:
        """Events are not needed here."""

    def update(self, status: StreamStatus) -> None:
        self.rows.append(status.scores)

    def close(self) -> None:
        """Nothing to flush."""


def score_recordings(backend: Backend, paths: Iterable[str | Path], hop_s: float) -> ScoredRecordings:
    """Scores of *backend* over each file, windows every *hop_s*, as ``edge-sed detect`` computes them.

    Files are keyed by their name (not the full path), as in DCASE annotation files.
    """
    bundle = backend.bundle
    stream = StreamConfig(window_s=bundle.stream.window_s, hop_s=hop_s)
    config = PipelineConfig(stream=stream, tracker=bundle.tracker)
    scores = {}
    for path in paths:
        recorder = _ScoreRecorder()
        run([FileSource(path, bundle.frontend.sample_rate)], backend, SinkSet([("scores", recorder)]), config)
        scores[Path(path).name] = np.asarray(recorder.rows, dtype=np.float32).reshape(-1, len(bundle.labels))
    return ScoredRecordings(scores, bundle.labels, hop_s, first_time_s=bundle.stream.window_s / 2)


def _f1(reference: Sequence[Event], estimated: Sequence[Event], labels: Sequence[str]) -> tuple[float, float, dict[str, float]]:
    """Micro F1 (over all events), macro F1 (over the classes with reference events) and every class's F1."""
    scores = event_based_scores(reference, estimated, labels=labels)
    present = {event.label for event in reference}
    values = [0.0 if np.isnan(scores.class_f1[label]) else scores.class_f1[label] for label in labels if label in present]
    micro = 0.0 if np.isnan(scores.f1) else scores.f1
    return micro, (float(np.mean(values)) if values else float("nan")), scores.class_f1


@dataclass(frozen=True, slots=True)
class TuningGrid:
    """The values tried, stage by stage; ``off_ratios`` give ``off = on * ratio``."""

    on_thresholds: tuple[float, ...] = (0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    off_ratios: tuple[float, ...] = (0.5, 0.75, 1.0)
    median_s: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5)
    min_duration_s: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)

    def __post_init__(self) -> None:
        if not self.on_thresholds or not all(0.0 < t <= 1.0 for t in self.on_thresholds):
            raise ConfigError(f"on_thresholds must be in (0, 1], got {self.on_thresholds!r}")
        if not self.off_ratios or not all(0.0 < r <= 1.0 for r in self.off_ratios):
            raise ConfigError(f"off_ratios must be in (0, 1], got {self.off_ratios!r}")
        if not self.median_s or not self.min_duration_s or min(self.median_s + self.min_duration_s) < 0:
            raise ConfigError("median_s and min_duration_s need at least one value, none negative")

    @property
    def stages(self) -> list[list[dict[str, float]]]:
        """The rule changes tried in each stage."""
        return [
            [{"on_threshold": on, "off_threshold": on * ratio} for on in self.on_thresholds for ratio in self.off_ratios],
            [{"median_s": median} for median in self.median_s],
            [{"min_duration_s": duration} for duration in self.min_duration_s],
        ]


def tune_rules(
    scored: ScoredRecordings,
    reference: Sequence[Event],
    *,
    base: ClassRule = BASE_RULE,
    grid: TuningGrid = TuningGrid(),
    min_events_per_class: int = MIN_EVENTS_PER_CLASS,
    min_class_f1: float = MIN_CLASS_F1,
) -> TuningResult:
    """Per-class tracking rules that maximise event-based F1 on validation recordings.

    The default rule maximises micro F1 over all events (every false alarm of
    every class counts); a class gets its own rule when that rule beats the
    default on it and reaches *min_class_f1*.

    Parameters
    ----------
    scored : ScoredRecordings
        Validation recordings only (never the held-out test data).
    reference : sequence of Event
        Their ground truth (``Event.file`` = the recording's file name).
    base : ClassRule
        Where the search starts (and its ``max_gap_s``, which is not searched).
    grid : TuningGrid
        The values tried.
    min_events_per_class : int
        Classes with fewer reference events keep the default rule.
    min_class_f1 : float
        Classes whose best own rule stays below this F1 keep the default rule.
    """
    if not scored.scores:
        raise ConfigError("need at least one validation recording to tune the tracker")
    unknown = sorted({event.file for event in reference} - set(scored.scores) - {None})
    if unknown:
        raise ConfigError(f"reference events name recordings that were not scored: {', '.join(map(repr, unknown[:3]))}")
    labels = scored.labels
    counts = {label: sum(event.label == label for event in reference) for label in labels}
    tunable = [label for label in labels if counts[label] >= min_events_per_class]
    default, rules, best_f1 = base, {}, {}
    for stage in grid.stages:
        stage_best = (-1.0, default)
        for change in stage:
            shared = dataclasses.replace(default, **change)
            shared_micro, _, shared_f1 = _f1(reference, scored.events(TrackerConfig(shared)), labels)
            own = {label: dataclasses.replace(rule, **change) for label, rule in rules.items()}
            differing = tuple((label, rule) for label, rule in own.items() if rule != shared)
            own_f1 = _f1(reference, scored.events(TrackerConfig(shared, differing)), labels)[2] if differing else shared_f1
            if shared_micro > stage_best[0]:
                stage_best = (shared_micro, shared)
            for label in tunable:
                rule, f1 = (own[label], own_f1[label]) if label in own else (shared, shared_f1[label])
                f1 = 0.0 if np.isnan(f1) else f1
                if f1 > best_f1.get(label, -1.0):
                    best_f1[label], rules[label] = f1, rule
            log.info("tuning %s: micro F1 %.3f with one rule for every class", change, shared_micro)
        default = stage_best[1]
    default_f1 = _f1(reference, scored.events(TrackerConfig(default)), labels)[2]
    own_rules = tuple(
        (label, rules[label])
        for label in tunable
        if best_f1[label] >= min_class_f1 and best_f1[label] > np.nan_to_num(default_f1[label]) and rules[label] != default
    )
    tracker = TrackerConfig(default, own_rules)
    micro, macro, class_f1 = _f1(reference, scored.events(tracker), labels)
    base_micro, base_macro, _ = _f1(reference, scored.events(TrackerConfig(default=base)), labels)
    log.info(
        "tuned %d of %d classes: validation event F1 %.3f micro, %.3f macro (base rule %.3f, %.3f)",
        len(own_rules), len(labels), micro, macro, base_micro, base_macro,
    )
    return TuningResult(tracker, class_f1, micro, macro, base_micro, base_macro)


def tune_bundle(
    model: str | Path,
    annotations: str | Path,
    output: str | Path,
    *,
    hop_s: float | None = None,
    grid: TuningGrid = TuningGrid(),
    min_events_per_class: int = MIN_EVENTS_PER_CLASS,
) -> TuningResult:
    """Tune *model*'s tracking rules on the recordings of a DCASE *annotations* file
    (files beside it) and write the bundle with them to *output* (ONNX).

    The bundle's ``metrics`` gain ``validation_event_f1_macro`` (tuned) and
    ``validation_event_f1_macro_base``; its ``provenance`` records the annotations used.
    """
    import onnx

    from edge_sed.backends import load_backend
    from edge_sed.evaluation import read_tsv
    from quantize.export import onnx_output, write_onnx_bundle

    annotations, model = Path(annotations), Path(model)
    if model.suffix != ".onnx":
        raise ConfigError(f"tune takes an ONNX bundle (.onnx), got {str(model)!r}")
    output = onnx_output(output, "the tuned bundle")
    if min_events_per_class < 1:
        raise ConfigError(f"the minimum of events per class must be at least 1, got {min_events_per_class!r}")
    reference = read_tsv(annotations)
    files = sorted({event.file for event in reference if event.file})
    if not files:
        raise ConfigError(f"{str(annotations)!r} lists no recordings to tune on")
    backend = load_backend(model)
    bundle = backend.bundle
    strangers = sorted({event.label for event in reference} - set(bundle.labels))
    if strangers:
        raise ConfigError(f"{str(annotations)!r} has events of {strangers[0]!r}, a class the model lacks; it knows: {', '.join(bundle.labels)}")
    stream = resolve(bundle.stream, {"hop_s": hop_s})
    scored = score_recordings(backend, [annotations.parent / name for name in files], stream.hop_s)
    result = tune_rules(scored, reference, grid=grid, min_events_per_class=min_events_per_class)
    tuned = dataclasses.replace(
        bundle,
        tracker=result.tracker,
        metrics={
            **bundle.metrics,
            "validation_event_f1": round(result.micro_f1, 4),
            "validation_event_f1_macro": round(result.macro_f1, 4),
            "validation_event_f1_base_rule": round(result.base_micro_f1, 4),
        },
        provenance={**bundle.provenance, "tracker_tuned_on": f"{annotations.parent.name}/{annotations.name} ({len(files)} recordings, {len(reference)} events)"},
    )
    write_onnx_bundle(onnx.load(str(model)), tuned, output)
    return result
