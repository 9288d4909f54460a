"""Stream benchmark: what the listen pipeline costs, and how late its onsets come.

The measurement lives in :mod:`edge_sed.bench.stream` (``edge-sed bench stream``
runs it on the shipped model and demo recording). This script runs it on the
tests' tiny bundle (tests/bundles.py) and a scene of fixture clips with known
onsets, unless ``--model`` is given. Prints a table and writes
``benchmarks/results/stream.json`` with machine info.

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
_KIB_PER_MIB = 1024.0
def _long_recording(path: Path, seconds: float, sample_rate: int) -> Path:
    """Concatenate ESC-50 subset clips and backgrounds from the shared data to *seconds*."""
    clips = sorted((SHARED_DATA / "esc50-subset" / "audio").glob("*.flac"))
    backgrounds = sorted((SHARED_DATA / "backgrounds" / "audio").glob("*.flac"))
    if not clips or not backgrounds:
        sys.exit(f"error: the benchmark needs {SHARED_DATA}/esc50-subset/audio and backgrounds/audio; "
                 "they are missing here")
    parts, total, need = [], 0, round(seconds * sample_rate)
    for i, clip in enumerate(clips):
        for name in (clip, backgrounds[i % len(backgrounds)]) if i % 4 == 0 else (clip,):
            samples, _ = read_audio(name, sample_rate)
            parts.append(samples)
            total += samples.size
        if total >= need:
            break
    sf.write(str(path), np.concatenate(parts)[:need], sample_rate, subtype="PCM_16")
    return path
class _TimedSource:
    """A source wrapper recording the wall time at which each block is fed."""
    def __init__(self, source) -> None:
        self._source = source
        self.fed: list[tuple[int, float]] = []  # (samples fed so far, wall time)
        for name in ("name", "sample_rate", "live", "paced", "file", "counters"):
            setattr(self, name, getattr(source, name))
    def __iter__(self):
        done = 0
        for block in self._source:
            done += block.size
            self.fed.append((done, time.monotonic()))
            yield block
    def close(self) -> None:
        self._source.close()
class _TimedSinks:
    """A SinkSet wrapper recording the wall time at which each onset arrives."""
    def __init__(self, sinks) -> None:
        self._sinks = sinks
        self.onsets: list[tuple[str, float, float]] = []  # (label, onset_s, wall time)
        self.failures = sinks.failures
    def emit(self, event) -> None:
        if event.offset is None:
            self.onsets.append((event.label, event.onset, time.monotonic()))
        self._sinks.emit(event)
    def update(self, status) -> None:
        self._sinks.update(status)
    def close(self) -> None:
        self._sinks.close()
def _rss_mib(field: str) -> float:
    """A memory figure of this process from /proc (``VmHWM``: peak resident set since exec;
    ``ru_maxrss`` would also count the parent's peak, which Linux carries over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / _KIB_PER_MIB
    raise RuntimeError(f"no {field} in /proc/self/status")
def _child(args: argparse.Namespace) -> None:
    """One measured run in this process; prints a JSON result line."""
    from edge_sed.backends import load_backend
    from edge_sed.config import resolve
    from edge_sed.pipeline import PipelineConfig, run
    from edge_sed.sinks import open_sinks
    from edge_sed.sources import FileSource
    backend = load_backend(args.model)
    bundle = backend.bundle
    config = PipelineConfig(stream=resolve(bundle.stream, {"hop_s": args.hop}), tracker=bundle.tracker,
                            duration_s=args.seconds)
    source = _TimedSource(FileSource(args.recording, bundle.frontend.sample_rate, realtime=args.mode != "fast"))
    sinks = _TimedSinks(open_sinks([f"jsonl:{os.devnull}"], labels=bundle.labels))
    rss_before_mb = _rss_mib("VmHWM")
    cpu0, wall0 = time.process_time(), time.monotonic()
    summary = run([source], backend, sinks, config)
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    result = {
        "mode": args.mode, "hop_s": args.hop, "audio_s": summary.seconds, "cpu_s": cpu_s, "wall_s": wall_s,
        "core_share": cpu_s / summary.seconds, "windows": summary.windows,
        "peak_rss_mib": _rss_mib("VmHWM"),
        "rss_before_run_mib": rss_before_mb, "overruns": summary.counters["overruns"],
    }
    if args.mode == "latency":
        result["latency"] = _latencies(source.fed, sinks.onsets, bundle.frontend.sample_rate)
    print(json.dumps(result))
def _latencies(fed: list[tuple[int, float]], onsets: list[tuple[str, float, float]], rate: int) -> list[dict]:
    """For each known onset: wall time from feeding its sample to its label's first onset event."""
    out = []
    fed_samples = np.array([n for n, _ in fed])
    for label, true_onset, _ in LATENCY_PLACEMENTS:
        block = int(np.searchsorted(fed_samples, round(true_onset * rate), side="right"))
        hits = [(onset, wall) for name, onset, wall in onsets if name == label and abs(onset - true_onset) < 1.5]
        if block >= len(fed) or not hits:
            out.append({"label": label, "true_onset_s": true_onset, "detected": False})
            continue
        onset, wall = hits[0]
        out.append({"label": label, "true_onset_s": true_onset, "detected": True, "onset_s": onset,
                    "latency_s": wall - fed[block][1]})
    return out
def _run_child(model: Path, recording: Path, mode: str, hop: float, seconds: float | None) -> dict:
    cmd = [sys.executable, __file__, "--child", "--model", str(model), "--recording", str(recording),
           "--mode", mode, "--hop", str(hop)]
    if seconds is not None:
        cmd += ["--seconds", str(seconds)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"error: benchmark child failed ({mode}, hop {hop}): {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    import onnxruntime
    import soxr
    return {
        "platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "onnxruntime": onnxruntime.__version__, "soxr": soxr.__version__,
        "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model bundle (.onnx); default: the tests' tiny bundle")
    parser.add_argument("--long-s", type=float, default=600.0, help="length of the as-fast-as-possible run")
    parser.add_argument("--paced-s", type=float, default=30.0, help="length of the real-time paced run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
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
