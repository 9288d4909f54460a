"""fp32 vs int8 (ONNX Runtime, and LiteRT when litert-torch is installed) for one checkpoint.

    python benchmarks/quantize.py CHECKPOINT [--tflite] [--qat-epochs N] [--keep-float MODULE ...] [--out FILE.json]

Exports CHECKPOINT to ONNX fp32, calibrates int8 on an ESC-50 training fold,
and measures every model on ESC-50's held-out fold (the clips of the model's
classes): file size, latency per window (1 thread, median, models interleaved
in one run), accuracy, mAP, top-1 agreement, score differences. With
--qat-epochs, a second LiteRT model fine-tuned with fake quantization on the
checkpoint's own training recipe (--set section.key=value where its data has
moved) sits beside the post-training one; with --keep-float, a second ONNX
int8 model with those modules in float sits beside the first. Prints the
table and writes the JSON report. Choose settings with --eval-fold 4
(validation), report on fold 5.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sed.bench.machine import machine_info  # noqa: E402
from quantize.clips import CALIBRATION_WINDOWS, calibration_windows, list_clips  # noqa: E402
from quantize.export import export_onnx  # noqa: E402
from quantize.onnx_int8 import quantize_onnx  # noqa: E402
from quantize.qat import QatConfig, QatJob, qat_recipe  # noqa: E402
from quantize.tflite import export_tflite  # noqa: E402
from quantize.report import ESC50_HELD_OUT_FOLD, ESC50_METADATA, compare_models, format_report  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "quantize.json"
CALIBRATION_FOLD = 1


def main() -> None:
    qat_defaults = QatConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--tflite", action="store_true", help="also LiteRT int8 (needs litert-torch)")
    parser.add_argument("--models-dir", type=Path, help="keep the exported models here (default: a temporary folder)")
    parser.add_argument("--max-windows", type=int, default=CALIBRATION_WINDOWS)
    parser.add_argument("--latency-runs", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--describe", default="", help="how the checkpoint was made (kept in the JSON)")
    parser.add_argument("--qat-epochs", type=int, default=0, help="also a quantization-aware fine-tuned LiteRT model")
    parser.add_argument("--qat-lr", type=float, default=qat_defaults.lr)
    parser.add_argument("--qat-label-weight", type=float, default=qat_defaults.label_weight)
    parser.add_argument("--qat-observer-epochs", type=int, default=qat_defaults.observer_epochs)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override for QAT, section.key=value")
    parser.add_argument("--keep-float", action="append", default=[], help="torch module left in float in ONNX int8 (repeatable)")
    parser.add_argument("--eval-fold", type=int, default=ESC50_HELD_OUT_FOLD, help="ESC-50 fold to measure on")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(message)s")
    logging.getLogger("quantize.qat").setLevel(logging.INFO)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.models_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        fp32, int8 = folder / f"{args.checkpoint.stem}.onnx", folder / f"{args.checkpoint.stem}.int8.onnx"
        exported = export_onnx(args.checkpoint, fp32)
        calibration = list_clips(ESC50_METADATA, fold=CALIBRATION_FOLD)
        calibration = [clip for clip in calibration if set(clip.labels) & set(exported.bundle.labels)] or calibration
        windows = calibration_windows(calibration, exported.bundle, max_windows=args.max_windows)
        quantize_onnx(fp32, int8, windows)
        models = [fp32, int8]
        if args.keep_float:
            models.append(folder / f"{args.checkpoint.stem}.float-{'-'.join(args.keep_float)}.int8.onnx")
            quantize_onnx(fp32, models[-1], windows, keep_float=args.keep_float)
        if args.tflite:
            models.append(folder / f"{args.checkpoint.stem}.int8.tflite")
            export_tflite(args.checkpoint, models[-1], exported.bundle, windows)
        if args.qat_epochs:
            config = QatConfig(args.qat_epochs, args.qat_lr, args.qat_label_weight, args.qat_observer_epochs)
            job = QatJob(qat_recipe(args.checkpoint, overrides=args.overrides), config)
            models.append(folder / f"{args.checkpoint.stem}.qat.int8.tflite")
            export_tflite(args.checkpoint, models[-1], exported.bundle, windows, qat=job)
        report = compare_models(
            models,
            list_clips(ESC50_METADATA, fold=args.eval_fold),
            clips_description=f"ESC-50 fold {args.eval_fold}" + (" (held out)" if args.eval_fold == ESC50_HELD_OUT_FOLD else "")
            + f"; calibration: fold {CALIBRATION_FOLD}",
            latency_runs=args.latency_runs,
        )
    print(format_report(report))
    result = {
        "checkpoint": str(args.checkpoint),
        "checkpoint_description": args.describe,
        "architecture": exported.bundle.architecture,
        "export_max_abs_diff": exported.max_abs_diff,
        "calibration_windows": int(len(windows)),
        "machine": machine_info(),
        **report.to_dict(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
