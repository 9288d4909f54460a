"""Choose per-class tracking rules (thresholds, median filter, minimum duration)
on validation recordings by maximising event-based F1.

The model's score timelines are computed once (:func:`score_timeline`); the
offline tracker (:func:`edge_sed.tracker.track_events`, which gives the events
the streaming one gives) is then replayed over them for each candidate rule. Classes are
tracked independently, so one replay with a rule for every class scores that
rule for all classes at once, and the search runs in stages (coordinate
ascent): thresholds first, then the median filter, then the minimum duration.
Classes with too few validation events keep the rule that is best on average.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from edge_sed.backends import Backend
from edge_sed.config import ClassRule, TrackerConfig
from edge_sed.errors import ConfigError
from edge_sed.frontend import LogMel
from edge_sed.tracker import track_events

__all__ = [
    "ScoreTimeline",
    "TuningGrid",
    "TuningResult",
    "score_timeline",
    "track_timeline",
    "class_event_f1",
    "tune_tracker",
]

log = logging.getLogger(__name__)

#: Reference annotations: file name -> [(onset_s, offset_s, label), ...].
References = Mapping[str, Sequence[tuple[float, float, str]]]
#: DCASE's usual onset collar, and the offset collar as a share of the event's length.
T_COLLAR_S = 0.2
OFFSET_COLLAR_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class ScoreTimeline:
    """A model's scores over one recording, one row per analysis window.

    times_s : ndarray, shape (windows,)
        Centre of each window, seconds from the start of the recording.
    scores : ndarray, shape (windows, classes), float32 in [0, 1]
    """

    file: str
    times_s: np.ndarray
    scores: np.ndarray
    hop_s: float


@dataclass(frozen=True, slots=True)
class TuningGrid:
    """The values tried, stage by stage; ``off_ratios`` give ``off = on * ratio``."""

    on_thresholds: tuple[float, ...] = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    off_ratios: tuple[float, ...] = (0.5, 0.75, 1.0)
    median_s: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5)
    min_duration_s: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    max_gap_s: float = 0.5
    min_events_per_class: int = 4

    def __post_init__(self) -> None:
        if not self.on_thresholds or not all(0.0 < t <= 1.0 for t in self.on_thresholds):
            raise ConfigError(f"on_thresholds must be in (0, 1], got {self.on_thresholds!r}")
        if not self.off_ratios or not all(0.0 < r <= 1.0 for r in self.off_ratios):
            raise ConfigError(f"off_ratios must be in (0, 1], got {self.off_ratios!r}")
        if not self.median_s or not self.min_duration_s or min(self.median_s + self.min_duration_s) < 0:
            raise ConfigError("median_s and min_duration_s need at least one value, none negative")


@dataclass(frozen=True, slots=True)
class TuningResult:
    """The chosen rules and the validation F1 they reach (per class and macro-averaged)."""

    tracker: TrackerConfig
    class_f1: dict[str, float]
    macro_f1: float
    default_macro_f1: float


def score_timeline(backend: Backend, samples: np.ndarray, hop_s: float, file: str = "") -> ScoreTimeline:
    """Run *backend* over *samples* (model rate, mono) in windows every *hop_s* seconds.

    The log-mel is computed once over the whole recording, as the streaming
    front end does, and each window takes its consecutive frames. Recordings
    shorter than one window are padded with silence.
    """
    bundle = backend.bundle
    frontend = bundle.frontend
    hop_frames = round(hop_s * frontend.frame_rate)
    if hop_frames < 1 or abs(hop_frames / frontend.frame_rate - hop_s) > 1e-6:
        raise ConfigError(f"hop_s={hop_s!r} is not a whole number of log-mel frames ({1 / frontend.frame_rate:g} s each)")
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < bundle.window_samples:
        samples = np.pad(samples, (0, bundle.window_samples - len(samples)))
    logmel = LogMel(frontend)(samples)
    n_windows = 1 + (len(logmel) - bundle.window_frames) // hop_frames
    backend.reset()
    scores = np.stack(
        [backend(logmel[k * hop_frames : k * hop_frames + bundle.window_frames]) for k in range(n_windows)]
    ).astype(np.float32)
    times_s = (np.arange(n_windows) * hop_frames / frontend.frame_rate + bundle.stream.window_s / 2).astype(np.float64)
    return ScoreTimeline(file, times_s, scores, hop_s)


def track_timeline(
    timeline: ScoreTimeline, labels: Sequence[str], config: TrackerConfig
) -> list[tuple[float, float, str]]:
    """The complete events the tracker finds in *timeline*: [(onset_s, offset_s, label), ...]."""
    if not len(timeline.times_s):
        return []
    events = track_events(timeline.scores, labels, config, timeline.hop_s, first_time_s=float(timeline.times_s[0]))
    return [(e.onset, e.offset, e.label) for e in events if e.offset is not None]


def class_event_f1(
    references: References, estimates: References, labels: Sequence[str]
) -> dict[str, tuple[float, int]]:
    """Event-based F1 per class (sed_eval; onset collar 200 ms, offset collar
    max(200 ms, 20 % of the length)): label -> (F1, reference count).

    A class with no reference and no estimated event gets F1 ``nan``.
    """
    import sed_eval

    metrics = sed_eval.sound_event.EventBasedMetrics(
        list(labels), t_collar=T_COLLAR_S, percentage_of_length=OFFSET_COLLAR_SHARE
    )
    as_dicts = lambda name, rows: [  # noqa: E731
        {"filename": name, "event_label": label, "onset": onset, "offset": offset} for onset, offset, label in rows
    ]
    for name in sorted(set(references) | set(estimates)):
        metrics.evaluate(as_dicts(name, references.get(name, ())), as_dicts(name, estimates.get(name, ())))
    result = {}
    for label, values in metrics.results_class_wise_metrics().items():
        n_ref, n_sys = int(values["count"]["Nref"]), int(values["count"]["Nsys"])
        f1 = values["f_measure"]["f_measure"]
        result[label] = (float("nan") if n_ref + n_sys == 0 else 0.0 if np.isnan(f1) else float(f1), n_ref)
    return result


def _evaluate(
    timelines: Sequence[ScoreTimeline], references: References, labels: Sequence[str], config: TrackerConfig
) -> dict[str, tuple[float, int]]:
    estimates = {t.file: track_timeline(t, labels, config) for t in timelines}
    return class_event_f1({t.file: references.get(t.file, ()) for t in timelines}, estimates, labels)


def _macro(scores: Mapping[str, tuple[float, int]]) -> float:
    values = [f1 for f1, n_ref in scores.values() if n_ref > 0]
    return float(np.mean(values)) if values else float("nan")


def tune_tracker(
    timelines: Sequence[ScoreTimeline],
    references: References,
    labels: Sequence[str],
    grid: TuningGrid = TuningGrid(),
) -> TuningResult:
    """Per-class rules that maximise event-based F1 on *timelines* (validation data only).

    Returns the :class:`TrackerConfig` for the bundle: its default is the rule
    with the best macro F1; classes with at least ``grid.min_events_per_class``
    reference events get their own rule where it beats the default on them.
    """
    if not timelines:
        raise ConfigError("need at least one validation recording to tune the tracker")
    labels = tuple(labels)
    counts = {label: sum(1 for rows in references.values() for *_, name in rows if name == label) for label in labels}
    tunable = [label for label in labels if counts[label] >= grid.min_events_per_class]
    default = ClassRule(median_s=grid.median_s[0], min_duration_s=grid.min_duration_s[0], max_gap_s=grid.max_gap_s)
    rules: dict[str, ClassRule] = {}
    best_f1: dict[str, float] = {}
    stages = [
        [{"on_threshold": on, "off_threshold": on * ratio} for on in grid.on_thresholds for ratio in grid.off_ratios],
        [{"median_s": m} for m in grid.median_s],
        [{"min_duration_s": d} for d in grid.min_duration_s],
    ]
    for stage in stages:
        stage_default, stage_macro = default, -1.0
        for change in stage:
            shared = dataclasses.replace(default, **change)
            shared_scores = _evaluate(timelines, references, labels, TrackerConfig(shared))
            own = {label: dataclasses.replace(rule, **change) for label, rule in rules.items()}
            differing = tuple((label, rule) for label, rule in own.items() if rule != shared)
            own_scores = _evaluate(timelines, references, labels, TrackerConfig(shared, differing)) if differing else shared_scores
            if _macro(shared_scores) > stage_macro:
                stage_default, stage_macro = shared, _macro(shared_scores)
            for label in tunable:
                rule, f1 = (own[label], own_scores[label][0]) if label in own else (shared, shared_scores[label][0])
                if f1 > best_f1.get(label, -1.0):
                    best_f1[label], rules[label] = f1, rule
            log.info("tuning %s: macro F1 %.3f with one rule for all classes", change, _macro(shared_scores))
        default = stage_default
    tracker = TrackerConfig(default, tuple((label, rules[label]) for label in tunable if rules[label] != default))
    final = _evaluate(timelines, references, labels, tracker)
    return TuningResult(
        tracker=tracker,
        class_f1={label: f1 for label, (f1, _) in final.items()},
        macro_f1=_macro(final),
        default_macro_f1=_macro(_evaluate(timelines, references, labels, TrackerConfig())),
    )
