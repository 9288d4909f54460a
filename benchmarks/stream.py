"""Stream benchmark: what the listen pipeline costs, and how late its onsets come.

The measurement lives in :mod:`edge_sed.bench.stream` (``edge-sed bench stream``
runs it on the shipped model and demo recording). This script runs it on the
tests' tiny bundle (tests/bundles.py) and a scene of fixture clips with known
onsets, unless ``--model`` is given. Prints a table and writes ``stream.json``
with machine info into ``benchmarks/results/tiny_bundle/`` (not over the shipped
model's ``benchmarks/results/stream.json``), or into ``--out``.

    python benchmarks/stream.py [--model M.onnx] [--long-s 600] [--paced-s 30]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge_sed.bench.results import format_table  # noqa: E402
from edge_sed.bench.stream import STREAM_COLUMNS, StreamBenchConfig, run_stream_benchmark  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: The latency recording: (label, onset_s, duration_s) of fixture clips in background.
LATENCY_PLACEMENTS = (("siren", 2.0, 3.0), ("crying_baby", 8.0, 3.0), ("dog", 13.0, 1.5), ("rain", 17.0, 3.0))
LATENCY_SCENE_S = 22.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model bundle (.onnx); default: the tests' tiny bundle")
    parser.add_argument("--long-s", type=float, default=600.0, help="length of the as-fast-as-possible run")
    parser.add_argument("--paced-s", type=float, default=30.0, help="length of the real-time paced run")
    parser.add_argument("--out", type=Path, default=RESULTS / "tiny_bundle", help="results folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the shared clips' clipping warnings are not news here

    from bundles import build_bundle, write_scene

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_bundle(Path(tmp) / "test-logreg-16k.onnx")
        scene = write_scene(Path(tmp) / "latency.wav", list(LATENCY_PLACEMENTS), LATENCY_SCENE_S)
        config = StreamBenchConfig(model=str(model), latency_recording=str(scene), placements=LATENCY_PLACEMENTS,
                                   long_s=args.long_s, paced_s=args.paced_s, results_dir=str(args.out))
        result = run_stream_benchmark(config)
    print(format_table(result.rows, STREAM_COLUMNS))
    for goal in result.goals:
        print(f"goal: {goal.goal}: {goal.measured} (target {goal.target}): met={goal.met}")
    print(f"wrote {result.path}")


if __name__ == "__main__":
    main()
