"""The event tracker: hypothesis properties, streaming == offline, known steps, wall stamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge_sed.config import ClassRule, TrackerConfig
from edge_sed.errors import ConfigError
from edge_sed.events import Event
from edge_sed.tracker import EventTracker, median_hops, track_events

LABELS = ("dog", "siren", "rain")
TOLERANCE = 1e-9


def _run(tracker: EventTracker, scores: np.ndarray, times: np.ndarray, end_s: float) -> list[Event]:
    emitted: list[Event] = []
    for row, time_s in zip(scores, times):
        emitted += tracker.push(row, float(time_s))
    return emitted + tracker.close(end_s)


@st.composite
def rules(draw) -> ClassRule:
    on = draw(st.sampled_from([0.2, 0.5, 0.7]))
    return ClassRule(
        on_threshold=on,
        off_threshold=draw(st.sampled_from([off for off in (0.1, 0.3, 0.5, 0.7) if off <= on])),
        median_s=draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.3])),
        min_duration_s=draw(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.9])),
        max_gap_s=draw(st.sampled_from([0.0, 0.2, 0.25, 0.5, 1.0])),
    )


@st.composite
def cases(draw):
    hop_s = draw(st.sampled_from([0.1, 0.25, 0.32, 0.5]))
    config = TrackerConfig(default=draw(rules()), per_class=(("siren", draw(rules())), ("rain", draw(rules()))))
    scores = draw(
        hnp.arrays(np.float64, st.tuples(st.integers(0, 60), st.just(len(LABELS))),
                   elements=st.sampled_from([0.0, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0]))
    )
    first_time_s = draw(st.sampled_from([hop_s / 2, 0.5, 1.0]))
    times = first_time_s + np.arange(len(scores)) * hop_s
    end_s = draw(st.floats(0.0, 30.0))
    return hop_s, config, scores, times, end_s


@settings(max_examples=300, deadline=None)
@given(cases())
def test_tracker_properties(case) -> None:
    hop_s, config, scores, times, end_s = case
    tracker = EventTracker(LABELS, config, hop_s)
    emitted = _run(tracker, scores, times, end_s)
    assert tracker.active == ()

    onsets = [(ev.label, ev.onset) for ev in emitted if ev.offset is None]
    completes = [ev for ev in emitted if ev.offset is not None]
    # every onset notification is followed by exactly one complete event with its onset, and vice versa
    assert sorted(onsets) == sorted((ev.label, ev.onset) for ev in completes)
    for i, ev in enumerate(emitted):
        if ev.offset is None:
            later = [e for e in emitted[i + 1 :] if (e.label, e.onset, e.offset is None) == (ev.label, ev.onset, False)]
            assert len(later) == 1
    for label in LABELS:
        rule = config.rule(label)
        mine = [ev for ev in completes if ev.label == label]
        assert mine == sorted(mine, key=lambda ev: ev.onset)
        for ev in mine:
            assert ev.onset < ev.offset
            assert ev.offset - ev.onset >= rule.min_duration_s - TOLERANCE
            assert ev.confidence >= rule.on_threshold
        for before, after in zip(mine, mine[1:]):
            assert after.onset - before.offset > rule.max_gap_s - TOLERANCE
            assert after.onset >= before.offset

    offline = track_events(scores, LABELS, config, hop_s, first_time_s=float(times[0]) if len(times) else None,
                           end_s=end_s)
    assert sorted(completes, key=lambda ev: (ev.onset, ev.label)) == offline


@settings(max_examples=50, deadline=None)
@given(level=st.floats(0.0, 0.299), frames=st.integers(0, 40), hop_s=st.sampled_from([0.1, 0.25]))
def test_constant_score_below_off_threshold_never_gives_events(level: float, frames: int, hop_s: float) -> None:
    config = TrackerConfig(default=ClassRule(on_threshold=0.5, off_threshold=0.3, min_duration_s=0.0))
    scores = np.full((frames, len(LABELS)), level)
    tracker = EventTracker(LABELS, config, hop_s)
    assert _run(tracker, scores, np.arange(frames) * hop_s, frames * hop_s) == []


@pytest.mark.parametrize("hop_s", [0.1, 0.25, 0.5])
@pytest.mark.parametrize("median_s", [0.0, 0.5, 1.0])
def test_step_gives_one_event_at_the_true_times(hop_s: float, median_s: float) -> None:
    true_onset, true_offset = 3.3, 7.1
    rule = ClassRule(on_threshold=0.5, off_threshold=0.3, median_s=median_s, min_duration_s=0.4, max_gap_s=0.3)
    times = 0.5 + np.arange(int(12 / hop_s)) * hop_s  # centres of 1 s windows
    scores = np.full((len(times), 1), 0.05)
    scores[(times >= true_onset) & (times < true_offset), 0] = 0.9
    tracker = EventTracker(["siren"], TrackerConfig(default=rule), hop_s)

    per_push = [tracker.push(row, float(t)) for row, t in zip(scores, times)]
    final = tracker.close(float(times[-1]))
    onset_push = next(i for i, events in enumerate(per_push) if events)
    (note,) = per_push[onset_push]
    complete = [ev for events in per_push[onset_push + 1 :] for ev in events] + final
    assert len(complete) == 1
    (event,) = complete

    assert note.offset is None and note.onset == event.onset and note.confidence == pytest.approx(0.9)
    assert abs(event.onset - true_onset) <= hop_s
    assert abs(event.offset - true_offset) <= hop_s
    assert event.confidence == pytest.approx(0.9)
    # the onset is confirmed (median delay) + (min duration - 1 hop) after the first high window was pushed
    first_high = int(np.argmax(scores[:, 0] > 0.5))
    delay = median_hops(median_s, hop_s) // 2
    assert onset_push == first_high + delay + int(np.ceil(0.4 / hop_s - 1e-9)) - 1


def test_events_open_at_close_end_there_with_wall_stamps() -> None:
    start = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    tracker = EventTracker(["dog", "rain"], TrackerConfig(default=ClassRule(median_s=0.0, min_duration_s=0.5)), 0.25, start)
    emitted = []
    for k in range(8):
        emitted += tracker.push(np.array([0.9, 0.1]), 0.5 + k * 0.25)
    assert [ev.kind for ev in emitted] == ["onset"]
    assert tracker.active == ("dog",)
    (event,) = tracker.close(10.0)
    assert event == Event(
        "dog", 0.375, 10.0, 0.9,
        onset_wall="2026-11-23T12:00:00.375000+01:00", offset_wall="2026-11-23T12:00:10+01:00",
    )
    assert tracker.active == ()
    assert tracker.close(11.0) == []


def test_reset_forgets_a_stream() -> None:
    tracker = EventTracker(["dog"], TrackerConfig(default=ClassRule(median_s=0.0, min_duration_s=0.0)), 0.5)
    assert [ev.kind for ev in tracker.push(np.array([1.0]), 0.25)] == ["onset"]
    tracker.reset()
    assert tracker.active == ()
    assert tracker.close(5.0) == []


def test_naive_start_wall_is_refused() -> None:
    with pytest.raises(ConfigError, match="start_wall must carry a timezone"):
        EventTracker(["dog"], TrackerConfig(), 0.25, datetime(2026, 1, 1))
