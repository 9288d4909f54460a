"""The bridge wire protocol in Python: byte-exact frames, every error class, and hypothesis fuzzing."""

from __future__ import annotations

import struct
import sys
import zlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_sed.errors import MissingDependencyError
from edge_sed.sinks import open_sinks
from firmware_bridge.protocol import (
    MAX_ENCODED,
    MAX_PAYLOAD,
    ConfigMessage,
    EventKind,
    EventMessage,
    FrameDecoder,
    FrameEncoder,
    HeartbeatMessage,
    PcmMessage,
    ScoresMessage,
    ThresholdEntry,
    encode,
    quantize_q16,
)

ONSET = EventMessage(EventKind.ONSET, class_id=3, confidence_q16=quantize_q16(0.87), timestamp_ms=1250)
# The byte-level example of PROTOCOL.md (sequence number 7).
ONSET_WIRE = "00 04 01 01 07 02 0e 01 01 02 03 05 b7 de e2 04 01 01 01 01 01 05 48 02 37 8e 00"


def _frame(version: int, kind: int, seq: int, payload: bytes, *, crc_delta: int = 0, length: int | None = None):
    """A hand-built frame, to make each error class on purpose."""
    from cobs import cobs

    body = struct.pack("<BBHH", version, kind, seq, len(payload) if length is None else length) + payload
    return b"\x00" + cobs.encode(body + struct.pack("<I", (zlib.crc32(body) + crc_delta) % 2**32)) + b"\x00"


# ---- strategies ------------------------------------------------------------

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
events = st.builds(EventMessage, st.sampled_from(EventKind), u16, u16, u32, u32)
scores = st.builds(ScoresMessage, u32, st.binary(max_size=MAX_PAYLOAD - 6))
pcm = st.builds(PcmMessage, st.integers(1, 2**32 - 1), u32, st.binary(min_size=1, max_size=PcmMessage.MAX_SAMPLES).map(lambda b: b + b))
heartbeats = st.builds(HeartbeatMessage, u32, u32, u32, u32)
configs = st.builds(ConfigMessage, st.lists(st.builds(ThresholdEntry, u16, u16, u16), max_size=170).map(tuple))
messages = st.one_of(events, scores, pcm, heartbeats, configs)


# ---- format --------------------------------------------------------------


def test_crc_is_crc32_ieee_check_value():
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_event_frame_is_byte_exact():
    assert encode(ONSET, seq=7).hex(" ") == ONSET_WIRE


def test_each_message_type_round_trips():
    sent = [
        ONSET,
        EventMessage(EventKind.OFFSET, 3, quantize_q16(0.91), 2750, 1500),
        ScoresMessage.from_scores(1000, np.array([0.0, 0.5, 1.0])),
        PcmMessage.from_samples(16000, 480, np.array([0, 1, -1, 32767, -32768], dtype=np.int16)),
        HeartbeatMessage(5000, 1, 2, 3),
        ConfigMessage((ThresholdEntry(3, quantize_q16(0.5), quantize_q16(0.3)),)),
    ]
    encoder = FrameEncoder()
    decoder = FrameDecoder()
    assert decoder.feed(b"".join(encoder.encode(m) for m in sent)) == sent
    assert decoder.counters.frames == 6 and decoder.counters.errors == 0
    assert sent[2].scores_q8 == bytes([0, 128, 255])
    assert sent[3].samples().tolist() == [0, 1, -1, 32767, -32768]
    assert sent[1].confidence == pytest.approx(0.91, abs=1 / 65535)


def test_payload_over_the_maximum_is_refused_when_encoding():
    with pytest.raises(ValueError, match="exceeds 1024"):
        encode(ScoresMessage(0, bytes(MAX_PAYLOAD)))


@pytest.mark.parametrize("make", [FrameDecoder, FrameEncoder, lambda: open_sinks(["udp://127.0.0.1:9"], labels=("dog",))])
def test_missing_cobs_names_the_extra_before_any_frame(make):
    with mock.patch.dict(sys.modules, {"cobs": None, "cobs.cobs": None}):
        with pytest.raises(MissingDependencyError, match=r"\[serial\] extra.*pip install 'edge-sed\[serial\]'"):
            make()


# ---- each error class, then the next frame decodes -------------------------


@pytest.mark.parametrize(
    ("bad", "counter"),
    [
        (_frame(1, 1, 0, ONSET.payload(), crc_delta=1), "bad_crc"),
        (encode(ONSET)[:-8] + b"\x00", "truncated"),
        (_frame(1, 1, 0, ONSET.payload(), length=15), "truncated"),
        (_frame(1, 1, 0, ONSET.payload(), length=13), "garbage"),
        (_frame(1, 2, 0, b"", length=MAX_PAYLOAD + 1), "oversized"),
        (b"\x00" + b"\x17" * (MAX_ENCODED + 1) + b"\x00", "oversized"),
        (_frame(1, 9, 0, ONSET.payload()), "unknown_type"),
        (_frame(2, 1, 0, ONSET.payload()), "bad_version"),
        (_frame(1, 1, 0, ONSET.payload()[:-1]), "bad_payload"),
        (_frame(1, 3, 0, b"\x80\x3e\x00\x00\x00\x00\x00\x00\x01"), "bad_payload"),
        (b"\x00\x05\x01\x02\x00", "garbage"),
    ],
)
def test_bad_frame_is_counted_and_the_next_one_decodes(bad, counter):
    decoder = FrameDecoder()
    assert decoder.feed(bad + encode(ONSET, seq=1)) == [ONSET]
    counts = decoder.counters.as_dict()
    assert counts[counter] == 1
    assert decoder.counters.errors == 1


def test_lost_frames_are_counted_from_sequence_numbers():
    decoder = FrameDecoder()
    decoder.feed(encode(ONSET, 65534) + encode(ONSET, 65535) + encode(ONSET, 2) + encode(ONSET, 1))
    assert decoder.counters.lost == 2  # 0 and 1 missing at the wrap; the late 1 is not counted again
    assert decoder.counters.frames == 4


# ---- hypothesis ---------------------------------------------------------------

RELAXED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@settings(max_examples=300, **RELAXED)
@given(st.binary(max_size=4 * MAX_ENCODED), st.lists(st.integers(1, 64), max_size=50))
def test_arbitrary_bytes_never_raise(data, cuts):
    decoder = FrameDecoder()
    start = 0
    for cut in cuts + [len(data)]:
        for message in decoder.feed(data[start : start + cut]):
            assert type(message).TYPE in (1, 2, 3, 4, 5)
        start += cut
    assert decoder.counters.frames + decoder.counters.errors <= data.count(0) + 1


@settings(max_examples=200, **RELAXED)
@given(st.lists(st.tuples(st.binary(max_size=80), messages), min_size=1, max_size=5), st.binary(max_size=80), st.integers(1, 300))
def test_frames_spliced_into_garbage_are_all_recovered(pieces, tail, chunk):
    encoder = FrameEncoder()
    stream = b"".join(garbage + encoder.encode(message) for garbage, message in pieces) + tail
    decoder = FrameDecoder()
    received = [m for i in range(0, len(stream), chunk) for m in decoder.feed(stream[i : i + chunk])]
    assert received == [message for _, message in pieces]
    assert decoder.counters.lost == 0


@settings(max_examples=100, **RELAXED)
@given(messages, st.data())
def test_every_single_byte_corruption_is_detected(message, data):
    wire = encode(message, seq=5)
    at = data.draw(st.integers(1, len(wire) - 2), label="position")  # any byte between the delimiters
    value = data.draw(st.integers(0, 255).filter(lambda v: v != wire[at]), label="value")
    corrupted = wire[:at] + bytes([value]) + wire[at + 1 :]
    decoder = FrameDecoder()
    assert decoder.feed(corrupted + encode(ONSET, seq=6)) == [ONSET]
    assert decoder.counters.errors >= 1


def test_every_single_byte_corruption_of_one_event_frame_is_detected_exhaustively():
    wire = encode(ONSET, seq=7)
    decoder = FrameDecoder()
    for at in range(1, len(wire) - 1):
        for value in range(256):
            if value != wire[at]:
                assert decoder.feed(wire[:at] + bytes([value]) + wire[at + 1 :]) == []
    assert decoder.counters.frames == 0
    assert decoder.counters.errors >= (len(wire) - 2) * 255
