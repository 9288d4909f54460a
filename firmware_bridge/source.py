"""Audio from a microcontroller: PCM frames in, float32 mono blocks at the model's rate out.

``edge-sed listen --source serial:///dev/ttyUSB0?baud=921600`` ends here: the
MCU streams PCM frames, the host detects. :class:`PcmAssembler` (no I/O) puts
the frames in order by their ``first_sample`` index, fills a gap with silence
so that stream time stays right, and counts what it saw; :class:`BridgeSource`
reads a transport, decodes frames, assembles them and resamples with soxr.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import soxr

from edge_sed.audio import INT16_FULL_SCALE, RESAMPLE_QUALITY
from edge_sed.errors import AudioInputError
from edge_sed.sources import MAX_RATE, MIN_RATE
from firmware_bridge.protocol import FrameDecoder, PcmMessage
from firmware_bridge.transports import Transport, open_transport, parse_url

__all__ = ["PcmCounters", "PcmAssembler", "BridgeSource", "INT16_FULL_SCALE"]

log = logging.getLogger(__name__)

_INDEX_MOD = 1 << 32


@dataclass(slots=True)
class PcmCounters:
    """What the assembler saw: frames used, gaps filled, frames dropped, restarts."""

    pcm_frames: int = 0
    pcm_gaps: int = 0
    pcm_missing_samples: int = 0
    pcm_late_frames: int = 0
    pcm_restarts: int = 0
    pcm_bad_rate_frames: int = 0


class PcmAssembler:
    """Puts PCM frames into one gap-free stream.

    ``push(frame)`` returns the samples the frame adds, shape (n,), float32 in
    [-1, 1), at ``frame.sample_rate``: a gap of up to ``max_gap_s`` in the
    ``first_sample`` indices is filled with that many zeros (counted in
    ``pcm_gaps`` and ``pcm_missing_samples``); a frame that repeats samples already
    delivered loses them (``pcm_late_frames``); a larger jump or a new sample
    rate starts over without filling (``pcm_restarts``, e.g. after a firmware
    reset). :meth:`takes` turns away frames at a rate no audio has
    (``pcm_bad_rate_frames``).
    """

    def __init__(self, max_gap_s: float = 1.0) -> None:
        self.max_gap_s = max_gap_s
        self.reset()

    def reset(self) -> None:
        """Forget the stream position and the counters."""
        self.counters = PcmCounters()
        self.sample_rate: int | None = None
        self._expected: int | None = None

    def takes(self, frame: PcmMessage) -> bool:
        """Whether *frame*'s rate is an audio rate; a frame that is not (a firmware bug) is counted and to be dropped."""
        if MIN_RATE <= frame.sample_rate <= MAX_RATE:
            return True
        self.counters.pcm_bad_rate_frames += 1
        return False

    def push(self, frame: PcmMessage) -> np.ndarray:
        samples = frame.samples().astype(np.float32) / INT16_FULL_SCALE
        fill = 0
        if self._expected is not None and frame.sample_rate == self.sample_rate:
            ahead = (frame.first_sample - self._expected) % _INDEX_MOD
            behind = (self._expected - frame.first_sample) % _INDEX_MOD
            if behind and behind < _INDEX_MOD // 2:
                self.counters.pcm_late_frames += 1
                samples = samples[behind:]
                if samples.size == 0:
                    return samples
            elif 0 < ahead <= self.max_gap_s * frame.sample_rate:
                self.counters.pcm_gaps += 1
                self.counters.pcm_missing_samples += ahead
                fill = ahead
            elif ahead:
                self.counters.pcm_restarts += 1
        elif self._expected is not None:
            self.counters.pcm_restarts += 1
        self.counters.pcm_frames += 1
        self.sample_rate = frame.sample_rate
        self._expected = (frame.first_sample + frame.n_samples) % _INDEX_MOD
        if fill:
            log.debug("PCM gap of %d samples filled with silence", fill)
            return np.concatenate([np.zeros(fill, dtype=np.float32), samples])
        return samples


class BridgeSource:
    """Float32 mono blocks at *sample_rate* from an MCU streaming PCM frames.

    Parameters
    ----------
    url : str
        ``serial:///dev/ttyACM0?baud=921600``, ``tcp://host:port`` (connects to
        the MCU) or ``udp://0.0.0.0:port`` (receives datagrams).
    sample_rate : int
        The model's rate; frames at another rate are resampled with soxr.
    max_gap_s : float
        Longest gap in the frame indices filled with silence.
    idle_timeout_s : float or None
        Stop when no byte has arrived for this long (None: wait for ever).
    transport : Transport, optional
        An open transport to use instead of opening *url*.

    Iterating yields ndarray, shape (n,), float32; it ends when a TCP peer
    closes, after ``idle_timeout_s`` of silence, or after :meth:`close`.
    :attr:`counters` holds the decoder's counts (``bridge_frames``,
    ``bridge_bad_crc``, ..., ``bridge_lost``) and the assembler's
    (``pcm_frames``, ``pcm_gaps``, ...). It is an
    :class:`edge_sed.sources.Source`: ``name`` is the URL, ``live`` is True.
    """

    live = True
    file = None

    def __init__(
        self,
        url: str,
        sample_rate: int,
        *,
        max_gap_s: float = 1.0,
        idle_timeout_s: float | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.name = url
        self.sample_rate = sample_rate
        self.idle_timeout_s = idle_timeout_s
        target = parse_url(url)
        self._transport = (
            transport if transport is not None else open_transport(target, listen=True, error=AudioInputError)
        )
        self._decoder = FrameDecoder()
        self._assembler = PcmAssembler(max_gap_s)
        self._resampler: soxr.ResampleStream | None = None
        self._resampler_rate = 0
        self._closed = False

    @property
    def counters(self) -> Counter[str]:
        """Decoder counters (``bridge_frames``, ...) and PCM counters (``pcm_gaps``, ...)."""
        decoded = {f"bridge_{name}": value for name, value in self._decoder.counters.as_dict().items()}
        return Counter({**decoded, **asdict(self._assembler.counters)})

    def __iter__(self) -> Iterator[np.ndarray]:
        last_data = time.monotonic()
        while not self._closed:
            try:
                data = self._transport.read()
            except OSError as exc:  # serial.SerialException too: a USB adapter pulled out
                raise AudioInputError(f"bridge source {self.name!r} failed: {exc}; check the cable and the MCU") from None
            if data is None:
                break
            if not data:
                if self.idle_timeout_s is not None and time.monotonic() - last_data > self.idle_timeout_s:
                    break
                continue
            last_data = time.monotonic()
            for message in self._decoder.feed(data):
                if isinstance(message, PcmMessage) and self._assembler.takes(message):
                    block = self._to_model_rate(self._assembler.push(message), message.sample_rate)
                    if block.size:
                        yield block
        tail = self._flush_resampler()
        if tail.size:
            yield tail

    def close(self) -> None:
        """Stop iterating and close the link."""
        self._closed = True
        self._transport.close()

    def _to_model_rate(self, samples: np.ndarray, rate: int) -> np.ndarray:
        if rate == self.sample_rate:
            return samples
        if rate != self._resampler_rate:
            head = self._flush_resampler()
            self._resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
            self._resampler_rate = rate
            return np.concatenate([head, self._resampler.resample_chunk(samples)])
        return self._resampler.resample_chunk(samples)

    def _flush_resampler(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._resampler, self._resampler_rate = None, 0
        return tail
