"""The one loop: Source -> StreamingLogMel -> window every hop -> Backend ->
EventTracker -> Sinks.

Each log-mel frame is computed once and written into a preallocated
:class:`FrameWindow`; every hop the last ``bundle.window_frames`` frames go to
the backend (a waveform-input bundle gets the samples of the same stretch).
The windows that one block of audio completes are scored in one backend call
(``listen --block 1`` at a 250 ms hop: four windows, one call).

``edge-sed detect`` and ``edge-sed listen`` both call :func:`run`; they differ
only in their sources. Time is the count of samples at the model's rate that
the source has delivered; it becomes seconds only where an event or a status
is made. Whatever ends the run (end of stream, ``--duration``, an error,
Ctrl-C) the tracker closes its open events at the current stream time, they
are emitted, and the sinks are closed (flushed).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from edge_sed.backends import Backend
from edge_sed.config import StreamConfig, TrackerConfig
from edge_sed.errors import ConfigError
from edge_sed.events import Event, StreamStatus
from edge_sed.frontend import StreamingLogMel
from edge_sed.sources import Source
from edge_sed.tracker import EventTracker

__all__ = ["PipelineConfig", "RunSummary", "FrameWindow", "run"]

log = logging.getLogger(__name__)

#: The level reported for digital silence.
SILENCE_DBFS = -120.0
#: The longest ``--duration`` (about 31 years).
MAX_DURATION_S = 1e9

#: BLAS threads while the loop runs. It is single-threaded by design, and a BLAS call on a block
#: of 0.75 s or more (the mel projection, the level's dot product) would wake OpenBLAS's worker
#: threads, which then spin between hops: 11-14 % of a core on a 2-core machine at 0.75-1 s
#: blocks, against under 1 % without them (0.5 s blocks did not wake them).
BLAS_THREADS = 1


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """How the loop runs: window/hop, event tracking, and an optional time limit."""

    stream: StreamConfig
    tracker: TrackerConfig
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.duration_s is not None and not 0 < self.duration_s <= MAX_DURATION_S:
            raise ConfigError(f"--duration must be positive seconds (up to {MAX_DURATION_S:g}), got {self.duration_s!r}")


@dataclass(slots=True)
class RunSummary:
    """What a run did: counts of windows, events and trouble (never silent)."""

    windows: int = 0
    events: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    counters: Counter[str] = field(default_factory=Counter)
    sink_failures: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the console."""
        trouble = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in sorted(self.counters.items()) if value)
        failed = ", ".join(f"{name} failed {count}x" for name, count in self.sink_failures.items() if count)
        parts = [f"{self.seconds:.1f} s of audio", f"{self.windows} windows", f"{self.events} events", trouble, failed]
        return "; ".join(part for part in parts if part)


class FrameWindow:
    """The last *frames* log-mel frames in a preallocated array, without copies.

    Each frame is written twice (at ``i`` and ``i + frames``), so the latest
    window is always one contiguous slice.
    """

    def __init__(self, frames: int, n_mels: int, floor_db: float) -> None:
        self.frames = frames
        self._data = np.full((2 * frames, n_mels), floor_db, dtype=np.float32)
        self._next = 0
        self.pushed = 0

    def extend(self, frames: np.ndarray) -> None:
        """Append frames, shape (k, n_mels), oldest first."""
        self.pushed += len(frames)
        kept = frames[-self.frames :]  # older ones would be overwritten anyway
        rows = (self._next + np.arange(len(kept))) % self.frames
        self._data[rows] = kept
        self._data[rows + self.frames] = kept
        self._next = (self._next + len(kept)) % self.frames

    def window(self) -> np.ndarray:
        """The last ``frames`` frames, oldest first, shape (frames, n_mels) (a view)."""
        return self._data[self._next : self._next + self.frames]


class _SampleHistory:
    """Recent samples for waveform-input models: windows of *window_samples* ending
    at any sample the frame clock has reached (zeros before the stream's start)."""

    def __init__(self, window_samples: int, lookahead: int) -> None:
        self.window_samples = window_samples
        self._span = window_samples + lookahead  # a frame completes *lookahead* samples after its centre
        self._samples = np.zeros(self._span, dtype=np.float32)
        self._start = -self._span  # stream index of self._samples[0]

    def push(self, block: np.ndarray) -> None:
        """Append a block; keep what a window ending at any frame it completes can need."""
        joined = np.concatenate([self._samples, block])
        keep = self._span + block.size
        self._start += joined.size - min(keep, joined.size)
        self._samples = joined[-keep:]

    def window(self, end: int) -> np.ndarray:
        """Samples ``[end - window_samples, end)``, shape (window_samples,)."""
        stop = end - self._start
        return self._samples[stop - self.window_samples : stop]


class _Stream:
    """One source's run: frames -> windows -> scores -> events, all in sample time."""

    def __init__(self, source: Source, backend: Backend, sinks: Any, config: PipelineConfig, summary: RunSummary) -> None:
        bundle = backend.bundle
        frontend = bundle.frontend
        self.source, self.backend, self.sinks, self.summary = source, backend, sinks, summary
        self.rate, self.hop_length = frontend.sample_rate, frontend.hop_length
        self.labels = bundle.labels
        self.hop_frames = max(1, round(config.stream.hop_s * frontend.frame_rate))
        self.window_frames = bundle.window_frames
        self.logmel = StreamingLogMel(frontend)
        self.frames = FrameWindow(self.window_frames, frontend.n_mels, 10.0 * float(np.log10(frontend.amin)))
        start_wall = datetime.now(timezone.utc) if getattr(source, "paced", source.live) else None  # see Source.paced
        self.tracker = EventTracker(self.labels, config.tracker, self.hop_frames * self.hop_length / self.rate, start_wall)
        self.samples = _SampleHistory(bundle.window_samples, frontend.n_fft // 2) if bundle.input == "waveform" else None
        self.max_samples = None if config.duration_s is None else round(config.duration_s * self.rate)
        self.n_samples = 0
        self.windows = 0
        self._energy, self._energy_n = 0.0, 0
        self._busy_s = 0.0
        self._level, self._rtf = SILENCE_DBFS, 0.0

    def feed(self, block: np.ndarray) -> bool:
        """Take one block; False once ``duration_s`` is reached."""
        started = time.perf_counter()
        if self.max_samples is not None:
            block = block[: self.max_samples - self.n_samples]
        self.n_samples += block.size
        self._energy += float(np.dot(block, block))
        self._energy_n += block.size
        if self.samples is not None:
            self.samples.push(block)
        self._frames(self.logmel.push(block))
        self._busy_s += time.perf_counter() - started
        return self.max_samples is None or self.n_samples < self.max_samples

    def finish(self) -> None:
        """End of stream: the last frames, a padded window for a stream shorter than one."""
        self._frames(self.logmel.flush())
        if self.windows == 0 and self.frames.pushed:
            last = self.frames.pushed - 1
            self._score([(last, self._window(last))])

    def close(self) -> None:
        """Close the events still open at the current stream time and emit them."""
        self._emit(self.tracker.close(self.n_samples / self.rate))

    def _frames(self, frames: np.ndarray) -> None:
        """Add frames to the window; the windows whose hop's last frame they bring are scored together."""
        completed: list[tuple[int, np.ndarray]] = []
        while len(frames):
            due = self._next_scored_frame()
            count = min(len(frames), due - self.frames.pushed + 1)
            self.frames.extend(frames[:count])
            frames = frames[count:]
            if self.frames.pushed - 1 == due:
                completed.append((due, self._window(due)))
        if completed:
            self._score(completed)

    def _window(self, last_frame: int) -> np.ndarray:
        """What the backend takes for the window ending at *last_frame*, the latest frame (a copy:
        later frames reuse the storage). A waveform-input model gets the same stretch of samples,
        ``[end - window_samples, end)``."""
        if self.samples is None:
            return self.frames.window().copy()
        return self.samples.window(last_frame * self.hop_length)

    def _next_scored_frame(self) -> int:
        """Index of the next frame that ends a window: the first full window, then every hop."""
        first = self.window_frames - 1
        hops = max(0, -(-(self.frames.pushed - first) // self.hop_frames))  # ceil, never before the first
        return first + hops * self.hop_frames

    def _score(self, windows: list[tuple[int, np.ndarray]]) -> None:
        """Score windows, each ``(last_frame, features)``, in one backend call, then track them in order."""
        scores = np.asarray(self.backend.score(np.stack([features for _, features in windows])), dtype=np.float32)
        for (last_frame, _), row in zip(windows, scores):
            centre_frame = max(0.0, last_frame - (self.window_frames - 1) / 2)
            self.windows += 1
            self.summary.windows += 1
            self._emit(self.tracker.push(row, centre_frame * self.hop_length / self.rate))
            self._status(row, last_frame * self.hop_length / self.rate)

    def _emit(self, events: Iterable[Event]) -> None:
        for event in events:
            if self.source.file is not None:
                event = dataclasses.replace(event, file=self.source.file)
            if event.offset is not None:
                self.summary.events += 1
            self.sinks.emit(event)

    def _status(self, scores: np.ndarray, time_s: float) -> None:
        """Send a :class:`StreamStatus`; level and real-time factor cover the audio since the last one."""
        if self._energy_n:
            mean_square = self._energy / self._energy_n
            self._level = max(SILENCE_DBFS, 10.0 * float(np.log10(mean_square))) if mean_square > 0 else SILENCE_DBFS
            self._rtf = self._busy_s / (self._energy_n / self.rate)
        counters = self.summary.counters + self.source.counters
        self.sinks.update(StreamStatus(
            time_s=time_s, labels=self.labels, scores=tuple(scores.tolist()),
            active=tuple(self.tracker.active), level_dbfs=self._level, real_time_factor=self._rtf,
            overruns=counters["overruns"], counters=dict(counters),
        ))
        self._energy, self._energy_n, self._busy_s = 0.0, 0, 0.0


def run(sources: Sequence[Source], backend: Backend, sinks: Any, config: PipelineConfig) -> RunSummary:
    """Run every source in turn through the detector into *sinks*, then close them.

    Each source is its own stream (time from 0, fresh tracker). Ctrl-C stops the
    run cleanly: the summary says ``interrupted``. Errors propagate after the
    events so far are flushed. numpy's BLAS runs on :data:`BLAS_THREADS` threads
    meanwhile.

    Returns
    -------
    RunSummary
    """
    summary = RunSummary()
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        _run_sources(sources, backend, sinks, config, summary)
    log.info("run: %s", summary.describe())
    return summary


def _run_sources(sources: Sequence[Source], backend: Backend, sinks: Any, config: PipelineConfig, summary: RunSummary) -> None:
    """The body of :func:`run`: each source to its end, then the sinks closed."""
    try:
        for source in sources:
            backend.reset()
            stream = _Stream(source, backend, sinks, config, summary)
            try:
                for block in source:
                    if not stream.feed(block):
                        break
                stream.finish()
            except KeyboardInterrupt:
                summary.interrupted = True
            finally:
                stream.close()
                source.close()
                summary.seconds += stream.n_samples / stream.rate
                summary.counters.update(source.counters)
            if summary.interrupted:
                break
    finally:
        for source in sources:  # those not reached after Ctrl-C or an error (closing twice is harmless)
            source.close()
        sinks.close()
        summary.sink_failures = dict(sinks.failures)
