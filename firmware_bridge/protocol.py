"""The firmware bridge wire protocol, version 1 (``PROTOCOL.md`` is the specification).

A frame on the wire is ``00 | COBS(header | payload | CRC-32) | 00``: a 6-byte
little-endian header (version, type, sequence, payload length), the payload,
and the CRC-32 (IEEE, as :func:`zlib.crc32`) of header and payload.

Messages (typed, frozen dataclasses holding the wire values)
    :class:`EventMessage`, :class:`ScoresMessage`, :class:`PcmMessage`,
    :class:`HeartbeatMessage`, :class:`ConfigMessage`; each has ``TYPE``,
    ``payload() -> bytes`` and ``parse(payload) -> message or None`` (None:
    not of this type's shape).
Encoding
    :func:`encode` (one message -> the bytes of one frame) and
    :class:`FrameEncoder` (numbers the frames it encodes).
Decoding
    :class:`FrameDecoder` takes byte chunks of any size and returns the
    messages completed by each; every frame it drops is counted in its
    :class:`DecoderCounters`, never raised.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Union

import numpy as np

from edge_sed.errors import require

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_PAYLOAD",
    "MAX_FRAME",
    "MAX_ENCODED",
    "MAX_WIRE_FRAME",
    "CLASS_UNKNOWN",
    "MessageType",
    "EventKind",
    "EventMessage",
    "ScoresMessage",
    "PcmMessage",
    "HeartbeatMessage",
    "ThresholdEntry",
    "ConfigMessage",
    "Message",
    "encode",
    "FrameEncoder",
    "DecoderCounters",
    "FrameDecoder",
    "quantize_q8",
    "quantize_q16",
]

PROTOCOL_VERSION = 1
_HEADER = struct.Struct("<BBHH")  # version, type, sequence, payload length
_CRC = struct.Struct("<I")
#: Largest payload a frame may carry, in bytes.
MAX_PAYLOAD = 1024
#: Largest frame before COBS: header, payload, CRC.
MAX_FRAME = _HEADER.size + MAX_PAYLOAD + _CRC.size
#: Largest COBS-encoded frame (one code byte per started run of 254 bytes), delimiters excluded.
MAX_ENCODED = MAX_FRAME + -(-MAX_FRAME // 254)
#: Largest frame on the wire, both delimiters included.
MAX_WIRE_FRAME = MAX_ENCODED + 2
#: The class id an EVENT carries when the sender does not know the label.
CLASS_UNKNOWN = 0xFFFF
_Q8 = 255  # SCORES: score = byte / 255
_Q16 = 65535  # EVENT confidence and CONFIG thresholds: value = word / 65535
_SEQ_MOD = 1 << 16
_DELIMITER = b"\x00"


class MessageType(IntEnum):
    """The ``type`` byte of the header."""

    EVENT = 1
    SCORES = 2
    PCM = 3
    HEARTBEAT = 4
    CONFIG = 5


class EventKind(IntEnum):
    """An EVENT is an onset (the event started) or an offset (it ended)."""

    ONSET = 0
    OFFSET = 1


def quantize_q8(value: float) -> int:
    """A value in [0, 1] as a byte (``round(value * 255)``, clipped)."""
    return int(round(min(max(float(value), 0.0), 1.0) * _Q8))


def quantize_q16(value: float) -> int:
    """A value in [0, 1] as a uint16 (``round(value * 65535)``, clipped)."""
    return int(round(min(max(float(value), 0.0), 1.0) * _Q16))


@dataclass(frozen=True, slots=True)
class EventMessage:
    """EVENT (type 1): an onset, or an offset with the event's duration.

    ``timestamp_ms`` is stream time (ms since the stream started, wrapping at
    2**32); for an offset, the event began ``duration_ms`` earlier.
    """

    TYPE: ClassVar[MessageType] = MessageType.EVENT
    _BODY: ClassVar[struct.Struct] = struct.Struct("<BBHHII")

    kind: EventKind
    class_id: int
    confidence_q16: int
    timestamp_ms: int
    duration_ms: int = 0

    @property
    def confidence(self) -> float:
        """Confidence in [0, 1]."""
        return self.confidence_q16 / _Q16

    def payload(self) -> bytes:
        return self._BODY.pack(self.kind, 0, self.class_id, self.confidence_q16, self.timestamp_ms, self.duration_ms)

    @classmethod
    def parse(cls, payload: bytes) -> EventMessage | None:
        if len(payload) != cls._BODY.size:
            return None
        kind, _flags, class_id, confidence, timestamp, duration = cls._BODY.unpack(payload)
        if kind not in (EventKind.ONSET, EventKind.OFFSET):
            return None
        return cls(EventKind(kind), class_id, confidence, timestamp, duration)


@dataclass(frozen=True, slots=True)
class ScoresMessage:
    """SCORES (type 2): one window's class scores, ``score = byte / 255``."""

    TYPE: ClassVar[MessageType] = MessageType.SCORES
    _HEAD: ClassVar[struct.Struct] = struct.Struct("<IH")

    timestamp_ms: int
    scores_q8: bytes

    @property
    def scores(self) -> np.ndarray:
        """Scores, shape (classes,), float32 in [0, 1]."""
        return np.frombuffer(self.scores_q8, dtype=np.uint8).astype(np.float32) / _Q8

    @classmethod
    def from_scores(cls, timestamp_ms: int, scores: np.ndarray | tuple[float, ...]) -> ScoresMessage:
        """Quantize float scores in [0, 1], shape (classes,)."""
        values = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
        return cls(timestamp_ms, np.rint(values * _Q8).astype(np.uint8).tobytes())

    def payload(self) -> bytes:
        return self._HEAD.pack(self.timestamp_ms, len(self.scores_q8)) + self.scores_q8

    @classmethod
    def parse(cls, payload: bytes) -> ScoresMessage | None:
        if len(payload) < cls._HEAD.size:
            return None
        timestamp, count = cls._HEAD.unpack_from(payload)
        scores = payload[cls._HEAD.size :]
        return cls(timestamp, scores) if len(scores) == count else None


@dataclass(frozen=True, slots=True)
class PcmMessage:
    """PCM (type 3): 16-bit mono samples from a microphone.

    ``first_sample`` is the stream index of ``pcm``'s first sample (wrapping at
    2**32); the next frame's is ``first_sample + n_samples``. ``pcm`` holds
    little-endian int16 samples.
    """

    TYPE: ClassVar[MessageType] = MessageType.PCM
    _HEAD: ClassVar[struct.Struct] = struct.Struct("<II")
    #: Most samples one frame can carry.
    MAX_SAMPLES: ClassVar[int] = (MAX_PAYLOAD - 8) // 2

    sample_rate: int
    first_sample: int
    pcm: bytes

    @property
    def n_samples(self) -> int:
        return len(self.pcm) // 2

    def samples(self) -> np.ndarray:
        """The samples, shape (n_samples,), int16."""
        return np.frombuffer(self.pcm, dtype="<i2").astype(np.int16)

    @classmethod
    def from_samples(cls, sample_rate: int, first_sample: int, samples: np.ndarray) -> PcmMessage:
        """Wrap int16 samples, shape (n,)."""
        return cls(sample_rate, first_sample, np.asarray(samples, dtype="<i2").tobytes())

    def payload(self) -> bytes:
        return self._HEAD.pack(self.sample_rate, self.first_sample) + self.pcm

    @classmethod
    def parse(cls, payload: bytes) -> PcmMessage | None:
        body = len(payload) - cls._HEAD.size
        if body < 2 or body % 2:
            return None
        sample_rate, first_sample = cls._HEAD.unpack_from(payload)
        return cls(sample_rate, first_sample, payload[cls._HEAD.size :]) if sample_rate else None


@dataclass(frozen=True, slots=True)
class HeartbeatMessage:
    """HEARTBEAT (type 4): the sender is alive, with its own counters."""

    TYPE: ClassVar[MessageType] = MessageType.HEARTBEAT
    _BODY: ClassVar[struct.Struct] = struct.Struct("<IIII")

    uptime_ms: int
    rx_frames: int = 0
    rx_errors: int = 0
    overruns: int = 0

    def payload(self) -> bytes:
        return self._BODY.pack(self.uptime_ms, self.rx_frames, self.rx_errors, self.overruns)

    @classmethod
    def parse(cls, payload: bytes) -> HeartbeatMessage | None:
        return cls(*cls._BODY.unpack(payload)) if len(payload) == cls._BODY.size else None


@dataclass(frozen=True, slots=True)
class ThresholdEntry:
    """One class's hysteresis thresholds, ``value = word / 65535``."""

    class_id: int
    on_q16: int
    off_q16: int

    @property
    def on_threshold(self) -> float:
        return self.on_q16 / _Q16

    @property
    def off_threshold(self) -> float:
        return self.off_q16 / _Q16


@dataclass(frozen=True, slots=True)
class ConfigMessage:
    """CONFIG (type 5): per-class detection thresholds for the receiver to apply."""

    TYPE: ClassVar[MessageType] = MessageType.CONFIG
    _COUNT: ClassVar[struct.Struct] = struct.Struct("<H")
    _ENTRY: ClassVar[struct.Struct] = struct.Struct("<HHH")

    thresholds: tuple[ThresholdEntry, ...] = field(default_factory=tuple)

    def payload(self) -> bytes:
        entries = b"".join(self._ENTRY.pack(e.class_id, e.on_q16, e.off_q16) for e in self.thresholds)
        return self._COUNT.pack(len(self.thresholds)) + entries

    @classmethod
    def parse(cls, payload: bytes) -> ConfigMessage | None:
        if len(payload) < cls._COUNT.size:
            return None
        (count,) = cls._COUNT.unpack_from(payload)
        if len(payload) != cls._COUNT.size + count * cls._ENTRY.size:
            return None
        entries = cls._ENTRY.iter_unpack(payload[cls._COUNT.size :])
        return cls(tuple(ThresholdEntry(*entry) for entry in entries))


Message = Union[EventMessage, ScoresMessage, PcmMessage, HeartbeatMessage, ConfigMessage]
_PARSERS = {cls.TYPE: cls.parse for cls in (EventMessage, ScoresMessage, PcmMessage, HeartbeatMessage, ConfigMessage)}


def _cobs():
    return require("cobs.cobs", what="the firmware bridge (COBS framing)", extra="serial")


def encode(message: Message, seq: int = 0) -> bytes:
    """The bytes of one frame carrying *message*, both 0x00 delimiters included.

    Raises ``ValueError`` for a payload over :data:`MAX_PAYLOAD` bytes and
    ``struct.error`` for a field out of its range (programming errors).
    """
    payload = message.payload()
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"{message.TYPE.name} payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    frame = _HEADER.pack(PROTOCOL_VERSION, message.TYPE, seq % _SEQ_MOD, len(payload)) + payload
    frame += _CRC.pack(zlib.crc32(frame))
    return _DELIMITER + _cobs().encode(frame) + _DELIMITER


class FrameEncoder:
    """Encodes messages with consecutive sequence numbers (0, 1, ..., 65535, 0, ...).

    Raises :class:`~edge_sed.errors.MissingDependencyError` when made without
    the ``[serial]`` extra (COBS), not at the first frame.
    """

    def __init__(self) -> None:
        _cobs()
        self.seq = 0

    def encode(self, message: Message) -> bytes:
        """One frame for *message*; the next call uses the next sequence number."""
        data = encode(message, self.seq)
        self.seq = (self.seq + 1) % _SEQ_MOD
        return data


@dataclass(slots=True)
class DecoderCounters:
    """What a :class:`FrameDecoder` has seen: good frames and each kind of bad one.

    ``lost`` counts frames missing from the sender's sequence numbers.
    """

    frames: int = 0
    bad_crc: int = 0
    truncated: int = 0
    oversized: int = 0
    unknown_type: int = 0
    garbage: int = 0
    bad_version: int = 0
    bad_payload: int = 0
    lost: int = 0

    ERRORS: ClassVar[tuple[str, ...]] = (
        "bad_crc", "truncated", "oversized", "unknown_type", "garbage", "bad_version", "bad_payload",
    )

    @property
    def errors(self) -> int:
        """Frames dropped for any reason."""
        return sum(getattr(self, name) for name in self.ERRORS)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class FrameDecoder:
    """Turns a byte stream into messages, counting and skipping bad frames.

    ``feed(chunk)`` accepts any number of bytes (a frame may be split over
    many chunks) and returns the messages it completed. Nothing it is fed
    raises: a bad frame is counted in :attr:`counters` and decoding resumes at
    the next 0x00. A frame that grows past :data:`MAX_ENCODED` bytes is
    counted as oversized and its bytes are dropped up to the next 0x00.
    """

    def __init__(self) -> None:
        self._cobs = _cobs()
        self.reset()

    def reset(self) -> None:
        """Forget the partial frame, the counters and the expected sequence number."""
        self.counters = DecoderCounters()
        self._buffer = bytearray()
        self._discarding = False
        self._next_seq: int | None = None

    def feed(self, chunk: bytes) -> list[Message]:
        """Take bytes, return the messages they complete (possibly none)."""
        messages = []
        pieces = bytes(chunk).split(_DELIMITER)
        for piece in pieces[:-1]:
            self._append(piece)
            message = self._end_frame()
            if message is not None:
                messages.append(message)
        self._append(pieces[-1])
        return messages

    def _append(self, piece: bytes) -> None:
        if self._discarding or not piece:
            return
        if len(self._buffer) + len(piece) > MAX_ENCODED:
            self.counters.oversized += 1
            self._discarding = True
            self._buffer.clear()
        else:
            self._buffer += piece

    def _end_frame(self) -> Message | None:
        if self._discarding:
            self._discarding = False
            return None
        if not self._buffer:  # back-to-back delimiters: idle line
            return None
        encoded = bytes(self._buffer)
        self._buffer.clear()
        outcome = self._decode(encoded)
        if isinstance(outcome, str):
            setattr(self.counters, outcome, getattr(self.counters, outcome) + 1)
            return None
        return outcome

    def _decode(self, encoded: bytes) -> Message | str:
        """The message in one COBS-encoded frame, or the name of its error counter."""
        try:
            frame = self._cobs.decode(encoded)
        except self._cobs.DecodeError:
            return "garbage"
        if len(frame) < _HEADER.size + _CRC.size:
            return "truncated"
        version, kind, seq, length = _HEADER.unpack_from(frame)
        if length > MAX_PAYLOAD:
            return "oversized"
        if len(frame) != _HEADER.size + length + _CRC.size:
            return "truncated" if len(frame) < _HEADER.size + length + _CRC.size else "garbage"
        (crc,) = _CRC.unpack_from(frame, len(frame) - _CRC.size)
        if zlib.crc32(frame[: -_CRC.size]) != crc:
            return "bad_crc"
        if version != PROTOCOL_VERSION:
            return "bad_version"
        parse = _PARSERS.get(kind)
        if parse is None:
            return "unknown_type"
        message = parse(frame[_HEADER.size : -_CRC.size])
        if message is None:
            return "bad_payload"
        self._count_sequence(seq)
        return message

    def _count_sequence(self, seq: int) -> None:
        self.counters.frames += 1
        if self._next_seq is not None:
            gap = (seq - self._next_seq) % _SEQ_MOD
            if gap < _SEQ_MOD // 2:
                self.counters.lost += gap
        self._next_seq = (seq + 1) % _SEQ_MOD
