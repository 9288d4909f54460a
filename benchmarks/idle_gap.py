"""What a window costs after the pipeline has been idle: CPU time per window against the gap before it.

    python benchmarks/idle_gap.py [MODEL ...] [--runs 40] [--results benchmarks/results]  # writes idle_gap.json there

``listen`` scores one window per hop and waits in between; measured in
``edge-sed bench stream``, a paced run costs about twice the CPU per window of
an unpaced one. This script isolates the backend: each model (default: the
shipped one; ``.onnx`` or ``.tflite``, through the run-time backends, one
thread) scores the same real log-mel window back to back, then after gaps of
1 to 250 ms spent either asleep or busy in a Python loop (the thread never
sleeps), and right after reading 64 MB of other memory (caches
flushed by the process itself, no gap). Beside the models, the pipeline's own
front end in the same conditions: :class:`~edge_sed.frontend.StreamingLogMel`
taking one 250 ms hop of samples (numpy, no ONNX Runtime), to tell a
runtime's behaviour from the machine's. The time is the scoring thread's CPU
time (``time.thread_time``), median and 90th percentile; ratios are to the
same subject back to back in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sed.audio import read_audio  # noqa: E402
from edge_sed.backends import load_backend  # noqa: E402
from edge_sed.bundle import read_bundle  # noqa: E402
from edge_sed.frontend import StreamingLogMel  # noqa: E402
from edge_sed.bench.inputs import DEMO_AUDIO, SHIPPED_MODEL  # noqa: E402
from edge_sed.bench.results import Column, add_ratios, format_table, write_results  # noqa: E402
from quantize.clips import clip_windows  # noqa: E402

GAPS_S = (0.001, 0.005, 0.02, 0.05, 0.25)
#: The hop whose log-mel is timed beside the models (listen's default).
HOP_S = 0.25
SWEEP_BYTES = 64 * 2**20
COLUMNS = (
    Column("model", "model"),
    Column("before", "before each window"),
    Column("median_ms", "CPU ms per window", "{:.2f}"),
    Column("p90_ms", "p90 ms", "{:.2f}"),
    Column("ratio", "x back to back", "{:.2f}"),
)


def _sleep(seconds: float) -> Callable[[], None]:
    return lambda: time.sleep(seconds)


def _spin(seconds: float) -> Callable[[], None]:
    def spin() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    return spin


def _sweep(memory: np.ndarray) -> Callable[[], None]:
    return lambda: memory.sum()


def _scorer(path: Path) -> Callable[[], object]:
    """One real window of the demo recording scored by the model at *path* (one thread)."""
    backend = load_backend(path, threads=1)
    windows = clip_windows(DEMO_AUDIO, backend.bundle)
    window = windows[len(windows) // 2]
    return lambda: backend(window)


def _hop_logmel(path: Path) -> Callable[[], object]:
    """The pipeline's own front end for one hop: :class:`StreamingLogMel` taking one hop of samples."""
    frontend = read_bundle(path).frontend
    samples, rate = read_audio(DEMO_AUDIO, frontend.sample_rate)
    hop = samples[: round(HOP_S * rate)]
    logmel = StreamingLogMel(frontend)
    return lambda: logmel.push(hop)


def cpu_per_window(score: Callable[[], object], before: Callable[[], None], runs: int) -> np.ndarray:
    """Thread CPU seconds of *runs* calls of *score*, each after *before* (not timed)."""
    times = np.empty(runs)
    for run in range(runs):
        before()
        start = time.thread_time()
        score()
        times[run] = time.thread_time() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=[SHIPPED_MODEL])
    parser.add_argument("--runs", type=int, default=40, help="windows per condition (back to back: 10x as many)")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results", help="folder for idle_gap.json")
    args = parser.parse_args()

    memory = np.ones(SWEEP_BYTES // 8)
    conditions = [("nothing (back to back)", lambda: None, 10 * args.runs)]
    for gap in GAPS_S:
        conditions += [(f"{gap * 1e3:g} ms asleep", _sleep(gap), args.runs), (f"{gap * 1e3:g} ms busy", _spin(gap), args.runs)]
    conditions.append((f"reading {SWEEP_BYTES >> 20} MB, no gap", _sweep(memory), args.runs))

    subjects = [(path.name, _scorer(path)) for path in args.models]
    subjects.append((f"log-mel of one {HOP_S * 1e3:g} ms hop", _hop_logmel(args.models[0])))
    rows = []
    for subject, work in subjects:
        for _ in range(20):  # warm up
            work()
        for name, before, runs in conditions:
            times = cpu_per_window(work, before, runs) * 1e3
            rows.append({"model": subject, "before": name, "median_ms": float(np.median(times)),
                         "p90_ms": float(np.percentile(times, 90))})
    back_to_back = {row["model"]: row for row in rows if row["before"] == conditions[0][0]}
    rows = add_ratios(rows, value="median_ms", ratio="ratio", baseline_of=lambda row: back_to_back[row["model"]],
                      inverse=True)
    print(format_table(rows, COLUMNS))
    settings = {"models": [str(path) for path in args.models], "runs": args.runs, "gaps_s": list(GAPS_S),
                "sweep_bytes": SWEEP_BYTES, "window": str(DEMO_AUDIO), "threads": 1}
    print(f"results: {write_results('idle_gap', rows, settings=settings, results_dir=args.results)}")


if __name__ == "__main__":
    main()
