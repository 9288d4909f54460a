"""Measure the shipped default model: held-out clip accuracy/mAP (fp32 vs int8),
event-based F1 on held-out test soundscapes and on the demo, size and latency.

    python benchmarks/default_model.py \\
        --fp32 runs/default/default.fp32.onnx --int8 edge_sed/assets/default.onnx \\
        --clips runs/default/table/test/metadata.csv --soundscapes runs/default/test_scapes/annotations.tsv

Everything measured here is held out: the test split of ``edge_sed.soundscape``
(ESC-50 fold 5, FSDD speaker yweweler, libri3, vibeace, test backgrounds).
Both models track events with the int8 bundle's tuned rules. Prints a table
and writes ``benchmarks/results/default_model.json`` (``--out`` for another).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # before benchmarks/ (its quantize.py)

from edge_sed.backends import load_backend  # noqa: E402
from edge_sed.evaluation import event_based_scores, read_tsv, segment_based_scores  # noqa: E402
from edge_sed.tuning import score_recordings  # noqa: E402
from quantize.clips import list_clips  # noqa: E402
from quantize.report import compare_models  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "default_model.json"
DEMO_TSV = ROOT / "edge_sed" / "assets" / "demo.tsv"


def event_f1(model: Path, annotations: Path, tracker_from: Path) -> dict[str, float]:
    """Event-based F1 (DCASE collars: onset 200 ms; also 1 s) and segment-based F1 (1 s) of *model*
    on the recordings of *annotations*, tracked with *tracker_from*'s rules."""
    backend = load_backend(model, threads=1)
    tracker = load_backend(tracker_from).bundle.tracker
    reference = read_tsv(annotations)
    files = sorted({event.file for event in reference if event.file})
    scored = score_recordings(backend, [annotations.parent / name for name in files], backend.bundle.stream.hop_s)
    found = scored.events(tracker)
    labels = backend.bundle.labels
    strict = event_based_scores(reference, found, labels=labels)
    loose = event_based_scores(reference, found, labels=labels, onset_collar_s=1.0)
    segments = segment_based_scores(reference, found, labels=labels)
    present = sorted({event.label for event in reference})
    macro = sum(0.0 if math.isnan(strict.class_f1[label]) else strict.class_f1[label] for label in present) / len(present)
    return {
        "recordings": len(files),
        "events": len(reference),
        "detections": len(found),
        "event_f1": round(strict.f1, 4),
        "event_precision": round(strict.precision, 4),
        "event_recall": round(strict.recall, 4),
        "event_f1_macro": round(macro, 4),
        "event_f1_onset_collar_1s": round(loose.f1, 4),
        "segment_f1_1s": round(segments.f1, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, required=True)
    parser.add_argument("--int8", type=Path, required=True)
    parser.add_argument("--clips", type=Path, required=True, help="held-out labelled clips (CSV)")
    parser.add_argument("--soundscapes", type=Path, required=True, help="held-out soundscape annotations (TSV)")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON report to write")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    clips = list_clips(args.clips)
    esc50 = [clip for clip in clips if clip.path.parent.parent.name == "esc50-subset"]
    others = [clip for clip in clips if clip not in esc50]
    report = compare_models([args.fp32, args.int8], esc50, clips_description=f"{args.clips}: ESC-50 fold 5", latency_runs=args.latency_runs)
    extra = compare_models([args.fp32, args.int8], others, clips_description=f"{args.clips}: speech, music, bird", latency_runs=10)
    result = {"clips_esc50": dataclasses.asdict(report), "clips_other": dataclasses.asdict(extra), "soundscapes": {}, "demo": {}}
    for name, model in (("fp32", args.fp32), ("int8", args.int8)):
        result["soundscapes"][name] = event_f1(model, args.soundscapes, args.int8)
        result["demo"][name] = event_f1(model, DEMO_TSV, args.int8)

    print(f"{'':6} {'size MB':>8} {'ms/window':>9} {'ESC acc':>8} {'ESC mAP':>8} {'other acc':>9} {'event F1':>8} {'1s-collar':>9} {'segment':>7} {'demo F1':>7}")
    for row, other, name in zip(report.models, extra.models, ("fp32", "int8")):
        scape, demo = result["soundscapes"][name], result["demo"][name]
        print(
            f"{name:6} {row.size_bytes / 1e6:8.2f} {row.latency_ms:9.2f} {row.accuracy:8.3f} {row.mean_average_precision:8.3f} {other.accuracy:9.3f} "
            f"{scape['event_f1']:8.3f} {scape['event_f1_onset_collar_1s']:9.3f} {scape['segment_f1_1s']:7.3f} {demo['event_f1']:7.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
