"""``edge-sed quantize`` as one call: calibrate, write int8 ONNX (and TFLite), report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_sed.bundle import ModelBundle
from edge_sed.errors import ConfigError
from quantize.clips import CALIBRATION_WINDOWS, Clip, calibration_windows, list_clips
from quantize.export import onnx_output
from quantize.onnx_int8 import fp32_bundle, quantize_onnx
from quantize.report import QuantizeReport, compare_models, default_labelled_clips

if TYPE_CHECKING:
    from quantize.qat import QatJob

__all__ = ["QuantizeResult", "quantize_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuantizeResult:
    """The files written and, when asked for, the fp32-vs-int8 report."""

    onnx_int8: Path
    bundle: ModelBundle
    tflite_int8: Path | None = None
    report: QuantizeReport | None = None


def quantize_model(
    model: str | Path,
    output: str | Path,
    calibration: str | Path,
    *,
    max_windows: int = CALIBRATION_WINDOWS,
    tflite_checkpoint: str | Path | None = None,
    qat: QatJob | None = None,
    keep_float: Sequence[str] = (),
    report: bool = False,
    labelled: str | Path | None = None,
    fold: int | None = None,
    latency_runs: int = 300,
) -> QuantizeResult:
    """Quantize an fp32 ONNX bundle to int8 (ONNX Runtime QDQ, and TFLite when asked).

    Parameters
    ----------
    model : fp32 ``.onnx`` bundle from ``edge-sed export``
    output : the int8 ``.onnx`` to write; the TFLite model goes beside it as
        ``<stem>.tflite`` (with ``<stem>.tflite.json``)
    calibration : folder or CSV of real audio (see :func:`quantize.clips.list_clips`)
    max_windows : calibration windows drawn from it
    tflite_checkpoint : the source checkpoint; given, an int8 TFLite model is written too
    qat : fine-tune the TFLite model with fake quantization (:mod:`quantize.qat`)
        instead of calibrating it after training
    keep_float : torch module paths left in float in the ONNX int8 model
        (:func:`quantize.onnx_int8.quantize_onnx`)
    report : measure fp32 vs int8 on *labelled* (default: ESC-50's held-out fold)
    labelled, fold : the labelled clip set (folder or CSV) and the CSV fold to keep
    latency_runs : single-window runs per model for the latency medians
    """
    if max_windows < 1:
        raise ConfigError(f"need at least 1 calibration window, got {max_windows}")
    output = onnx_output(output, "int8 output")
    fp32 = fp32_bundle(model)
    if tflite_checkpoint is not None:  # every input checked before anything is written
        from quantize.tflite import check_tflite_source, export_tflite

        check_tflite_source(tflite_checkpoint, fp32)
    calibration_clips = list_clips(calibration)
    clips: list[Clip] = []
    if report:  # the clips to score, listed before anything is written
        if labelled is not None:
            clips, description, note = list_clips(labelled, fold=fold), f"{labelled}" + (f" fold {fold}" if fold else ""), ""
        else:
            clips, description, note = default_labelled_clips()
            if not clips:
                clips, description = calibration_clips, f"{calibration} (calibration clips, unlabelled)"
        if clips is not calibration_clips:
            note = "; ".join(filter(None, [note, _calibrated_on(clips, calibration_clips)]))
    windows = calibration_windows(calibration_clips, fp32, max_windows=max_windows)
    int8 = quantize_onnx(model, output, windows, keep_float=keep_float)
    tflite_path = None
    if tflite_checkpoint is not None:
        tflite_path = output.with_suffix(".tflite")
        export_tflite(tflite_checkpoint, tflite_path, fp32, windows, qat=qat)
    if not report:
        return QuantizeResult(output, int8, tflite_path)
    models = [Path(model), output] + ([tflite_path] if tflite_path else [])
    measured = compare_models(models, clips, clips_description=description, note=note, latency_runs=latency_runs)
    return QuantizeResult(output, int8, tflite_path, measured)


def _calibrated_on(clips: Sequence[Clip], calibration_clips: Sequence[Clip]) -> str:
    """A warning (also the report's note) when the scored clips were calibration clips too: the
    int8 model has then seen their levels, and its drop on them reads smaller than on new audio."""
    shared = {clip.path.resolve() for clip in clips} & {clip.path.resolve() for clip in calibration_clips}
    if not shared:
        return ""
    message = (f"{len(shared)} of the {len(clips)} clips scored are calibration clips too; calibrate on other audio "
               "(e.g. ESC-50's training folds) for a drop that holds on new audio")
    log.warning(message)
    return message
