"""What the listen pipeline costs, and how late its onsets come (``edge-sed bench stream``).

Moved here from ``benchmarks/stream.py`` (the stream engineer's measurement,
unchanged in substance) so the CLI can import it; the script now calls it.

For hops of 250 and 500 ms it runs the whole run-time pipeline (FileSource ->
StreamingLogMel -> ONNX backend -> EventTracker -> JSON Lines sink) over a
long recording made by concatenating ``shared/data`` clips:

- **as fast as possible**: share of one core = process CPU time / audio duration,
  over the whole run and after the first :data:`STARTUP_S` of audio (the
  running cost of a listener that stays up; start-up CPU is reported apart);
- **paced in real time** (a shorter stretch, blocks released as a microphone
  would deliver them): the same share, as a live ``listen`` spends it;
- **paced, with the terminal view** (``view``): the same run drawing
  ``listen``'s default ``terminal`` sink into a terminal (a rich console forced
  to emit terminal output, written to ``/dev/null``): ``listen --demo`` as a
  user runs it, without a microphone;
- **from a real input device** (``device``; whatever it hears, for as long as
  the paced run): the share of ``listen`` itself, terminal view, PortAudio's
  audio thread and resampling included;
- peak resident memory of the process (each run in a fresh child process);
- **onset-to-event latency** on a recording with known onsets: wall time from
  the moment the true onset sample would have reached a microphone (its block's
  release, less the samples after it in the block) to the onset event reaching
  the sinks;
- the same latency in audio time over a **set of recordings** with known events
  (``latency_set``, e.g. held-out soundscapes from ``edge-sed synth``), run as
  fast as possible: from each true onset to the end of the block whose scoring
  emitted its onset event. It leaves out only the processing time of that
  block (milliseconds, measured by the paced latency run), and over hundreds of
  events it says more than one recording's handful.

Sources take ``listen``'s default block of audio per wake-up (two hops at a
250 ms hop); ``blocks_s`` adds runs with other blocks (``listen --block``: one
hop, or longer ones) for the paced, view, latency and live modes.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from edge_sed.audio import read_audio, read_warning_summary, write_audio
from edge_sed.bench.child import child_main, run_child
from edge_sed.bench.inputs import DEMO_AUDIO, SHIPPED_MODEL, default_esc50_dir, shared_data_dir
from edge_sed.bench.results import DEFAULT_RESULTS_DIR, BenchResult, Column, Goal, ProgressCallback, write_results
from edge_sed.bench.timing import peak_rss_mib
from edge_sed.errors import ConfigError
from edge_sed.sources import wake_block_s

__all__ = [
    "HOPS_S",
    "LISTEN_CORE_SHARE_GOAL",
    "STREAM_COLUMNS",
    "Placement",
    "StreamBenchConfig",
    "read_onsets",
    "long_recording",
    "measure_run",
    "run_stream_benchmark",
]

HOPS_S = (0.25, 0.5)
#: The issue's goal: ``listen`` under 1% of one core at a 250 ms hop.
LISTEN_CORE_SHARE_GOAL = 0.01
GOAL_HOP_S = 0.25
#: Seconds of audio at the start of every run that count as start-up, not running cost: the window
#: fills and the first inferences allocate. (PortAudio's busy polling of ALSA's pulse plugin for its
#: first 1-1.8 s falls inside ``MicSource.open()``, before a run is measured.)
STARTUP_S = 5.0
#: Ground truth of the shipped demo recording (DCASE TSV: filename, onset, offset, event_label).
DEMO_ONSETS = DEMO_AUDIO.with_suffix(".tsv")
#: An onset event counts as the detection of a true onset within this many seconds.
ONSET_MATCH_S = 1.5
MODES = ("fast", "paced", "view", "latency")
#: The as-fast-as-possible latency run over a set of recordings (only when one is given).
SET_MODE = "latency-set"
#: The run through a real input device (only when one is named).
MIC_MODE = "mic"
#: Modes whose cost depends on the block per wake-up (``blocks_s`` adds runs of them).
BLOCK_MODES = ("paced", "view", "latency", MIC_MODE, SET_MODE)
#: Modes that draw listen's terminal view, as a user in a terminal sees it.
VIEW_MODES = ("view", MIC_MODE)
#: Columns of the terminal the view is drawn for.
VIEW_WIDTH = 100

#: (label, onset_s, duration_s) of one known event.
Placement = tuple[str, float, float]

STREAM_COLUMNS = (
    Column("mode", "mode"),
    Column("hop_s", "hop ms", "{:.0f}", scale=1e3),
    Column("block_s", "block ms", "{:.0f}", scale=1e3),
    Column("audio_s", "audio s", "{:.1f}"),
    Column("cpu_s", "CPU s", "{:.2f}"),
    Column("core_share_whole", "% of one core, whole run", "{:.3f}", scale=100.0),
    Column("startup_cpu_s", "start-up CPU s", "{:.2f}"),
    Column("core_share", "% of one core after start-up", "{:.3f}", scale=100.0),
    Column("rss_before_run_mib", "RSS before MiB", "{:.0f}"),
    Column("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
    Column("median_latency_s", "median onset latency s", "{:.2f}"),
    Column("p90_latency_s", "p90 onset latency s", "{:.2f}"),
    Column("detected", "onsets found"),
)


def read_onsets(path: str | Path) -> list[Placement]:
    """Known events from a DCASE-style TSV (``onset``, ``offset``, ``event_label`` columns)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        placements = [(row["event_label"], float(row["onset"]), float(row["offset"]) - float(row["onset"])) for row in rows]
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"cannot read known onsets from {str(path)!r} ({exc}); "
                          "give a TSV with onset, offset and event_label columns") from None
    if not placements:
        raise ConfigError(f"{str(path)!r} lists no events; give a TSV with onset, offset and event_label columns")
    return placements


def long_recording(path: Path, seconds: float, sample_rate: int) -> Path:
    """Concatenate ESC-50 subset clips and backgrounds from the shared data to *seconds*."""
    clip_dir, background_dir = default_esc50_dir() / "audio", shared_data_dir() / "backgrounds" / "audio"
    clips, backgrounds = sorted(clip_dir.glob("*.flac")), sorted(background_dir.glob("*.flac"))
    if not clips or not backgrounds:
        raise ConfigError(f"the stream benchmark needs {clip_dir} and {background_dir}; "
                          "they are missing here (set EDGE_SED_DATA to the shared data folder)")
    parts, total, need = [], 0, round(seconds * sample_rate)
    with read_warning_summary("clips of the long recording"):
        for i, clip in enumerate(clips):
            for name in (clip, backgrounds[i % len(backgrounds)]) if i % 4 == 0 else (clip,):
                samples, _ = read_audio(name, sample_rate)
                parts.append(samples)
                total += samples.size
            if total >= need:
                break
    write_audio(path, np.concatenate(parts)[:need], sample_rate)
    return path


@dataclass(slots=True)
class _FeedClock:
    """Samples that the source being run has fed so far, the block in the pipeline included."""

    samples: int = 0


class _Heard(NamedTuple):
    """An onset event as it reached the sinks."""

    file: str | None
    label: str
    onset_s: float
    wall: float  # monotonic time
    fed: int  # samples its source had fed by then


class _TimedSource:
    """A source wrapper recording the wall and CPU time at which each block is fed."""

    def __init__(self, source, clock: _FeedClock) -> None:
        self._source, self._clock = source, clock
        self.fed: list[tuple[int, float]] = []  # (samples fed so far, wall time)
        self.cpu: list[tuple[int, float]] = []  # (samples fed before this block, process CPU time)
        for name in ("name", "sample_rate", "live", "paced", "file", "counters"):
            setattr(self, name, getattr(source, name))

    def __iter__(self):
        done = 0
        for block in self._source:
            self.cpu.append((done, time.process_time()))
            done += block.size
            self.fed.append((done, time.monotonic()))
            self._clock.samples = done
            yield block

    def close(self) -> None:
        self._source.close()


class _TimedSinks:
    """A SinkSet wrapper recording when each onset arrives, in wall time and in samples fed."""

    def __init__(self, sinks, clock: _FeedClock) -> None:
        self._sinks, self._clock = sinks, clock
        self.onsets: list[_Heard] = []
        self.failures = sinks.failures

    def emit(self, event) -> None:
        if event.offset is None:
            self.onsets.append(_Heard(event.file, event.label, event.onset, time.monotonic(), self._clock.samples))
        self._sinks.emit(event)

    def update(self, status) -> None:
        self._sinks.update(status)

    def close(self) -> None:
        self._sinks.close()


def _running_cost(source: _TimedSource, rate: int, startup_s: float, cpu0: float, cpu_end: float,
                  audio_s: float) -> dict[str, Any]:
    """Split a run's CPU time where *startup_s* of audio had been fed: start-up, then the share of a core."""
    after = next(((fed / rate, cpu) for fed, cpu in source.cpu if fed >= startup_s * rate), None)
    if after is None or after[0] >= audio_s:  # the run never got past start-up
        return {"startup_s": audio_s, "startup_cpu_s": cpu_end - cpu0, "core_share": None}
    (split_s, split_cpu) = after
    return {"startup_s": split_s, "startup_cpu_s": split_cpu - cpu0,
            "core_share": (cpu_end - split_cpu) / (audio_s - split_s)}


def measure_run(model: str, recording: str, mode: str, hop_s: float, seconds: float | None = None,
                placements: Sequence[Placement] = (), startup_s: float = STARTUP_S,
                block_s: float | None = None) -> dict[str, Any]:
    """One measured pipeline run in this process (call it in a fresh one); the result row.

    In :data:`MIC_MODE` *recording* names the input device (index or name, as ``listen --device``);
    in :data:`SET_MODE` it is a DCASE TSV of known events, its recordings beside it.
    *block_s*: seconds of audio per wake-up (default: ``listen``'s, :func:`~edge_sed.sources.wake_block_s`).
    """
    from rich.console import Console

    from edge_sed.backends import load_backend
    from edge_sed.config import resolve
    from edge_sed.pipeline import PipelineConfig, run
    from edge_sed.sinks import SinkSet, TerminalSink, open_sinks
    from edge_sed.sources import FileSource, MicSource

    backend = load_backend(model)
    bundle = backend.bundle
    config = PipelineConfig(stream=resolve(bundle.stream, {"hop_s": hop_s}), tracker=bundle.tracker,
                            duration_s=seconds)
    rate = bundle.frontend.sample_rate
    block_s = wake_block_s(hop_s, block_s)
    clock = _FeedClock()
    if mode == MIC_MODE:
        mic = MicSource(rate, recording, block_s=block_s)
        mic.open()  # PortAudio's one-off start-up is not listen's running cost (nor is loading the model)
        sources = [_TimedSource(mic, clock)]
    elif mode == SET_MODE:
        events, names = _latency_set(Path(recording))
        truth = [event for event in events if event.label in bundle.labels]  # onsets of classes the model has
        sources = [_TimedSource(FileSource(path, rate, block_s=block_s), clock) for path in names]
    else:
        sources = [_TimedSource(FileSource(recording, rate, realtime=mode != "fast", block_s=block_s), clock)]
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        if mode in VIEW_MODES:
            view = TerminalSink(bundle.labels, console=Console(file=devnull, force_terminal=True, width=VIEW_WIDTH))
            sinks = _TimedSinks(SinkSet([("terminal", view)]), clock)
        else:
            sinks = _TimedSinks(open_sinks([f"jsonl:{os.devnull}"], labels=bundle.labels), clock)
        rss_before_mb = peak_rss_mib()
        cpu0, wall0 = time.process_time(), time.monotonic()
        summary = run(sources, backend, sinks, config)
        cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    result = {
        "mode": mode, "hop_s": hop_s, "block_s": block_s, "audio_s": summary.seconds, "cpu_s": cpu_s, "wall_s": wall_s,
        "core_share_whole": cpu_s / summary.seconds, "windows": summary.windows, "peak_rss_mib": peak_rss_mib(),
        "rss_before_run_mib": rss_before_mb, "overruns": summary.counters["overruns"],
    }
    if mode == SET_MODE:  # many recordings, run as fast as possible: no running cost of a listener
        found = _audio_latencies(sinks.onsets, truth, names, rate)
        result.update(recordings=len(names), **_latency_summary(found, len(truth)), latencies_s=found)
        return result
    result.update(_running_cost(sources[0], rate, startup_s, cpu0, cpu0 + cpu_s, summary.seconds))
    if mode == "latency":
        known = [p for p in placements if p[0] in bundle.labels]  # onsets of classes the model has
        result["latency"] = _latencies(sources[0].fed, sinks.onsets, rate, known)
        result.update(_latency_summary([x["latency_s"] for x in result["latency"] if x["detected"]], len(known)))
    return result


def _latency_summary(found: Sequence[float], known: int) -> dict[str, Any]:
    """How many of *known* onsets were found, and the median and 90th percentile of their latencies."""
    return {"detected": f"{len(found)}/{known}",
            "median_latency_s": float(np.median(found)) if found else None,
            "p90_latency_s": float(np.percentile(found, 90)) if found else None}


def _audio_latencies(onsets: Sequence[_Heard], truth: Sequence[Any], names: dict[str, str], rate: int) -> list[float]:
    """For each true event (:class:`~edge_sed.events.Event`, ``file`` as in its TSV) with an onset event
    of its label in its recording within :data:`ONSET_MATCH_S`: audio seconds from the true onset to
    the end of the block whose scoring emitted the first such event. *names*: source path -> TSV name.
    """
    found = []
    for event in truth:
        heard = _first_onset_event([h for h in onsets if names.get(h.file) == event.file], event.label, event.onset)
        if heard is not None:
            found.append(heard.fed / rate - event.onset)
    return found


def _first_onset_event(onsets: Sequence[_Heard], label: str, true_onset_s: float) -> _Heard | None:
    """The first onset event of *label* within :data:`ONSET_MATCH_S` of a true onset, if any."""
    return next((heard for heard in onsets if heard.label == label and abs(heard.onset_s - true_onset_s) < ONSET_MATCH_S),
                None)


def _latencies(fed: list[tuple[int, float]], onsets: Sequence[_Heard], rate: int,
               placements: Sequence[Placement]) -> list[dict]:
    """For each known onset: wall time from its sample's arrival to its label's first onset event.

    A paced block is fed when its last sample arrives, so the onset sample arrived
    as many samples earlier as follow it in its block.
    """
    out = []
    fed_samples = np.array([n for n, _ in fed])
    for label, true_onset, _ in placements:
        block = int(np.searchsorted(fed_samples, round(true_onset * rate), side="right"))
        heard = _first_onset_event(onsets, label, true_onset)
        if block >= len(fed) or heard is None:
            out.append({"label": label, "true_onset_s": true_onset, "detected": False})
            continue
        arrived = fed[block][1] - (fed[block][0] - round(true_onset * rate)) / rate
        out.append({"label": label, "true_onset_s": true_onset, "detected": True, "onset_s": heard.onset_s,
                    "latency_s": heard.wall - arrived})
    return out


def _run_child(model: Path, recording: Path | str, mode: str, hop: float, block: float | None, seconds: float | None,
               startup_s: float, placements: Sequence[Placement] = ()) -> dict:
    """:func:`measure_run` in a fresh process (*recording*: the input device in :data:`MIC_MODE`)."""
    spec = {"model": str(model), "recording": str(recording), "mode": mode, "hop_s": hop, "block_s": block,
            "seconds": seconds, "startup_s": startup_s, "placements": [list(p) for p in placements]}
    row = run_child("edge_sed.bench.stream", spec, threads=None)  # listen's threads, as a user runs it
    return {"mode": mode, "hop_s": hop, "block_s": wake_block_s(hop, block), **row} if "error" in row else row


@dataclass(frozen=True, slots=True)
class StreamBenchConfig:
    """What ``bench stream`` measures.

    ``model``: an ``.onnx``/``.tflite`` bundle (default: the shipped model).
    ``latency_recording`` and ``onsets`` (a DCASE TSV) or ``placements``: the
    recording with known onsets (default: the shipped demo and its TSV).
    ``latency_set``: a DCASE TSV of known events, its recordings beside it (e.g. from
    ``edge-sed synth``), for the latency in audio time over many events (none: no such run).
    ``device``: an input device to also measure ``listen`` on, live (none: no such run).
    ``startup_s``: audio seconds at the start of each run not counted in the running share.
    ``blocks_s``: other blocks per wake-up to measure too (``listen --block``: the hop, for one
    hop per wake-up, or longer ones), at each hop they are not shorter than.
    """

    model: str = ""
    latency_recording: str = ""
    onsets: str = ""
    placements: tuple[Placement, ...] = ()
    latency_set: str = ""
    hops_s: tuple[float, ...] = HOPS_S
    blocks_s: tuple[float, ...] = ()
    long_s: float = 600.0
    paced_s: float = 30.0
    device: str = ""
    startup_s: float = STARTUP_S
    results_dir: str = str(DEFAULT_RESULTS_DIR)

    def __post_init__(self) -> None:
        if not (0 < self.long_s < math.inf and 0 < self.paced_s < math.inf):
            raise ConfigError(f"long_s and paced_s must be positive seconds, got {self.long_s!r}, {self.paced_s!r}")
        if not 0 <= self.startup_s < min(self.long_s, self.paced_s):
            raise ConfigError(f"startup_s must be at least 0 and shorter than the runs, got {self.startup_s!r}")
        if not self.hops_s or min(self.hops_s) <= 0:
            raise ConfigError(f"hops must be positive seconds, got {self.hops_s!r}")
        for block in self.blocks_s:
            wake_block_s(min(self.hops_s), block)


def _resolve_inputs(config: StreamBenchConfig) -> tuple[str, str, list[Placement]]:
    model = config.model or (str(SHIPPED_MODEL) if SHIPPED_MODEL.is_file() else "")
    if not model:
        raise ConfigError(f"no model: the shipped {str(SHIPPED_MODEL)!r} is not installed; give --model M.onnx")
    recording = config.latency_recording or (str(DEMO_AUDIO) if DEMO_AUDIO.is_file() else "")
    if not recording:
        raise ConfigError("no recording with known onsets: give --latency-recording REC --onsets REC.tsv")
    if config.placements:
        return model, recording, list(config.placements)
    onsets = config.onsets or (str(DEMO_ONSETS) if recording == str(DEMO_AUDIO) else "")
    if not onsets:
        raise ConfigError(f"{recording!r} needs its known onsets: give --onsets TSV (onset, offset, event_label)")
    return model, recording, read_onsets(onsets)


def run_stream_benchmark(config: StreamBenchConfig, *, progress: ProgressCallback | None = None) -> BenchResult:
    """Fast, paced, view and latency runs at each hop, each in a fresh process; write ``stream.json``."""
    from edge_sed.bundle import read_bundle

    model, recording, placements = _resolve_inputs(config)
    rate = read_bundle(model).frontend.sample_rate
    if config.latency_set:
        _check_latency_set(Path(config.latency_set))
    tick = progress or (lambda done, total, what: None)
    modes = (*MODES, *([MIC_MODE] if config.device else []), *([SET_MODE] if config.latency_set else []))
    plan = [(mode, hop, None) for hop in config.hops_s for mode in modes]
    plan += [(mode, hop, block) for hop in config.hops_s for block in _other_blocks(config.blocks_s, hop)
             for mode in modes if mode in BLOCK_MODES]
    runs = []
    with tempfile.TemporaryDirectory(prefix="edge-sed-bench-") as tmp:
        tick(0, len(plan), f"writing a {config.long_s:g} s recording")
        long = long_recording(Path(tmp) / "long.wav", config.long_s, rate)
        for index, (mode, hop, block) in enumerate(plan):
            tick(index, len(plan), f"{mode} run, hop {hop * 1000:.0f} ms, block {wake_block_s(hop, block) * 1000:.0f} ms")
            if mode == "latency":
                runs.append(_run_child(Path(model), Path(recording), mode, hop, block, None, config.startup_s, placements))
            elif mode == MIC_MODE:
                runs.append(_run_child(Path(model), config.device, mode, hop, block, config.paced_s, config.startup_s))
            elif mode == SET_MODE:
                runs.append(_run_child(Path(model), Path(config.latency_set), mode, hop, block, None, config.startup_s))
            else:
                seconds = None if mode == "fast" else config.paced_s
                runs.append(_run_child(Path(model), long, mode, hop, block, seconds, config.startup_s))
    tick(len(plan), len(plan), "done")
    goals = [_listen_goal(runs, config, block)
             for block in (wake_block_s(GOAL_HOP_S), *_other_blocks(config.blocks_s, GOAL_HOP_S))]
    settings = {**dataclasses.asdict(config), "model": model, "latency_recording": recording,
                "placements": [list(p) for p in placements], "modes": list(modes)}
    path = write_results("stream", runs, settings=settings, goals=goals, results_dir=config.results_dir)
    return BenchResult(path, runs, goals)


def _latency_set(annotations: Path) -> tuple[list[Any], dict[str, str]]:
    """A latency set's known events (:class:`~edge_sed.events.Event`) and its recordings, in the
    TSV's order: path beside the TSV -> the name the TSV gives it."""
    from edge_sed.evaluation import read_tsv

    events = read_tsv(annotations)
    return events, {str(annotations.parent / name): name for name in dict.fromkeys(event.file for event in events)}


def _check_latency_set(annotations: Path) -> None:
    """A :class:`ConfigError` now, not in every run, for a set whose TSV or recordings are missing."""
    _, names = _latency_set(annotations)
    if not names:
        raise ConfigError(f"{str(annotations)!r} lists no events; give a DCASE TSV (filename, onset, offset, event_label)")
    missing = [name for path, name in names.items() if not Path(path).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ConfigError(f"{str(annotations)!r} lists {missing[0]!r}{more}, not found beside it; "
                          "keep the recordings in the TSV's folder (as edge-sed synth writes them)")


def _other_blocks(blocks_s: Sequence[float], hop_s: float) -> list[float]:
    """The distinct *blocks_s* a run at *hop_s* can take (at least the hop), but for its default
    block: that is the default run."""
    default = wake_block_s(hop_s)
    return [block for block in dict.fromkeys(blocks_s) if block >= hop_s - 1e-9 and not math.isclose(block, default)]


def _listen_goal(runs: Sequence[dict[str, Any]], config: StreamBenchConfig, block_s: float) -> Goal:
    """The 1 % goal at a 250 ms hop, judged on the live run (else the view run) with *block_s* blocks."""
    mode = MIC_MODE if config.device else "view"
    live = next((r for r in runs if r["mode"] == mode and r["hop_s"] == GOAL_HOP_S and math.isclose(r["block_s"], block_s)
                 and "error" not in r), None)
    how = f"live from input device {config.device}" if config.device else "paced like a microphone"
    per_wake = "one hop" if math.isclose(block_s, GOAL_HOP_S) else f"{block_s:g} s"
    how_set = "as by default" if math.isclose(block_s, wake_block_s(GOAL_HOP_S)) else f"--block {block_s:g}"
    blocks = f"{per_wake} per wake-up ({how_set})"
    return Goal(f"listen: share of one core at a 250 ms hop after start-up ({how}, terminal view drawn, {blocks})",
                LISTEN_CORE_SHARE_GOAL, live["core_share"] if live else None, higher_is_better=False)


def _measure_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return measure_run(spec["model"], spec["recording"], spec["mode"], spec["hop_s"], spec["seconds"],
                       [tuple(p) for p in spec["placements"]], spec["startup_s"], spec["block_s"])


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:], _measure_spec))
