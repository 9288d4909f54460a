"""Model files for every precision a benchmark compares, made with ``quantize``.

``torch-fp32`` is the checkpoint itself; ``onnx-fp32`` is
:func:`quantize.export.export_onnx`; ``onnx-int8`` is
:func:`quantize.onnx_int8.quantize_onnx` calibrated on real clips;
``tflite-int8`` is :func:`quantize.tflite.export_tflite`. A precision that cannot
be made here (for example TFLite export without the ``[tflite-export]`` extra)
is reported with its one-line reason; the others still run.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from edge_sed.errors import ConfigError, EdgeSedError

__all__ = ["PRECISIONS", "check_precisions", "ModelFiles", "random_checkpoint", "calibration_csv", "export_precisions"]

log = logging.getLogger(__name__)

PRECISIONS = ("torch-fp32", "onnx-fp32", "onnx-int8", "tflite-int8")
#: The precisions that need calibration clips.
INT8_PRECISIONS = ("onnx-int8", "tflite-int8")
#: Calibration clips per class taken from the training folds.
CALIBRATION_CLIPS_PER_CLASS = 2


def check_precisions(precisions: Sequence[str], *, what: str = "precision") -> None:
    """:class:`ConfigError` naming the first unknown precision and the known ones."""
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise ConfigError(f"unknown {what} {unknown[0]!r}; known: {', '.join(PRECISIONS)}")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """One checkpoint's files by precision, and why any precision is missing."""

    checkpoint: Path
    files: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def random_checkpoint(name: str, work_dir: str | Path) -> Path:
    """A randomly initialised zoo model *name* (527 AudioSet classes) saved as an
    edge-sed checkpoint: what speed measurements need, since weights do not change speed."""
    from edge_sed.labels import audioset_labels
    from edge_sed.models.checkpoint import save_checkpoint
    from edge_sed.models.registry import build_model

    return save_checkpoint(Path(work_dir) / f"{name}.pth", build_model(name), labels=audioset_labels())


def calibration_csv(metadata: str | Path, work_dir: str | Path, *, held_out_fold: int) -> Path:
    """A CSV of a few clips per class from every fold but *held_out_fold* (never calibrate on the test fold)."""
    metadata = Path(metadata)
    with metadata.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "filename" not in rows[0]:
        raise ConfigError(f"{str(metadata)!r} has no 'filename' column of clips to calibrate on; give a metadata.csv with filename,label,fold")
    taken: dict[str, int] = {}
    kept = []
    for row in rows:
        label = row.get("label", "")
        if int(row.get("fold", 0) or 0) != held_out_fold and taken.get(label, 0) < CALIBRATION_CLIPS_PER_CLASS:
            taken[label] = taken.get(label, 0) + 1
            kept.append({"filename": str((metadata.parent / row["filename"]).resolve()), "label": label})
    path = Path(work_dir) / "calibration.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["filename", "label"])
        writer.writeheader()
        writer.writerows(kept)
    return path


def export_precisions(
    checkpoint: str | Path,
    precisions: Sequence[str],
    work_dir: str | Path,
    *,
    calibration: str | Path | None,
    window_s: float | None = None,
) -> ModelFiles:
    """Make one file per precision of *checkpoint* under *work_dir*.

    Parameters
    ----------
    checkpoint : a PANNs or edge-sed checkpoint
    precisions : some of :data:`PRECISIONS`
    work_dir : where the files go (``<stem>.fp32.onnx``, ``<stem>.int8.onnx``, ``<stem>.int8.tflite``)
    calibration : folder or CSV of real clips for int8 calibration (None: no int8 precision asked for)
    window_s : the exported models' window (default: the checkpoint's own)
    """
    int8 = [p for p in precisions if p in INT8_PRECISIONS]
    if int8 and calibration is None:
        raise ConfigError(f"{', '.join(int8)} need calibration clips; give a folder or CSV of real audio")
    checkpoint, work_dir = Path(checkpoint), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {"torch-fp32": checkpoint} if "torch-fp32" in precisions else {}
    errors: dict[str, str] = {}
    if set(precisions) - {"torch-fp32"}:
        _export_files(checkpoint, precisions, work_dir, calibration, window_s, files, errors)
    for precision, message in errors.items():
        log.warning("%s %s: %s", checkpoint.stem, precision, message)
    return ModelFiles(checkpoint, files, errors)


def _export_files(
    checkpoint: Path, precisions: Sequence[str], work_dir: Path, calibration: str | Path | None,
    window_s: float | None, files: dict[str, Path], errors: dict[str, str],
) -> None:
    from quantize.clips import calibration_windows, list_clips
    from quantize.export import export_onnx

    stem = checkpoint.stem
    try:
        exported = export_onnx(checkpoint, work_dir / f"{stem}.fp32.onnx", stream_overrides={"window_s": window_s})
    except EdgeSedError as exc:
        errors.update({p: f"ONNX export failed: {exc}" for p in precisions if p != "torch-fp32"})
        return
    if "onnx-fp32" in precisions:
        files["onnx-fp32"] = exported.path
    if not set(INT8_PRECISIONS) & set(precisions):
        return
    windows = calibration_windows(list_clips(calibration), exported.bundle)
    if "onnx-int8" in precisions:
        from quantize.onnx_int8 import quantize_onnx

        try:
            quantize_onnx(exported.path, work_dir / f"{stem}.int8.onnx", windows)
            files["onnx-int8"] = work_dir / f"{stem}.int8.onnx"
        except EdgeSedError as exc:
            errors["onnx-int8"] = str(exc)
    if "tflite-int8" in precisions:
        from quantize.tflite import export_tflite

        try:
            export_tflite(checkpoint, work_dir / f"{stem}.int8.tflite", exported.bundle, windows)
            files["tflite-int8"] = work_dir / f"{stem}.int8.tflite"
        except EdgeSedError as exc:
            errors["tflite-int8"] = str(exc)
