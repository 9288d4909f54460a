"""A fixed-capacity sample buffer between one producer (the audio callback) and
one consumer (the pipeline loop).

The producer only copies into a preallocated numpy array and moves its write
count; the consumer copies out and moves its read count. Neither ever waits for
the other. When a write does not fit, the samples that do not fit (the newest)
are dropped and counted: dropping the oldest would mean the producer moving the
consumer's read count, which a lock-free single-producer/single-consumer buffer
must not do. ``overruns`` counts writes that lost samples, ``dropped`` the
samples lost.
"""

from __future__ import annotations

import numpy as np

from edge_sed.errors import ConfigError

__all__ = ["RingBuffer"]


class RingBuffer:
    """Single-producer, single-consumer ring of audio frames.

    Parameters
    ----------
    capacity : int
        Frames the buffer holds (a frame is one sample per channel).
    channels : int
        Samples per frame; blocks are shape (n,) for 1 channel or (n, channels).
    """

    def __init__(self, capacity: int, channels: int = 1) -> None:
        if capacity <= 0 or channels <= 0:
            raise ConfigError(f"ring buffer needs a positive capacity and channels, got {capacity!r}, {channels!r}")
        self.capacity = capacity
        self.channels = channels
        self._data = np.zeros((capacity, channels), dtype=np.float32)
        self._written = 0  # frames ever written (only the producer changes it)
        self._read = 0  # frames ever read (only the consumer changes it)
        self.overruns = 0
        self.dropped = 0

    @property
    def available(self) -> int:
        """Frames written and not yet read."""
        return self._written - self._read

    def write(self, block: np.ndarray) -> None:
        """Copy *block*, shape (n, channels) or (n,), in; drop and count what does not fit.

        Never blocks, never raises for a full buffer: safe in an audio callback.
        """
        n = len(block)
        free = self.capacity - (self._written - self._read)
        if n > free:
            self.overruns += 1
            self.dropped += n - free
            n = free
        if n == 0:
            return
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        rows = block.reshape(len(block), -1) if block.ndim == 1 else block
        self._data[start : start + first] = rows[:first]
        if first < n:
            self._data[: n - first] = rows[first:n]
        self._written += n

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Take up to *max_frames* (all available when None) frames out, oldest first.

        Returns
        -------
        ndarray, shape (k, channels), float32, a copy
        """
        n = self.available if max_frames is None else min(max_frames, self.available)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out = np.concatenate([self._data[start : start + first], self._data[: n - first]])
        self._read += n
        return out

    def reset(self) -> None:
        """Empty the buffer and zero the counters (only while no producer runs)."""
        self._written = self._read = 0
        self.overruns = self.dropped = 0
