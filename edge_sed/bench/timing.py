"""Timing one callable (warm-up, then repeats) and a process's peak resident memory."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from edge_sed.errors import ConfigError

__all__ = ["TimingStats", "time_calls", "peak_rss_mib", "current_rss_mib"]

@dataclass(frozen=True, slots=True)
class TimingStats:
    """Wall-clock times of repeated calls, in milliseconds."""

    repeats: int
    median_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def from_seconds(cls, seconds: np.ndarray) -> TimingStats:
        """Summarise per-call times, shape (repeats,), in seconds."""
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        if ms.size == 0:
            raise ConfigError("no timed calls to summarise (repeats must be >= 1)")
        return cls(
            repeats=int(ms.size),
            median_ms=float(np.median(ms)),
            p95_ms=float(np.percentile(ms, 95)),
            mean_ms=float(ms.mean()),
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_calls(
    call: Callable[[int], object],
    *,
    warmup: int,
    repeats: int,
    on_call: Callable[[], None] | None = None,
) -> TimingStats:
    """Time ``call(i)`` for ``i`` in ``range(repeats)`` after *warmup* untimed calls.

    Parameters
    ----------
    call : callable
        Takes the call index (to cycle through inputs); its result is ignored.
    warmup, repeats : int
        Untimed calls first (caches, lazy allocation, thread pools), then timed ones.
    on_call : callable, optional
        Called after each timed call (a progress tick); not timed.
    """
    if warmup < 0 or repeats < 1:
        raise ConfigError(f"need warmup >= 0 and repeats >= 1, got warmup={warmup!r}, repeats={repeats!r}")
    for i in range(warmup):
        call(i)
    seconds = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        seconds[i] = time.perf_counter() - start
        if on_call is not None:
            on_call()
    return TimingStats.from_seconds(seconds)


def _proc_status_mib(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmHWM``, ``VmRSS``) in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: ``VmHWM``, this program's own high-water mark (``ru_maxrss`` would
    also count the parent's memory from before ``exec``); elsewhere ``ru_maxrss``.
    """
    peak = _proc_status_mib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024  # macOS: bytes


def current_rss_mib() -> float:
    """Resident memory of this process now, in MiB (``VmRSS``; the peak off Linux)."""
    current = _proc_status_mib("VmRSS")
    return peak_rss_mib() if current is None else current
