"""Stream benchmark: what the listen pipeline costs, and how late its onsets come.

For hops of 250 and 500 ms it runs the whole run-time pipeline (FileSource ->
StreamingLogMel -> ONNX backend -> EventTracker -> JSON Lines sink) over a
long recording made by concatenating /work/shared/data clips:

- **as fast as possible**: share of one core = process CPU time / audio duration;
- **paced in real time** (a shorter stretch, blocks released as a microphone
  would deliver them): the same share, as a live ``listen`` spends it;
- peak resident memory of the process (each run in a fresh child process);
- **onset-to-event latency** on a recording with known onsets (fixture clips
  placed into background): wall time from feeding the block that holds the true
  onset sample to the onset event reaching the sinks.

Prints a table and writes ``benchmarks/results/stream.json`` with machine info.
The model is the tests' tiny bundle (tests/bundles.py) unless ``--model`` is given.

    python benchmarks/stream.py [--model M.onnx] [--long-s 600] [--paced-s 30]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge_sed.audio import read_audio  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "stream.json"
HOPS_S = (0.25, 0.5)
#: The latency recording: (label, onset_s, duration_s) of fixture clips in background.
LATENCY_PLACEMENTS = [("siren", 2.0, 3.0), ("crying_baby", 8.0, 3.0), ("dog", 13.0, 1.5), ("rain", 17.0, 3.0)]
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
        for name in ("name", "sample_rate", "live", "file", "counters"):
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
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--recording", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("fast", "paced", "latency"), help=argparse.SUPPRESS)
    parser.add_argument("--hop", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    logging.basicConfig(level=logging.ERROR)  # the shared clips' clipping warnings are not news here
    if not SHARED_DATA.is_dir():
        sys.exit(f"error: shared data not found at {SHARED_DATA}; the benchmark reads its clips from there")

    from bundles import build_bundle, write_scene

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_bundle(Path(tmp) / "test-logreg-16k.onnx")
        from edge_sed.bundle import read_bundle

        rate = read_bundle(model).frontend.sample_rate
        long = _long_recording(Path(tmp) / "long.wav", args.long_s, rate)
        scene = write_scene(Path(tmp) / "latency.wav", LATENCY_PLACEMENTS, LATENCY_SCENE_S)
        runs = []
        for hop in HOPS_S:
            runs.append(_run_child(model, long, "fast", hop, None))
            runs.append(_run_child(model, long, "paced", hop, args.paced_s))
            runs.append(_run_child(model, scene, "latency", hop, None))
    print(f"{'mode':8} {'hop ms':>6} {'audio s':>8} {'cpu s':>7} {'core %':>7} {'RSS MiB before/peak':>20} "
          f"{'latency s (per onset)':>24}")
    for r in runs:
        lat = " ".join(f"{x['latency_s']:.2f}" if x["detected"] else "miss" for x in r.get("latency", []))
        print(f"{r['mode']:8} {r['hop_s'] * 1000:6.0f} {r['audio_s']:8.1f} {r['cpu_s']:7.2f} "
              f"{100 * r['core_share']:7.2f} {r['rss_before_run_mib']:9.1f} / {r['peak_rss_mib']:8.1f} {lat:>24}")
    report = {"model": str(args.model or "tests/bundles.py test-logreg-16k"), "machine": _machine(), "runs": runs,
              "latency_placements": LATENCY_PLACEMENTS, "long_s": args.long_s, "paced_s": args.paced_s}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
