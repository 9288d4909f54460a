"""Sound event detection metrics and DCASE annotation files.

- :func:`read_tsv` / :func:`write_tsv`: DCASE ``filename onset offset event_label`` files.
- :func:`event_based_scores`: sed_eval's event-based F1 with the DCASE collars
  (onset 200 ms; offset 200 ms or 20 % of the reference event's length).
- :func:`segment_based_scores`: sed_eval's segment-based F1 (1 s segments).
- :func:`psds`: sed_scores_eval's PSDS over frame scores (DCASE scenario 1 by default).

Events are :class:`~edge_sed.events.Event` values; ``Event.file`` says which
recording an event belongs to (``None`` counts as one recording). The metric
libraries come with the ``[train]`` extra and are imported when first used.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edge_sed.errors import ConfigError, require
from edge_sed.events import Event
from edge_sed.sinks import TSV_HEADER, TsvSink

__all__ = [
    "read_tsv",
    "write_tsv",
    "SedScores",
    "event_based_scores",
    "segment_based_scores",
    "psds",
    "ONSET_COLLAR_S",
    "OFFSET_COLLAR_RATE",
]

#: DCASE's event-based collars: onsets within 200 ms, offsets within 200 ms or 20 % of the event's length.
ONSET_COLLAR_S = 0.2
OFFSET_COLLAR_RATE = 0.2
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
