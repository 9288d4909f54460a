"""Multiply-adds vs mAP: cost and accuracy of every zoo model and precision.

Cost comes from :func:`edge_sed.models.macs.model_cost` (trainable params, true
MACs of the network and of PANNs' dense front end, PANNs-convention
multiply-adds), always for a 10 s clip so it compares with PANNs' Table XII.
Accuracy needs trained weights: every checkpoint given (and the shipped
default model) is exported to each precision (:mod:`edge_sed.bench.exports`)
and all precisions are scored on the same labelled clips by
:func:`quantize.report.compare_models` (a clip's scores are the mean of its
window scores, as the pipeline sees it; mAP over the classes present, top-1
accuracy). Untrained zoo entries get cost only: their mAP stays blank.
The labelled clips may also be an AudioSet segment list (``eval_segments.csv``,
audio beside it): multi-label, scored whole (fold 0), mAP with multi-hot
targets and accuracy = top-1 class among the clip's labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sed.audio import read_warning_summary
from edge_sed.bench.exports import INT8_PRECISIONS, PRECISIONS, calibration_csv, check_precisions, export_precisions
from edge_sed.bench.inputs import ESC50_HELD_OUT_FOLD, SHIPPED_MODEL, default_esc50_dir
from edge_sed.bench.plot import plot_macs_map
from edge_sed.bench.reference import PANNS_AUDIOSET, REFERENCE_CLIP_S
from edge_sed.bench.results import DEFAULT_RESULTS_DIR, BenchResult, Column, ProgressCallback, write_results
from edge_sed.errors import ConfigError, EdgeSedError
from quantize.audioset import is_segments_csv

__all__ = ["MacsMapConfig", "MACS_MAP_COLUMNS", "run_macs_map", "labelled_clips"]

#: Name of the plot written beside the JSON.
PLOT_NAME = "macs_map.png"

MACS_MAP_COLUMNS = (
    Column("model", "model"),
    Column("architecture", "architecture"),
    Column("precision", "precision"),
    Column("params", "params (M)", "{:.2f}", scale=1e-6),
    Column("macs_network", "MACs network (G)", "{:.3f}", scale=1e-9),
    Column("macs_frontend", "MACs front end (G)", "{:.3f}", scale=1e-9),
    Column("panns_multiply_adds", "PANNs mult-adds (G)", "{:.2f}", scale=1e-9),
    Column("mAP", "mAP", "{:.3f}"),
    Column("accuracy", "accuracy", "{:.3f}"),
    Column("eval_fold", "eval fold"),
)


@dataclass(frozen=True, slots=True)
class MacsMapConfig:
    """What ``bench macs-map`` measures.

    ``data`` is a folder holding ``metadata.csv``, a CSV of ``filename,label[,fold]``
    (default: the shared ESC-50) or an AudioSet segment list such as ``eval_segments.csv``
    (no folds: always scored whole, int8 calibrated on the shared ESC-50).
    ``fold`` keeps that fold (0: every clip); None scores each checkpoint on the ESC-50
    fold its training held out (``train_config.data.val_fold`` of an ``esc50`` run),
    else on ESC-50's held-out fold 5.
    ``max_clips`` > 0 keeps that many clips, evenly spread (quick runs).
    """

    data: str = ""
    fold: int | None = None
    models: tuple[str, ...] = ()  # zoo entries for cost rows; default: the whole zoo
    precisions: tuple[str, ...] = PRECISIONS
    checkpoints: tuple[tuple[str, str], ...] = ()  # (name, checkpoint path)
    include_shipped: bool = True
    max_clips: int = 0
    results_dir: str = str(DEFAULT_RESULTS_DIR)
    work_dir: str = ""

    def __post_init__(self) -> None:
        check_precisions(self.precisions)
        if (self.fold is not None and self.fold < 0) or self.max_clips < 0:
            raise ConfigError(f"fold and max_clips must be >= 0, got {self.fold!r}, {self.max_clips!r}")


def labelled_clips(config: MacsMapConfig, fold: int) -> tuple[list, str]:
    """The labelled clips of *fold* (0: all) to score, and a description of them."""
    from quantize.clips import list_clips

    csv_path = _metadata_csv(config)
    clips = list_clips(csv_path, fold=fold or None)
    if any(not clip.labels for clip in clips):
        raise ConfigError(f"{str(csv_path)!r} has no label column ('label' or 'category'); mAP needs labels")
    if config.max_clips and len(clips) > config.max_clips:
        step = len(clips) / config.max_clips
        clips = [clips[int(i * step)] for i in range(config.max_clips)]
    return clips, _dataset_name(csv_path) + (f" fold {fold}" if fold else "") + f" ({len(clips)} clips)"


def _dataset_name(csv_path: Path) -> str:
    """How rows and the plot name the labelled set: its folder, or "AudioSet <file>"."""
    return f"AudioSet {csv_path.name}" if is_segments_csv(csv_path) else csv_path.parent.name


def _metadata_csv(config: MacsMapConfig) -> Path:
    """The labelled set's CSV; :class:`ConfigError` saying what to give when it is missing."""
    source = Path(config.data) if config.data else default_esc50_dir()
    csv_path = source / "metadata.csv" if source.is_dir() else source
    if not csv_path.is_file():
        raise ConfigError(
            f"labelled data not found: {str(csv_path)!r} does not exist; give --data DIR "
            "(a folder with metadata.csv of filename,label,fold such as shared/data/esc50-subset, or such a CSV)"
        )
    return csv_path


def _calibration(config: MacsMapConfig, fold: int, work_dir: Path) -> Path | None:
    """The int8 calibration CSV (None when no int8 precision is asked for): a few clips of the
    labelled set's other folds, or of the shared ESC-50 for an AudioSet segment list (never
    calibrate on the evaluated clips)."""
    if not set(INT8_PRECISIONS) & set(config.precisions):
        return None
    metadata = _metadata_csv(config)
    if is_segments_csv(metadata):
        metadata, fold = default_esc50_dir() / "metadata.csv", 0
        if not metadata.is_file():
            raise ConfigError(f"int8 calibration for AudioSet needs the shared ESC-50 at {str(metadata)!r}; "
                              "set $EDGE_SED_DATA or leave onnx-int8 and tflite-int8 out of --precisions")
    return calibration_csv(metadata, work_dir, held_out_fold=fold)


def _held_out_fold(config: MacsMapConfig, info: dict[str, Any]) -> int:
    """``--fold`` if given, else 0 (every clip) for an AudioSet segment list, else the ESC-50
    fold the checkpoint's training held out (an ``esc50`` training run's ``val_fold``),
    else ESC-50's held-out fold 5."""
    if config.fold is not None:
        return config.fold
    if is_segments_csv(_metadata_csv(config)):
        return 0
    data = (info.get("train_config") or {}).get("data") or {}
    if data.get("kind") == "esc50" and data.get("val_fold"):
        return int(data["val_fold"])
    return ESC50_HELD_OUT_FOLD


def _cost_row(model: str, architecture: str, **cost_args: Any) -> dict[str, Any]:
    from edge_sed.models.macs import model_cost

    cost = model_cost(architecture, seconds=REFERENCE_CLIP_S, **cost_args)
    return {
        "model": model,
        "architecture": architecture,
        "params": cost.params,
        "macs_network": cost.macs_network,
        "macs_frontend": cost.macs_frontend,
        "panns_multiply_adds": cost.panns_multiply_adds,
        "clip_s": cost.seconds,
    }


def _scored_rows(name: str, cost: dict[str, Any], files: dict[str, Path], config: MacsMapConfig,
                 fold: int) -> list[dict[str, Any]]:
    """One row per precision file: the same clips scored by every file, in one call."""
    from quantize.report import compare_models

    clips, description = labelled_clips(config, fold)
    order = [p for p in PRECISIONS if p in files]
    report = compare_models([files[p] for p in order], clips, latency_runs=1)
    return [
        {**cost, "model": name, "precision": precision, "file": str(files[precision]),
         "mAP": row.mean_average_precision, "accuracy": row.accuracy, "eval_fold": fold,
         "eval_clips": report.n_clips, "evaluated_on": description}
        for precision, row in zip(order, report.models)
    ]


def _checkpoint_rows(name: str, checkpoint: str, config: MacsMapConfig, work_dir: Path) -> list[dict[str, Any]]:
    from edge_sed.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    fold = _held_out_fold(config, loaded.info)
    cost = _cost_row(name, loaded.architecture, frontend=loaded.frontend, num_classes=len(loaded.labels))
    calibration = _calibration(config, fold, work_dir / name)
    exported = export_precisions(checkpoint, config.precisions, work_dir / name, calibration=calibration)
    failed = [{**cost, "precision": p, "error": message} for p, message in exported.errors.items()]
    if not exported.files:
        return failed
    return _scored_rows(name, cost, exported.files, config, fold) + failed


def _shipped_rows(config: MacsMapConfig) -> list[dict[str, Any]]:
    from edge_sed.bundle import read_bundle

    bundle = read_bundle(SHIPPED_MODEL)
    cost = _cost_row("default", bundle.architecture, frontend=bundle.frontend, num_classes=len(bundle.labels))
    fold = _held_out_fold(config, {})
    return _scored_rows("default", cost, {f"onnx-{bundle.precision}": SHIPPED_MODEL}, config, fold)


@read_warning_summary("clips")
def run_macs_map(config: MacsMapConfig, *, progress: ProgressCallback | None = None) -> BenchResult:
    """Cost rows for the zoo, cost + mAP rows for each trained model and precision;
    write ``macs_map.json`` and the plot ``macs_map.png`` under ``config.results_dir``."""
    from edge_sed.models.registry import model_names

    csv_path = _metadata_csv(config)  # refuse a missing data set (or a fold it lacks) before any work
    if config.fold and is_segments_csv(csv_path):
        raise ConfigError(f"--fold {config.fold} given but the AudioSet segment list {str(csv_path)!r} has no folds; "
                          "leave --fold out (or give 0)")
    zoo = config.models or tuple(model_names())
    trained = list(config.checkpoints)
    shipped = config.include_shipped and SHIPPED_MODEL.is_file()
    total = len(zoo) + len(trained) + int(shipped)
    tick = progress or (lambda done, total, what: None)
    rows: list[dict[str, Any]] = []
    for index, name in enumerate(zoo):
        tick(index, total, f"counting {name}")
        rows.append({**_cost_row(name, name), "precision": ""})
    with contextlib.ExitStack() as stack:
        work_dir = Path(config.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-sed-bench-")))
        for index, (name, checkpoint) in enumerate(trained, start=len(zoo)):
            tick(index, total, f"exporting and scoring {name}")
            try:
                rows += _checkpoint_rows(name, checkpoint, config, work_dir)
            except EdgeSedError as exc:
                rows.append({"model": name, "checkpoint": checkpoint, "error": str(exc)})
    if shipped:
        tick(total - 1, total, "scoring the shipped default model")
        rows += _shipped_rows(config)
    tick(total, total, "plotting")
    folds = sorted({row["eval_fold"] for row in rows if "eval_fold" in row})
    dataset = _dataset_name(csv_path) + (f" fold {', '.join(map(str, folds))}" if folds and folds != [0] else "")
    plot = plot_macs_map(rows, Path(config.results_dir) / PLOT_NAME, dataset=dataset)
    settings = {
        **{key: value for key, value in dataclasses.asdict(config).items() if key not in ("results_dir", "work_dir")},
        "dataset": str(csv_path),
        "clip_s_for_costs": REFERENCE_CLIP_S,
        "protocol": ("clip score = mean of the model's window scores at its hop; mAP over the classes present; top-1 accuracy "
                     "(multi-label sets: multi-hot mAP, accuracy = top-1 class among the clip's labels)"),
        "plot": plot.name,
        "panns_reference": [dataclasses.asdict(point) for point in PANNS_AUDIOSET],
    }
    path = write_results("macs_map", rows, settings=settings, results_dir=config.results_dir)
    return BenchResult(path, rows, [])


