"""RingBuffer: order, wrap-around, overrun counting (drop newest), any write/read sequence."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sed.ringbuffer import RingBuffer


def test_wraps_around_and_keeps_order() -> None:
    ring = RingBuffer(8)
    ring.write(np.arange(6, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(4)[:, 0], [0, 1, 2, 3])
    ring.write(np.arange(6, 12, dtype=np.float32))  # crosses the end of the array
    assert ring.available == 8
    np.testing.assert_array_equal(ring.read()[:, 0], np.arange(4, 12))
    assert ring.available == 0 and ring.overruns == 0


def test_overrun_drops_the_newest_samples_and_counts_them() -> None:
    ring = RingBuffer(5)
    ring.write(np.arange(4, dtype=np.float32))
    ring.write(np.arange(10, 13, dtype=np.float32))  # only one of three fits
    ring.write(np.array([99.0], dtype=np.float32))  # full: all dropped
    assert (ring.overruns, ring.dropped) == (2, 3)
    np.testing.assert_array_equal(ring.read()[:, 0], [0, 1, 2, 3, 10])


def test_multichannel_frames() -> None:
    ring = RingBuffer(4, channels=2)
    block = np.array([[1, -1], [2, -2], [3, -3]], dtype=np.float32)
    ring.write(block)
    ring.read(2)
    ring.write(block)
    np.testing.assert_array_equal(ring.read(), [[3, -3], [1, -1], [2, -2], [3, -3]])


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 16),
       ops=st.lists(st.one_of(st.integers(0, 20).map(lambda n: ("w", n)), st.integers(0, 20).map(lambda n: ("r", n))),
                    max_size=40))
def test_any_writes_and_reads_return_the_written_samples_in_order_minus_counted_overruns(capacity, ops) -> None:
    ring = RingBuffer(capacity)
    counter, kept, got, dropped = 0, [], [], 0
    for op, n in ops:
        if op == "w":
            block = np.arange(counter, counter + n, dtype=np.float32)
            counter += n
            fits = capacity - ring.available
            kept.extend(block[:fits].tolist())
            dropped += max(0, n - fits)
            ring.write(block)
        else:
            got.extend(ring.read(n)[:, 0].tolist())
    got.extend(ring.read()[:, 0].tolist())
    assert got == kept
    assert ring.dropped == dropped == counter - len(got)
