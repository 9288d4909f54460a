"""Score timelines to sound events: median filter -> hysteresis -> min duration / gap merge.

:class:`EventTracker` is the streaming form (one ``push`` per hop, small state,
``reset()``, no wall time inside); :func:`track_events` is the offline form over
a whole score matrix, written independently with array operations, and gives
exactly the complete events the streaming tracker gives (a test holds them
together). Use it for evaluation and threshold tuning.

The rules, per class (:meth:`TrackerConfig.rule`):

1. **Median filter** over ``median_s``, rounded to an odd number of hops
   ``2 * d + 1``, centred; the first and last scores are repeated at the edges.
   A centred filter needs ``d`` hops of look-ahead, so the streaming tracker
   decides about the frame pushed ``d`` hops ago: its **delay is ``d * hop_s``**.
   Event times are placed at the frame's own stream time, not late by that delay.
2. **Hysteresis**: a class becomes active at a filtered score ``>= on_threshold``
   and stays active until it drops ``< off_threshold``.
3. **Gap merging, then minimum duration** (counted in hops): active runs
   separated by at most ``max_gap_s`` are one event; an event shorter than
   ``min_duration_s`` is dropped.

Frame ``k`` (a window centred at ``time_s``) stands for the stretch
``[time_s - hop_s/2, time_s + hop_s/2)``: an event's onset is the start of its
first active frame and its offset the end of its last one. An onset
notification (``offset=None``) is emitted as soon as the event has lasted
``min_duration_s``, that is ``d + ceil(min_duration_s / hop_s) - 1`` hops after
its first active frame was pushed; the complete event once ``max_gap_s`` has
passed without activity. ``confidence`` is the peak filtered score over the event.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

import numpy as np
import scipy.ndimage

from edge_sed.config import ClassRule, TrackerConfig
from edge_sed.errors import ConfigError
from edge_sed.events import Event

__all__ = ["EventTracker", "track_events", "median_hops"]

_ROUNDING = 1e-9  # seconds-to-hops conversions tolerate float noise (0.3 / 0.1 = 2.9999999999999996)


def median_hops(median_s: float, hop_s: float) -> int:
    """The median filter's length in hops: ``median_s / hop_s`` rounded to the nearest odd number (>= 1)."""
    return 2 * int(math.floor(median_s / hop_s / 2 + _ROUNDING)) + 1


def _min_frames(rule: ClassRule, hop_s: float) -> int:
    """Fewest frames an event must span to last ``min_duration_s``."""
    return max(1, math.ceil(rule.min_duration_s / hop_s - _ROUNDING))


def _max_gap_frames(rule: ClassRule, hop_s: float) -> int:
    """Most inactive frames between two runs that still merge them into one event."""
    return int(math.floor(rule.max_gap_s / hop_s + _ROUNDING))


@dataclass(frozen=True, slots=True)
class _ClassPlan:
    """A class rule converted to hops, shared by the streaming and offline trackers."""

    delay: int  # d: the median filter is 2*d+1 hops long
    on: float
    off: float
    min_frames: int
    max_gap_frames: int

    @classmethod
    def of(cls, rule: ClassRule, hop_s: float) -> _ClassPlan:
        return cls(
            delay=median_hops(rule.median_s, hop_s) // 2,
            on=rule.on_threshold,
            off=rule.off_threshold,
            min_frames=_min_frames(rule, hop_s),
            max_gap_frames=_max_gap_frames(rule, hop_s),
        )


class _Stamper:
    """Turns stream seconds into :class:`Event` values (with wall-clock stamps when a start is known)."""

    def __init__(self, start_wall: datetime | None) -> None:
        if start_wall is not None and start_wall.utcoffset() is None:
            raise ConfigError(
                f"start_wall must carry a timezone, got {start_wall.isoformat()!r}; "
                "use datetime.now(timezone.utc) or .astimezone()"
            )
        self.start_wall = start_wall

    def _wall(self, time_s: float) -> str:
        return (self.start_wall + timedelta(seconds=time_s)).isoformat()  # type: ignore[operator]

    def event(self, label: str, onset: float, offset: float | None, confidence: float) -> Event:
        if self.start_wall is None:
            return Event(label, onset, offset, confidence)
        return Event(
            label,
            onset,
            offset,
            confidence,
            onset_wall=self._wall(onset),
            offset_wall=None if offset is None else self._wall(offset),
        )


def _plans(labels: Sequence[str], config: TrackerConfig, hop_s: float) -> list[_ClassPlan]:
    if hop_s <= 0:
        raise ConfigError(f"hop_s must be positive, got {hop_s!r}")
    return [_ClassPlan.of(config.rule(label), hop_s) for label in labels]


@dataclass(frozen=True, slots=True)
class _DelayGroup:
    """The classes whose median filter has the same delay, with their thresholds."""

    delay: int
    classes: np.ndarray
    on: np.ndarray
    off: np.ndarray


@dataclass(slots=True)
class _OpenEvent:
    """One class's event in progress (a run of active frames, maybe in its gap)."""

    first: int  # frame index of the first active frame
    last: int  # frame index of the last active frame
    onset: float
    end: float  # end of the last active frame, seconds
    peak: float
    confirmed: bool = False


class EventTracker:
    """Streaming event tracker: one :meth:`push` per hop, events out as they are decided.

    Parameters
    ----------
    labels : sequence of str
        Class names, in the order of the score vectors.
    config : TrackerConfig
        Per-class rules.
    hop_s : float
        Seconds between pushes.
    start_wall : datetime, optional
        Timezone-aware wall-clock time of stream time 0; events then carry
        ISO 8601 ``onset_wall``/``offset_wall`` stamps.
    """

    def __init__(
        self,
        labels: Sequence[str],
        config: TrackerConfig,
        hop_s: float,
        start_wall: datetime | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.hop_s = float(hop_s)
        self._plans = _plans(self.labels, config, self.hop_s)
        self._stamper = _Stamper(start_wall)
        delays = np.array([plan.delay for plan in self._plans], dtype=int)
        on = np.array([plan.on for plan in self._plans], dtype=np.float64)
        off = np.array([plan.off for plan in self._plans], dtype=np.float64)
        self._groups: list[_DelayGroup] = []
        for delay in np.unique(delays):
            classes = np.flatnonzero(delays == delay)
            self._groups.append(_DelayGroup(int(delay), classes, on[classes], off[classes]))
        self._max_delay = int(delays.max(initial=0))
        # The last 2 * max_delay + 1 score vectors, a ring written at self._next; each row is also
        # kept one ring length further on, so the latest k rows are always one contiguous slice.
        self._span = 2 * self._max_delay + 1
        self._raw = np.zeros((2 * self._span, len(self.labels)), dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget every score and event: the state of a new stream."""
        self._next = 0
        self._times: deque[float] = deque(maxlen=self._max_delay + 1)
        self._pushed = 0
        self._active = np.zeros(len(self.labels), dtype=bool)
        self._open: dict[int, _OpenEvent] = {}
        self._is_open = np.zeros(len(self.labels), dtype=bool)  # the keys of self._open

    @property
    def active(self) -> tuple[str, ...]:
        """Labels of the events whose onset was emitted and that have not ended yet."""
        return tuple(self.labels[c] for c, ev in sorted(self._open.items()) if ev.confirmed)

    @property
    def delay_s(self) -> float:
        """The longest median-filter delay over the classes, seconds."""
        return self._max_delay * self.hop_s

    def push(self, scores: np.ndarray, time_s: float) -> list[Event]:
        """Add one window's scores and return the events decided by it.

        Parameters
        ----------
        scores : ndarray, shape (classes,), float in [0, 1]
        time_s : float
            Stream time of the window's centre, seconds.

        Returns
        -------
        list of Event
            Onset notifications (``offset is None``) and complete events.
        """
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} scores, got {scores.shape[0]}")
        if self._pushed == 0:  # the filter's left edge repeats the first scores
            self._raw[:] = scores
            self._next = self._max_delay
        self._keep(scores)
        self._times.append(float(time_s))
        self._pushed += 1
        events: list[Event] = []
        newest = self._pushed - 1
        for group in self._groups:
            frame = newest - group.delay
            if frame >= 0:
                events += self._filter_and_advance(group, frame, self._times[-1 - group.delay])
        return events

    def close(self, time_s: float) -> list[Event]:
        """End the stream at *time_s*: decide the frames still held by the filter
        (the last scores repeat at the edge), then close every open event.

        An event still active ends at ``max(time_s, end of its last frame)``; one
        that never lasted ``min_duration_s`` is dropped. Nothing stays open.
        """
        events: list[Event] = []
        if self._pushed:
            last_raw = self._raw[self._next - 1].copy()
            newest = self._pushed - 1
            for step in range(1, self._max_delay + 1):
                self._keep(last_raw)
                for group in self._groups:
                    frame = newest - group.delay + step
                    if step <= group.delay and frame >= 0:
                        events += self._filter_and_advance(group, frame, self._times[-1 - group.delay + step])
        for c, ev in sorted(self._open.items()):
            if ev.confirmed:
                offset = max(float(time_s), ev.end) if self._active[c] else ev.end
                events.append(self._stamper.event(self.labels[c], ev.onset, offset, ev.peak))
        self.reset()
        return events

    def _keep(self, scores: np.ndarray) -> None:
        self._raw[self._next] = self._raw[self._next + self._span] = scores
        self._next = (self._next + 1) % self._span

    def _filter_and_advance(self, group: _DelayGroup, frame: int, time_s: float) -> list[Event]:
        end = self._next + self._span  # the last 2*delay+1 pushes are the rows before it
        latest = self._raw[end - 2 * group.delay - 1 : end]
        filtered = np.partition(latest, group.delay, axis=0)[group.delay, group.classes]  # the median of an odd count
        was_active = self._active[group.classes]
        now_active = np.where(was_active, filtered >= group.off, filtered >= group.on)
        self._active[group.classes] = now_active
        events: list[Event] = []
        for i in np.flatnonzero(now_active | self._is_open[group.classes]):
            event = self._advance(int(group.classes[i]), bool(now_active[i]), float(filtered[i]), frame, time_s)
            if event is not None:
                events.append(event)
        return events

    def _advance(self, c: int, active: bool, score: float, frame: int, time_s: float) -> Event | None:
        """One frame of one class (active, or inside an open event's gap)."""
        plan = self._plans[c]
        half_hop = self.hop_s / 2
        ev = self._open.get(c)
        if active:
            if ev is None:
                ev = self._open[c] = _OpenEvent(frame, frame, time_s - half_hop, time_s + half_hop, score)
                self._is_open[c] = True
            else:
                ev.last, ev.end, ev.peak = frame, time_s + half_hop, max(ev.peak, score)
            if not ev.confirmed and ev.last - ev.first + 1 >= plan.min_frames:
                ev.confirmed = True
                return self._stamper.event(self.labels[c], ev.onset, None, ev.peak)
            return None
        if ev is not None and frame - ev.last > plan.max_gap_frames:
            del self._open[c]
            self._is_open[c] = False
            if ev.confirmed:
                return self._stamper.event(self.labels[c], ev.onset, ev.end, ev.peak)
        return None


def track_events(
    scores: np.ndarray,
    labels: Sequence[str],
    config: TrackerConfig,
    hop_s: float,
    *,
    first_time_s: float | None = None,
    end_s: float | None = None,
    start_wall: datetime | None = None,
) -> list[Event]:
    """The complete events of a whole score matrix, as :class:`EventTracker` gives them.

    Parameters
    ----------
    scores : ndarray, shape (frames, classes), float in [0, 1]
        One row per window, windows ``hop_s`` apart.
    labels, config, hop_s, start_wall
        As for :class:`EventTracker`.
    first_time_s : float, optional
        Stream time of the first window's centre (default ``hop_s / 2``: frame
        ``k`` covers ``[k * hop_s, (k + 1) * hop_s)``).
    end_s : float, optional
        Where the stream ends (:meth:`EventTracker.close`'s ``time_s``); default:
        the end of the last frame.

    Returns
    -------
    list of Event
        Complete events, sorted by onset, then label.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(f"expected scores of shape (frames, {len(labels)}), got {scores.shape}")
    plans = _plans(labels, config, hop_s)
    stamper = _Stamper(start_wall)
    n_frames = scores.shape[0]
    if n_frames == 0:
        return []
    first = hop_s / 2 if first_time_s is None else first_time_s
    times = first + np.arange(n_frames) * hop_s
    end = float(times[-1]) + hop_s / 2 if end_s is None else float(end_s)
    events: list[Event] = []
    for c, (label, plan) in enumerate(zip(labels, plans)):
        filtered = scipy.ndimage.median_filter(scores[:, c], size=2 * plan.delay + 1, mode="nearest")
        active = _hysteresis(filtered, plan.on, plan.off)
        for start, stop in _merged_runs(active, plan.max_gap_frames):
            if stop - start < plan.min_frames:
                continue
            onset = float(times[start]) - hop_s / 2
            offset = float(times[stop - 1]) + hop_s / 2
            if stop == n_frames:
                offset = max(end, offset)
            events.append(stamper.event(label, onset, offset, float(filtered[start:stop].max())))
    return sorted(events, key=lambda ev: (ev.onset, ev.label))


def _hysteresis(filtered: np.ndarray, on: float, off: float) -> np.ndarray:
    """Active frames: switched on at ``>= on``, off at ``< off``, otherwise the state holds."""
    decided = (filtered >= on) | (filtered < off)
    last_decided = np.maximum.accumulate(np.where(decided, np.arange(filtered.size), -1))
    return np.where(last_decided >= 0, filtered[np.maximum(last_decided, 0)] >= on, False)


def _merged_runs(active: np.ndarray, max_gap_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of active runs, merging runs at most *max_gap_frames* apart."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs: list[tuple[int, int]] = []
    for start, stop in zip(starts.tolist(), stops.tolist()):
        if runs and start - runs[-1][1] <= max_gap_frames:
            runs[-1] = (runs[-1][0], stop)
        else:
            runs.append((start, stop))
    return runs
