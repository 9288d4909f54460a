"""fp32 vs int8, side by side: file size, latency per window, accuracy, agreement.

:func:`compare_models` runs every model file (ONNX or TFLite, through
:func:`edge_sed.backends.load_backend`, one thread) on the same windows of a
labelled set of real clips. A clip's scores are the mean of its window scores.
Latency is the median of many single-window runs, the models interleaved
round by round, so the ratios come from one run on one machine.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sed.audio import read_warning_summary
from edge_sed.backends import Backend, load_backend
from edge_sed.bench.inputs import default_esc50_dir
from edge_sed.errors import ModelError
from edge_sed.frontend import LogMel
from edge_sed.soundscape import ESC50_HELD_OUT_FOLD
from quantize.clips import Clip, clip_windows, list_clips

__all__ = [
    "ESC50_METADATA",
    "ESC50_HELD_OUT_FOLD",
    "ModelRow",
    "Agreement",
    "DECIDED_MARGIN",
    "QuantizeReport",
    "ScoredClips",
    "default_labelled_clips",
    "score_clips",
    "accuracy_and_map",
    "compare_models",
    "format_report",
]

log = logging.getLogger(__name__)

#: The project's ESC-50 copy (the shared data beside the repository, or under $EDGE_SED_DATA).
ESC50_METADATA = default_esc50_dir() / "metadata.csv"


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One model file's measurements."""

    path: str
    precision: str
    runtime: str
    size_bytes: int
    latency_ms: float
    latency_min_ms: float
    accuracy: float | None
    mean_average_precision: float | None


#: A clip is *decided* when the first model's top score beats the second by at least this much;
#: below it, top-1 is a near-tie that int8 rounding may flip either way (on ESC-50 fold 5 it moved
#: the clip scores of an all-int8 copy of the shipped model by 0.06 at the 99th percentile, 0.09 at most).
DECIDED_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Agreement:
    """One model against an earlier one in the list (every pair): clip-level scores."""

    reference: str
    candidate: str
    top1_agreement: float
    decided_clips: int  # clips whose first-model top-2 margin is >= DECIDED_MARGIN
    top1_agreement_decided: float | None  # top-1 agreement on those clips
    max_abs_diff: float
    mean_abs_diff: float
    size_ratio: float
    latency_ratio: float
    accuracy_drop_relative: float | None
    map_drop_relative: float | None
    clips_lost: int | None = None  # labelled clips the reference gets right and the candidate wrong
    clips_gained: int | None = None  # ... and the other way round
    mcnemar_p: float | None = None  # exact two-sided McNemar test on those clips: is the difference chance?


@dataclass(frozen=True, slots=True)
class QuantizeReport:
    """Everything ``edge-sed quantize --report`` prints (and writes as JSON)."""

    clips: str
    n_clips: int
    n_windows: int
    labelled: bool
    note: str
    models: tuple[ModelRow, ...]
    agreements: tuple[Agreement, ...]
    latency_runs: int
    threads: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_labelled_clips() -> tuple[list[Clip], str, str]:
    """ESC-50's held-out fold when the shared data is there: (clips, description, note)."""
    if ESC50_METADATA.is_file():
        clips = list_clips(ESC50_METADATA, fold=ESC50_HELD_OUT_FOLD)
        return clips, f"{ESC50_METADATA} fold {ESC50_HELD_OUT_FOLD}", ""
    return [], "", f"ESC-50 not found at {ESC50_METADATA}: no labelled set, accuracy not measured"


def _clip_scores(backends: Sequence[Backend], clips: Sequence[Clip]) -> tuple[list[np.ndarray], int]:
    bundle = backends[0].bundle
    logmel = LogMel(bundle.frontend)
    scores: list[list[np.ndarray]] = [[] for _ in backends]
    n_windows = 0
    for clip in clips:
        windows = clip_windows(clip, bundle, logmel)
        n_windows += len(windows)
        for per_model, backend in zip(scores, backends):
            per_model.append(np.mean([backend(window) for window in windows], axis=0))
    return [np.stack(rows) for rows in scores], n_windows


def _latency_ms(backends: Sequence[Backend], window: np.ndarray, runs: int) -> list[tuple[float, float]]:
    """(median, min) milliseconds per window for each backend, interleaved run by run."""
    for backend in backends:  # warm up
        for _ in range(10):
            backend(window)
    times = np.zeros((runs, len(backends)))
    for run in range(runs):
        for index, backend in enumerate(backends):
            start = time.perf_counter()
            backend(window)
            times[run, index] = time.perf_counter() - start
    return [(float(median), float(least)) for median, least in zip(np.median(times, axis=0) * 1e3, times.min(axis=0) * 1e3)]


def accuracy_and_map(scores: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy and macro mAP over the classes that occur in *target* (from :func:`_targets`).

    With several labels a clip counts as right when its top-1 class is one of them, and mAP
    is PANNs' multi-label one: each class's average precision on multi-hot targets, averaged
    over the classes present. With one label per clip both are the usual single-label top-1
    accuracy and mAP.
    """
    from edge_sed.train.metrics import average_precision  # numpy/scipy; scikit-learn's definition

    accuracy = float(np.mean(_top1_correct(scores, target)))
    present = np.flatnonzero(target.any(axis=0))
    mean_ap = float(np.mean([average_precision(target[:, k], scores[:, k]) for k in present]))
    return accuracy, mean_ap


def _targets(shape: tuple[int, ...], labels: Sequence[str], truth: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Multi-hot targets, shape (clips, classes), bool: *truth* holds each clip's labels, all of them in *labels*."""
    index = {label: i for i, label in enumerate(labels)}
    target = np.zeros(shape, dtype=bool)
    for row, clip_labels in zip(target, truth):
        row[[index[label] for label in clip_labels]] = True
    return target


def _top1_correct(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per clip: is the top-1 class one of its labels? shape (clips,), bool."""
    return target[np.arange(len(target)), scores.argmax(axis=1)]


def _paired_accuracy(reference: np.ndarray, candidate: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Clips the *candidate* gets wrong that the *reference* gets right and the other way
    round, with an exact (binomial) McNemar test: ``clips_lost``, ``clips_gained``, ``mcnemar_p``.

    Only the clips where they differ carry information; under "both are equally
    accurate" each of those goes either way with probability 1/2.
    """
    from scipy.stats import binomtest

    right_before, right_after = _top1_correct(reference, target), _top1_correct(candidate, target)
    lost, gained = int(np.sum(right_before & ~right_after)), int(np.sum(~right_before & right_after))
    p = binomtest(min(lost, gained), lost + gained, 0.5).pvalue if lost + gained else 1.0
    return {"clips_lost": lost, "clips_gained": gained, "mcnemar_p": float(p)}


def _model_clips(clips: Sequence[Clip], labels: Sequence[str], note: str) -> tuple[list[Clip], bool, str]:
    """The clips to measure on: the labelled ones of the model's classes, else all (unlabelled).

    Labels that are not model classes are dropped from a clip; clips with none left are dropped.
    """
    notes = [note] if note else []
    if not clips or any(not clip.labels for clip in clips):
        return list(clips), False, note
    known = set(labels)
    kept = [dataclasses.replace(clip, labels=tuple(label for label in clip.labels if label in known)) for clip in clips]
    kept = [clip for clip in kept if clip.labels]
    if not kept:
        notes.append("no clip is of the model's classes: accuracy not measured")
        return list(clips), False, "; ".join(notes)
    if any(len(clip.labels) > 1 for clip in clips):
        dropped = sum(len(clip.labels) for clip in clips) - sum(len(clip.labels) for clip in kept)
        notes.append(f"multi-label: measured on the {len(kept)} of {len(clips)} clips with a label among the model's classes "
                     f"({dropped} labels outside them dropped); accuracy = share of clips whose top-1 class is one of their labels; "
                     "mAP over the classes present, multi-hot targets")
    elif len(kept) < len(clips):
        notes.append(f"measured on the {len(kept)} of {len(clips)} clips whose label is one of the model's classes")
    return kept, True, "; ".join(notes)


def _relative_drop(reference: float | None, candidate: float | None) -> float | None:
    if reference is None or candidate is None or reference == 0:
        return None
    return (reference - candidate) / reference


@dataclass(frozen=True, slots=True)
class ScoredClips:
    """Clip scores of several models on the same clips (see :func:`score_clips`)."""

    clips: list[Clip]
    scores: list[np.ndarray]  # per model, shape (clips, classes)
    target: np.ndarray | None  # multi-hot, shape (clips, classes); None when the clips are unlabelled
    n_windows: int
    note: str


def score_clips(backends: Sequence[Backend], clips: Sequence[Clip], *, note: str = "") -> ScoredClips:
    """Score *clips* with each backend (models of one set of labels): a clip's scores are the mean
    of its window scores. Labelled clips are kept to the models' classes (:func:`_model_clips`)."""
    labels = backends[0].bundle.labels
    kept, labelled, note = _model_clips(clips, labels, note)
    scores, n_windows = _clip_scores(backends, kept)
    target = _targets(scores[0].shape, labels, [clip.labels for clip in kept]) if labelled else None
    return ScoredClips(kept, scores, target, n_windows, note)


@read_warning_summary("clips")
def compare_models(
    models: Sequence[str | Path],
    clips: Sequence[Clip],
    *,
    clips_description: str = "",
    note: str = "",
    latency_runs: int = 300,
) -> QuantizeReport:
    """Measure *models* (the first is usually fp32) on the same clips, and compare every pair.

    Parameters
    ----------
    models : ``.onnx`` / ``.tflite`` bundles of the same model, same labels
    clips : real clips; with labels, accuracy and mAP are measured too (see :func:`accuracy_and_map`
        for clips with several labels)
    latency_runs : single-window runs per model for the median latency
    """
    backends = [load_backend(path, threads=1) for path in models]
    for path, backend in zip(models, backends):
        if backend.bundle.labels != backends[0].bundle.labels:
            raise ModelError(f"{str(path)!r} has other labels than {str(models[0])!r}; compare exports of one model")
    scored = score_clips(backends, clips, note=note)
    scores, target = scored.scores, scored.target
    window = clip_windows(scored.clips[0], backends[0].bundle)[0]
    latencies = _latency_ms(backends, window, latency_runs)
    rows = []
    for path, backend, model_scores, latency in zip(models, backends, scores, latencies):
        accuracy, mean_ap = accuracy_and_map(model_scores, target) if target is not None else (None, None)
        rows.append(
            ModelRow(
                path=str(path),
                precision=backend.bundle.precision,
                runtime=type(backend).__name__.removesuffix("Backend"),
                size_bytes=Path(path).stat().st_size,
                latency_ms=latency[0],
                latency_min_ms=latency[1],
                accuracy=accuracy,
                mean_average_precision=mean_ap,
            )
        )
    decided = _decided(scores[0])
    agreements = tuple(
        _agreement(rows[i], rows[j], scores[i], scores[j], decided, target)
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
    )
    return QuantizeReport(
        clips=clips_description,
        n_clips=len(scored.clips),
        n_windows=scored.n_windows,
        labelled=target is not None,
        note=scored.note,
        models=tuple(rows),
        agreements=agreements,
        latency_runs=latency_runs,
    )


def _decided(scores: np.ndarray) -> np.ndarray:
    """Clips whose top score beats the runner-up by at least :data:`DECIDED_MARGIN` (all, for one class)."""
    if scores.shape[1] < 2:
        return np.ones(len(scores), dtype=bool)
    top2 = np.sort(scores, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0] >= DECIDED_MARGIN


def _agreement(
    reference: ModelRow,
    candidate: ModelRow,
    reference_scores: np.ndarray,
    scores: np.ndarray,
    decided: np.ndarray,
    target: np.ndarray | None,
) -> Agreement:
    difference = np.abs(scores - reference_scores)
    same_top1 = reference_scores.argmax(axis=1) == scores.argmax(axis=1)
    return Agreement(
        reference=reference.path,
        candidate=candidate.path,
        top1_agreement=float(np.mean(same_top1)),
        decided_clips=int(decided.sum()),
        top1_agreement_decided=float(np.mean(same_top1[decided])) if decided.any() else None,
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        size_ratio=candidate.size_bytes / reference.size_bytes,
        latency_ratio=candidate.latency_ms / reference.latency_ms,
        accuracy_drop_relative=_relative_drop(reference.accuracy, candidate.accuracy),
        map_drop_relative=_relative_drop(reference.mean_average_precision, candidate.mean_average_precision),
        **({} if target is None else _paired_accuracy(reference_scores, scores, target)),
    )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _paired_text(agreement: Agreement) -> str:
    if agreement.mcnemar_p is None:
        return ""
    return f" ({agreement.clips_lost} clips lost, {agreement.clips_gained} gained, McNemar p={agreement.mcnemar_p:.2f})"


def format_report(report: QuantizeReport) -> str:
    """The report as a plain-text table (what the CLI prints)."""
    lines = [
        f"clips: {report.clips or 'n/a'} ({report.n_clips} clips, {report.n_windows} windows)",
        f"{'model':<44} {'precision':<9} {'runtime':<8} {'size':>10} {'ms/window':>10} {'min ms':>7} {'accuracy':>9} {'mAP':>7}",
    ]
    for row in report.models:
        lines.append(
            f"{Path(row.path).name:<44} {row.precision:<9} {row.runtime:<8} {row.size_bytes / 1024:>8.1f}kB "
            f"{row.latency_ms:>10.3f} {row.latency_min_ms:>7.3f} {_fmt(row.accuracy, '.4f'):>9} {_fmt(row.mean_average_precision, '.4f'):>7}"
        )
    for agreement in report.agreements:
        lines.append(
            f"{Path(agreement.candidate).name} vs {Path(agreement.reference).name}: "
            f"top-1 agreement {agreement.top1_agreement:.4f} ({_fmt(agreement.top1_agreement_decided, '.4f')} on the "
            f"{agreement.decided_clips} clips with a top-2 margin >= {DECIDED_MARGIN}), |score diff| max {agreement.max_abs_diff:.4f} "
            f"mean {agreement.mean_abs_diff:.5f}, size x{agreement.size_ratio:.3f}, latency x{agreement.latency_ratio:.3f}, "
            f"accuracy drop {_fmt(agreement.accuracy_drop_relative, '.2%')}{_paired_text(agreement)}, "
            f"mAP drop {_fmt(agreement.map_drop_relative, '.2%')}"
        )
    lines.append(f"latency: median (and min) of {report.latency_runs} single-window runs, {report.threads} thread")
    if report.note:
        lines.append(f"note: {report.note}")
    return "\n".join(lines)
