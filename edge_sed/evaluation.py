"""Sound event detection metrics and DCASE annotation files.

- :func:`read_tsv` / :func:`write_tsv`: DCASE ``filename onset offset event_label`` files.
- :func:`event_based_scores`: sed_eval's event-based F1 with the DCASE collars
  (onset 200 ms; offset 200 ms or 20 % of the reference event's length).
- :func:`segment_based_scores`: sed_eval's segment-based F1 (1 s segments).
- :func:`psds`: sed_scores_eval's PSDS over frame scores (DCASE scenario 1 by default).
- :func:`tune_tracker`: per-class on-threshold and median length that maximise
  event-based F1 on scored recordings (:func:`edge_sed.tracker.track_events`).

Events are :class:`~edge_sed.events.Event` values; ``Event.file`` says which
recording an event belongs to (``None`` counts as one recording). The metric
libraries come with the ``[train]`` extra and are imported when first used.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edge_sed.config import TrackerConfig
from edge_sed.errors import ConfigError, require
from edge_sed.events import Event
from edge_sed.sinks import TSV_HEADER, TsvSink
from edge_sed.tracker import track_events

__all__ = [
    "read_tsv",
    "write_tsv",
    "SedScores",
    "event_based_scores",
    "segment_based_scores",
    "psds",
    "tune_tracker",
    "ONSET_COLLAR_S",
    "OFFSET_COLLAR_RATE",
]

#: DCASE's event-based collars: onsets within 200 ms, offsets within 200 ms or 20 % of the event's length.
ONSET_COLLAR_S = 0.2
OFFSET_COLLAR_RATE = 0.2
#: The grid :func:`tune_tracker` searches by default.
ON_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
MEDIAN_S = (0.0, 0.5, 1.0, 2.0)
#: DCASE's segment length for segment-based metrics.
SEGMENT_S = 1.0
_NO_FILE = ""


def read_tsv(path: str | Path) -> list[Event]:
    """Read a DCASE annotation or detection file (tab-separated ``filename onset offset event_label``).

    A header row is optional; rows with a filename only (a recording without
    events) are skipped. Returns the events with ``file`` set, in file order.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read annotations {str(path)!r}: {exc.strerror or exc}") from None
    events = []
    for number, line in enumerate(lines, start=1):
        row = line.split("\t")
        if (number == 1 and line == TSV_HEADER) or not line.strip() or len(row) == 1 or (len(row) == 4 and not row[3]):
            continue
        try:
            filename, onset, offset, label = row
            events.append(Event(label, float(onset), float(offset), 1.0, file=filename))
        except ValueError:
            raise ConfigError(
                f"{str(path)!r} line {number}: expected 'filename<TAB>onset<TAB>offset<TAB>event_label', got {line!r}"
            ) from None
    return events


def write_tsv(events: Iterable[Event], path: str | Path, *, filename: str | None = None) -> None:
    """Write the complete *events* as a DCASE TSV file (the ``tsv`` sink's format).

    Events without a ``file`` get *filename*.
    """
    with open(path, "w", encoding="utf-8") as stream:
        sink = TsvSink(stream, filename=filename)
        for event in events:
            sink.emit(event)


@dataclass(frozen=True, slots=True)
class SedScores:
    """Overall (micro-averaged over events or segments) and per-class results."""

    f1: float
    precision: float
    recall: float
    error_rate: float
    class_f1: dict[str, float]

    @property
    def macro_f1(self) -> float:
        """F1 averaged over classes."""
        return float(np.nanmean(list(self.class_f1.values()))) if self.class_f1 else float("nan")


def _sed_eval() -> Any:
    with warnings.catch_warnings():  # dcase_util imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        return require("sed_eval", what="event-based evaluation", extra="train")


def _by_file(events: Iterable[Event]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event.offset is None:
            continue
        name = event.file or _NO_FILE
        grouped[name].append({"filename": name, "event_label": event.label, "onset": event.onset, "offset": event.offset})
    return grouped


def _labels(labels: Sequence[str] | None, *event_lists: Sequence[Event]) -> list[str]:
    if labels is not None:
        return list(labels)
    return sorted({event.label for events in event_lists for event in events})


def _evaluate(metrics: Any, reference: Sequence[Event], estimated: Sequence[Event]) -> SedScores:
    truth, found = _by_file(reference), _by_file(estimated)
    for name in sorted(set(truth) | set(found)):
        metrics.evaluate(reference_event_list=truth.get(name, []), estimated_event_list=found.get(name, []))
    overall = metrics.results_overall_metrics()
    class_wise = metrics.results_class_wise_metrics()
    return SedScores(
        f1=float(overall["f_measure"]["f_measure"]),
        precision=float(overall["f_measure"]["precision"]),
        recall=float(overall["f_measure"]["recall"]),
        error_rate=float(overall["error_rate"]["error_rate"]),
        class_f1={label: float(result["f_measure"]["f_measure"]) for label, result in class_wise.items()},
    )


def event_based_scores(
    reference: Sequence[Event],
    estimated: Sequence[Event],
    *,
    labels: Sequence[str] | None = None,
    onset_collar_s: float = ONSET_COLLAR_S,
    offset_collar_rate: float = OFFSET_COLLAR_RATE,
) -> SedScores:
    """Event-based F1 (sed_eval): a detection matches a reference event of its
    class whose onset is within *onset_collar_s* and whose offset is within
    ``max(onset_collar_s, offset_collar_rate * reference length)``.

    Onset notifications (``offset is None``) are ignored; *labels* defaults to
    every label seen.
    """
    sed_eval = _sed_eval()
    metrics = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=_labels(labels, reference, estimated),
        t_collar=onset_collar_s,
        percentage_of_length=offset_collar_rate,
        evaluate_onset=True,
        evaluate_offset=True,
    )
    return _evaluate(metrics, reference, estimated)


def segment_based_scores(
    reference: Sequence[Event],
    estimated: Sequence[Event],
    *,
    labels: Sequence[str] | None = None,
    segment_s: float = SEGMENT_S,
) -> SedScores:
    """Segment-based F1 (sed_eval): activity compared class by class in *segment_s* segments."""
    sed_eval = _sed_eval()
    metrics = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=_labels(labels, reference, estimated), time_resolution=segment_s
    )
    return _evaluate(metrics, reference, estimated)


def psds(
    scores: Mapping[str, np.ndarray],
    reference: Sequence[Event],
    durations_s: Mapping[str, float],
    labels: Sequence[str],
    hop_s: float,
    *,
    first_time_s: float | None = None,
    dtc_threshold: float = 0.7,
    gtc_threshold: float = 0.7,
    alpha_st: float = 1.0,
    max_efpr: float = 100.0,
) -> float:
    """Polyphonic Sound Detection Score (sed_scores_eval), threshold-free.

    Parameters
    ----------
    scores : mapping of str to ndarray, shape (frames, classes)
        Frame scores per recording (``Event.file`` names), one row every
        *hop_s*, the first centred at *first_time_s* (default ``hop_s / 2``, as
        in :func:`edge_sed.tracker.track_events`).
    reference : sequence of Event
        Ground truth.
    durations_s : mapping of str to float
        Length of each recording, seconds.
    dtc_threshold, gtc_threshold, alpha_st, max_efpr
        PSDS parameters; the defaults are DCASE's scenario 1.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sed_scores_eval = require("sed_scores_eval", what="PSDS evaluation", extra="train")
        import sed_scores_eval.base_modules.scores  # noqa: F401  (not imported by the package)
    first = hop_s / 2 if first_time_s is None else first_time_s
    frames = {}
    for name, matrix in scores.items():
        boundaries = first - hop_s / 2 + np.arange(len(matrix) + 1) * hop_s
        frames[name] = sed_scores_eval.base_modules.scores.create_score_dataframe(np.asarray(matrix), boundaries, list(labels))
    truth: dict[str, list[tuple[float, float, str]]] = {name: [] for name in scores}
    for event in reference:
        truth.setdefault(event.file or _NO_FILE, []).append((event.onset, event.offset, event.label))
    value, *_ = sed_scores_eval.intersection_based.psds(
        frames,
        truth,
        dict(durations_s),
        dtc_threshold=dtc_threshold,
        gtc_threshold=gtc_threshold,
        alpha_st=alpha_st,
        max_efpr=max_efpr,
    )
    return float(value)


def tune_tracker(
    scores: Mapping[str, np.ndarray],
    reference: Sequence[Event],
    labels: Sequence[str],
    hop_s: float,
    *,
    base: TrackerConfig = TrackerConfig(),
    on_thresholds: Sequence[float] = ON_THRESHOLDS,
    median_s: Sequence[float] = MEDIAN_S,
    first_time_s: float | None = None,
) -> tuple[TrackerConfig, dict[str, float]]:
    """Pick, class by class, the on-threshold and median length with the best event-based F1.

    Every other rule field comes from *base*; the off-threshold keeps *base*'s
    ratio to the on-threshold. Ties go to the earlier grid point.

    Parameters
    ----------
    scores : mapping of str to ndarray, shape (frames, classes)
        Frame scores per recording, as for :func:`psds`.
    reference : sequence of Event
        Ground truth (``Event.file`` names the recording).
    labels, hop_s, first_time_s
        As for :func:`edge_sed.tracker.track_events`.

    Returns
    -------
    (TrackerConfig, dict of str to float)
        *base* with one tuned rule per class, and each class's event F1 with it.
    """
    if not on_thresholds or not median_s:
        raise ConfigError(f"tune_tracker needs grid points, got on_thresholds={on_thresholds!r}, median_s={median_s!r}")
    tuned, best_f1 = [], {}
    for c, label in enumerate(labels):
        rule = base.rule(label)
        truth = [event for event in reference if event.label == label]
        best = None
        for median in median_s:
            for on in on_thresholds:
                off = on * rule.off_threshold / rule.on_threshold if rule.on_threshold else on
                candidate = dataclasses.replace(rule, on_threshold=on, off_threshold=off, median_s=median)
                single = TrackerConfig(default=candidate)
                found = [
                    dataclasses.replace(event, file=name)
                    for name, matrix in scores.items()
                    for event in track_events(np.asarray(matrix)[:, [c]], [label], single, hop_s, first_time_s=first_time_s)
                ]
                f1 = event_based_scores(truth, found, labels=[label]).class_f1[label]
                rank = f1 if not np.isnan(f1) else float(not truth and not found)  # no events and none found: right
                if best is None or rank > best[0]:
                    best = (rank, f1, candidate)
        _, best_f1[label], tuned_rule = best  # type: ignore[misc]
        tuned.append((label, tuned_rule))
    return dataclasses.replace(base, per_class=tuple(tuned)), best_f1
