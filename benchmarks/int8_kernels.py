"""Do ONNX Runtime's int8 kernels on this CPU compute what the int8 graph says?

    python benchmarks/int8_kernels.py [MODEL.int8.onnx ...] [--clips metadata.csv] [--fold 5]

For each int8 QDQ bundle (default: the shipped model), scores the clips of its
classes in one ESC-50 fold twice, one thread each: with ONNX Runtime's fused
int8 kernels (all graph optimizations, as ``edge-sed listen`` runs it) and with
the graph's exact arithmetic (optimizations off: float ops between each
QuantizeLinear and DequantizeLinear). On x86 without VNNI the fused U8S8
kernels add pairs of products in 16 bits and saturate with 8-bit weights
(``quantize/onnx_int8.py``); elsewhere the two agree up to rounding. Prints a
table and writes ``benchmarks/results/int8_kernels.json`` with the CPU's int8
flags (``cpu_int8_flags``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # before benchmarks/ (its quantize.py)

from edge_sed.backends import OnnxBackend  # noqa: E402
from edge_sed.bench.machine import machine_info  # noqa: E402
from edge_sed.bench.results import Column, format_table, write_results  # noqa: E402
from edge_sed.bundle import read_bundle  # noqa: E402
from edge_sed.errors import ConfigError, EdgeSedError  # noqa: E402
from quantize.clips import list_clips  # noqa: E402
from quantize.report import ESC50_HELD_OUT_FOLD, ESC50_METADATA, accuracy_and_map, score_clips  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "edge_sed" / "assets" / "default.onnx"
COLUMNS = (
    Column("model", "model"),
    Column("clips", "clips"),
    Column("accuracy_kernels", "accuracy, kernels", "{:.4f}"),
    Column("accuracy_exact", "accuracy, exact", "{:.4f}"),
    Column("map_kernels", "mAP, kernels", "{:.4f}"),
    Column("map_exact", "mAP, exact", "{:.4f}"),
    Column("top1_agreement", "top-1 agreement", "{:.4f}"),
    Column("mean_abs_diff", "mean |diff|", "{:.4f}"),
    Column("max_abs_diff", "max |diff|", "{:.4f}"),
)


def measure(model: Path, clips_csv: Path, fold: int) -> dict[str, object]:
    """One table row: accuracy and mAP with the kernels and exactly, and how far the clip scores differ."""
    bundle = read_bundle(model)
    if bundle.precision != "int8":
        raise ConfigError(f"{str(model)!r} is {bundle.precision}; give an int8 model from 'edge-sed quantize'")
    backends = [OnnxBackend(model, threads=1, exact=flag) for flag in (False, True)]
    scored = score_clips(backends, list_clips(clips_csv, fold=fold))
    if scored.target is None:
        raise ConfigError(f"fold {fold} of {str(clips_csv)!r} has no clips of {model.name}'s classes")
    kernels, exact = scored.scores
    (accuracy_kernels, map_kernels), (accuracy_exact, map_exact) = (accuracy_and_map(scores, scored.target) for scores in (kernels, exact))
    differences = np.abs(kernels - exact)
    return {
        "model": model.name,
        "clips": len(scored.clips),
        "accuracy_kernels": accuracy_kernels,
        "accuracy_exact": accuracy_exact,
        "map_kernels": map_kernels,
        "map_exact": map_exact,
        "top1_agreement": float(np.mean(kernels.argmax(axis=1) == exact.argmax(axis=1))),
        "mean_abs_diff": float(differences.mean()),
        "max_abs_diff": float(differences.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=[SHIPPED], help="int8 .onnx bundles (default: the shipped model)")
    parser.add_argument("--clips", type=Path, default=ESC50_METADATA, help="labelled clips, a CSV with a fold column")
    parser.add_argument("--fold", type=int, default=ESC50_HELD_OUT_FOLD)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if not args.clips.is_file():
        sys.exit(f"error: no labelled clips at {args.clips}; the shared ESC-50 copy (../shared/data/esc50-subset) is missing, give --clips")
    try:
        rows = [measure(model, args.clips, args.fold) for model in args.models]
    except EdgeSedError as exc:
        sys.exit(f"error: {exc}")
    machine = machine_info()
    print(f"CPU: {machine['cpu_model']}, int8 flags: {', '.join(machine['cpu_int8_flags'] or ['unknown'])}")
    print(format_table(rows, COLUMNS))
    path = write_results("int8_kernels", rows, settings={"clips": str(args.clips), "fold": args.fold, "threads": 1}, results_dir=args.results)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
