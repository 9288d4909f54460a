"""The C side of the bridge, compiled with the host's gcc: byte-exact agreement with Python,
frames both ways over a pseudo-terminal pair, the same error counts, and a short sanitizer fuzz run."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_sed.errors import AudioInputError
from firmware_bridge.cbuild import C_DIR, FUZZ_DIR, SANITIZE_FLAGS, compile_c
from firmware_bridge.protocol import (
    MAX_ENCODED,
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
)
from firmware_bridge.source import BridgeSource
from firmware_bridge.transports import open_transport
from conftest import need_program

PEER_PCM_SAMPLES = 160  # esb_peer.c
PEER_PCM_RATE = 16000
CI_FUZZ_INPUTS = 20_000


@pytest.fixture(scope="module")
def peer(tmp_path_factory) -> Path:
    need_program("gcc")
    out = tmp_path_factory.mktemp("c") / "esb_peer"
    return compile_c(out, [C_DIR / "edge_sed_bridge.c", C_DIR / "examples" / "esb_peer.c"])


@pytest.fixture()
def pty_serial():
    """A pseudo-terminal pair: (master fd for the C peer, serial:// URL of the slave).

    Only pyserial keeps the slave open, so closing the transport hangs up: the
    peer then reads end of input.
    """
    master, slave = os.openpty()
    url = f"serial://{os.ttyname(slave)}?baud=115200"
    os.close(slave)
    yield master, url
    os.close(master)


def _messages(rng: np.random.Generator) -> list:
    return [
        EventMessage(EventKind.ONSET, 7, 40000, 1234),
        EventMessage(EventKind.OFFSET, 7, 41000, 2234, 1000),
        PcmMessage.from_samples(16000, 0, rng.integers(-32768, 32767, 508, dtype=np.int16)),
        PcmMessage.from_samples(16000, 508, np.array([0, -1, 1, -32768, 32767], dtype=np.int16)),
        ScoresMessage.from_scores(250, rng.random(527)),
        HeartbeatMessage(1000, 2, 3, 4),
        ConfigMessage(tuple(ThresholdEntry(i, 30000 + i, 20000 + i) for i in range(10))),
    ]


def _read_until(transport, decoder: FrameDecoder, count: int, timeout_s: float = 10.0) -> tuple[list, bytes]:
    received, raw = [], b""
    deadline = time.monotonic() + timeout_s
    while len(received) < count and time.monotonic() < deadline:
        data = transport.read()
        raw += data
        received += decoder.feed(data)
    return received, raw


def _hostile_stream(rng: np.random.Generator, frames: list[bytes]) -> bytes:
    """Frames with line noise, corrupted and cut copies, an oversized run and junk between them."""
    parts = []
    for frame in frames:
        bad = bytearray(frame)
        bad[rng.integers(1, len(bad) - 1)] ^= 0x40
        parts += [
            rng.integers(0, 256, rng.integers(0, 40), dtype=np.uint8).tobytes(),
            bytes(bad),
            frame[: len(frame) // 2],
            frame,
        ]
    parts.insert(len(parts) // 2, b"\x00" + b"\x5a" * (MAX_ENCODED + 10))
    return b"".join(parts) + b"\x00"


def test_c_encoder_matches_python_byte_for_byte(peer):
    messages = _messages(np.random.default_rng(0))
    encoder = FrameEncoder()
    sent = b"".join(encoder.encode(m) for m in messages)
    done = subprocess.run([str(peer), "echo"], input=sent, capture_output=True, timeout=30)
    assert done.stdout == sent  # decoded by C, re-encoded by the typed C encoders, numbered 0, 1, ...
    assert json.loads(done.stderr)["frames"] == len(messages)


def test_python_to_c_to_python_over_a_pty_with_hostile_bytes(peer, pty_serial):
    master, url = pty_serial
    messages = _messages(np.random.default_rng(1))
    frames = [encode(m, seq) for seq, m in enumerate(messages)]
    transport = open_transport(url, timeout_s=0.05)
    c_peer = subprocess.Popen([str(peer), "echo"], stdin=master, stdout=master, stderr=subprocess.PIPE)
    stream = _hostile_stream(np.random.default_rng(2), frames)
    writer = threading.Thread(target=lambda: [transport.write(stream[i : i + 256]) for i in range(0, len(stream), 256)])
    writer.start()
    decoder = FrameDecoder()
    received, _ = _read_until(transport, decoder, len(messages))
    writer.join()
    transport.close()  # hang up: the peer reads end of input and reports its counters
    c_counters = json.loads(c_peer.communicate(timeout=10)[1])
    assert received == messages
    assert decoder.counters.errors == 0 and decoder.counters.lost == 0
    assert c_counters["frames"] == len(messages)
    assert c_counters["oversized"] == 1
    assert c_counters["bad_crc"] + c_counters["truncated"] + c_counters["garbage"] >= len(messages)


def test_c_to_python_events_and_pcm_over_a_pty(peer, pty_serial):
    master, url = pty_serial
    n_frames = 50
    transport = open_transport(url, timeout_s=0.05)
    c_peer = subprocess.Popen([str(peer), "emit", str(n_frames)], stdout=master)
    decoder = FrameDecoder()
    received, _ = _read_until(transport, decoder, n_frames + 2 * (n_frames // 10))
    transport.close()
    assert c_peer.wait(timeout=10) == 0
    pcm = [m for m in received if isinstance(m, PcmMessage)]
    events = [m for m in received if isinstance(m, EventMessage)]
    ramp = ((np.arange(n_frames * PEER_PCM_SAMPLES) * 37) % 65536).astype(np.uint16).view(np.int16)
    assert [m.first_sample for m in pcm] == list(range(0, n_frames * PEER_PCM_SAMPLES, PEER_PCM_SAMPLES))
    assert np.array_equal(np.concatenate([m.samples() for m in pcm]), ramp)
    assert events[:2] == [
        EventMessage(EventKind.ONSET, 0, 50000, 90),
        EventMessage(EventKind.OFFSET, 0, 50000, 590, 500),
    ]
    assert len(events) == 10 and decoder.counters.errors == 0 and decoder.counters.lost == 0


def test_bridge_source_reads_c_pcm_from_a_pty(peer, pty_serial):
    master, url = pty_serial
    n_frames = 40
    source = BridgeSource(url, sample_rate=PEER_PCM_RATE, idle_timeout_s=0.5)
    c_peer = subprocess.Popen([str(peer), "emit", str(n_frames)], stdout=master)
    audio = np.concatenate(list(source))
    source.close()
    assert c_peer.wait(timeout=10) == 0
    ramp = ((np.arange(n_frames * PEER_PCM_SAMPLES) * 37) % 65536).astype(np.uint16).view(np.int16)
    np.testing.assert_array_equal(audio, ramp.astype(np.float32) / 32768.0)
    assert source.counters["pcm_frames"] == n_frames and source.counters["pcm_gaps"] == 0


def test_c_and_python_decoders_count_a_hostile_stream_alike(peer):
    rng = np.random.default_rng(3)
    frames = [encode(m, seq) for seq, m in enumerate(_messages(rng) * 3)]
    frames.insert(4, frames[4][:1] + frames[4][1:2] + b"\x00" * 3 + frames[4][2:])  # split by zeros
    stream = _hostile_stream(rng, frames) + rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    python = FrameDecoder()
    python.feed(stream)
    done = subprocess.run([str(peer), "count"], input=stream, capture_output=True, timeout=30, check=True)
    assert json.loads(done.stdout) == python.counters.as_dict()
    assert python.counters.frames == len(frames) - 1 and python.counters.errors > len(frames)


def test_short_sanitizer_fuzz_run_of_the_c_decoder(tmp_path):
    need_program("gcc")
    driver = compile_c(
        tmp_path / "random_driver",
        [C_DIR / "edge_sed_bridge.c", FUZZ_DIR / "fuzz_decoder.c", FUZZ_DIR / "random_driver.c"],
        flags=SANITIZE_FLAGS,
    )
    done = subprocess.run([str(driver), str(CI_FUZZ_INPUTS), "7"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["inputs"] == CI_FUZZ_INPUTS and report["property_failures"] == 0
    assert report["frames_decoded"] >= CI_FUZZ_INPUTS // 4  # the splice inputs alone hold one or more each


def test_a_hung_up_serial_line_ends_the_source_with_one_line():
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    source = BridgeSource(f"serial://{path}?baud=115200", sample_rate=PEER_PCM_RATE)
    os.write(master, encode(PcmMessage.from_samples(PEER_PCM_RATE, 0, np.arange(160, dtype=np.int16))))
    blocks = iter(source)
    assert len(next(blocks)) == 160
    os.close(master)
    with pytest.raises(AudioInputError, match=rf"^bridge source 'serial://{path}\?baud=115200' failed: .*; check the cable"):
        next(blocks)
    source.close()


def test_serial_sink_frames_reach_the_c_decoder_over_a_pty(peer, pty_serial):
    from edge_sed.events import Event, StreamStatus
    from firmware_bridge.sink import BridgeSink

    master, url = pty_serial
    labels = ("dog", "siren")
    sink = BridgeSink(url, labels)
    c_peer = subprocess.Popen([str(peer), "count"], stdin=master, stdout=subprocess.PIPE)
    for hop in range(8):  # 8 SCORES, 2 HEARTBEATs (one per second of stream time)
        sink.update(StreamStatus(time_s=hop * 0.25, labels=labels, scores=(0.1 * hop, 0.5)))
    sink.emit(Event("siren", onset=0.5, offset=None, confidence=0.9))
    sink.emit(Event("siren", onset=0.5, offset=1.5, confidence=0.9))
    sink.close()  # hang up: the peer reads end of input and reports its counters
    counters = json.loads(c_peer.communicate(timeout=10)[0])
    assert counters["frames"] == 12 and counters["lost"] == 0
    assert sum(counters.values()) == 12
