"""Bridge transports, the events sink and the PCM source, over real UDP/TCP sockets on loopback."""

from __future__ import annotations

import socket
import sys
import threading
from unittest import mock

import numpy as np
import pytest

from edge_sed.audio import resample
from edge_sed.errors import AudioInputError, ConfigError, MissingDependencyError, SinkError
from edge_sed.events import Event, StreamStatus
from edge_sed.sinks import open_sinks
from firmware_bridge.protocol import (
    CLASS_UNKNOWN,
    EventKind,
    EventMessage,
    FrameDecoder,
    FrameEncoder,
    HeartbeatMessage,
    PcmMessage,
    ScoresMessage,
)
from firmware_bridge.sink import BridgeSink
from firmware_bridge.source import BridgeSource, PcmAssembler
from firmware_bridge.transports import TransportUrl, parse_url

LABELS = ("dog", "siren", "glass_breaking")
FRAME_SAMPLES = 320


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pcm_frames(samples: np.ndarray, rate: int) -> list[PcmMessage]:
    pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)
    return [PcmMessage.from_samples(rate, i, pcm[i : i + FRAME_SAMPLES]) for i in range(0, len(pcm), FRAME_SAMPLES)]


# ---- URLs -----------------------------------------------------------------


def test_urls_parse_into_their_parts():
    assert parse_url("serial:///dev/ttyUSB0?baud=921600&scores=0", options=("scores",)) == TransportUrl(
        "serial", path="/dev/ttyUSB0", baud=921600, options=(("scores", "0"),)
    )
    assert parse_url("udp://127.0.0.1:5005") == TransportUrl("udp", host="127.0.0.1", port=5005)
    assert parse_url("tcp://mcu.local:7000").port == 7000


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://host:1883", "unknown bridge URL scheme in 'mqtt://host:1883'; use one of: serial:///dev/ttyUSB0"),
        ("serial://?baud=9600", "serial URL 'serial://?baud=9600' names no port; e.g. serial:///dev/ttyUSB0"),
        ("serial:///dev/ttyUSB0?baud=fast", "baud must be a positive integer in 'serial:///dev/ttyUSB0?baud=fast', got 'fast'"),
        ("tcp://host", "tcp URL 'tcp://host' needs a host and a port, e.g. tcp://127.0.0.1:5005"),
        ("udp://host:port", "udp URL 'udp://host:port': the port must be a number from 1 to 65535; e.g. udp://127.0.0.1:5005"),
        ("udp://host:70000", "udp URL 'udp://host:70000': the port must be a number from 1 to 65535"),
        ("tcp://host:0", "tcp URL 'tcp://host:0': the port must be a number from 1 to 65535"),
        ("udp://:5005", "udp URL 'udp://:5005' needs a host and a port"),
        ("udp://127.0.0.1:9?scores=0", "unknown option 'scores' in 'udp://127.0.0.1:9?scores=0'; valid options: baud"),
    ],
)
def test_bad_urls_are_one_line_config_errors(url, message):
    with pytest.raises(ConfigError) as caught:
        parse_url(url)
    assert str(caught.value).startswith(message)


def test_missing_serial_port_is_a_sink_error():
    with pytest.raises(SinkError, match=r"^cannot open serial bridge '/dev/edge-sed-no-such-tty': "):
        BridgeSink("serial:///dev/edge-sed-no-such-tty?baud=115200")


def test_missing_pyserial_names_the_extra():
    with mock.patch.dict(sys.modules, {"serial": None}):
        with pytest.raises(MissingDependencyError, match=r"a serial:// bridge needs the \[serial\] extra"):
            BridgeSink("serial:///dev/ttyUSB0")


def test_refused_tcp_connection_is_a_sink_error():
    port = _free_port(socket.SOCK_STREAM)
    with pytest.raises(SinkError, match=rf"^cannot open tcp bridge '127.0.0.1:{port}': "):
        BridgeSink(f"tcp://127.0.0.1:{port}")


# ---- sink -----------------------------------------------------------------


def test_sink_sends_events_scores_and_heartbeats_over_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mcu:
        mcu.bind(("127.0.0.1", 0))
        mcu.settimeout(5)
        sink = BridgeSink(f"udp://127.0.0.1:{mcu.getsockname()[1]}", labels=LABELS)
        sink.update(StreamStatus(time_s=0.25, labels=LABELS, scores=(0.1, 0.9, 0.0), overruns=2))
        sink.emit(Event("siren", onset=1.5, offset=None, confidence=0.8))
        sink.emit(Event("siren", onset=1.5, offset=3.25, confidence=0.85))
        sink.emit(Event("cat", onset=4.0, offset=None, confidence=0.6))
        sink.update(StreamStatus(time_s=0.5, labels=LABELS, scores=(0.2, 0.7, 1.0)))
        sink.close()
        decoder = FrameDecoder()
        received = [m for _ in range(6) for m in decoder.feed(mcu.recv(65536))]
    assert received == [
        ScoresMessage(250, bytes([26, 230, 0])),
        HeartbeatMessage(received[1].uptime_ms, 0, 0, 2),
        EventMessage(EventKind.ONSET, 1, 52428, 1500),
        EventMessage(EventKind.OFFSET, 1, 55705, 3250, 1750),
        EventMessage(EventKind.ONSET, CLASS_UNKNOWN, 39321, 4000),
        ScoresMessage(500, bytes([51, 178, 255])),
    ]
    assert decoder.counters.lost == 0 and sink.counters == {"sent": 6, "dropped": 0}


def test_sink_without_scores_and_labels_learnt_from_the_first_status_over_tcp():
    with socket.create_server(("127.0.0.1", 0)) as server:
        sink = BridgeSink(f"tcp://127.0.0.1:{server.getsockname()[1]}?scores=0")
        mcu, _ = server.accept()
        sink.update(StreamStatus(time_s=0.0, labels=LABELS, scores=(0.0, 0.0, 0.0)))
        sink.emit(Event("glass_breaking", onset=0.5, offset=None, confidence=1.0))
        sink.close()
        data = b""
        while chunk := mcu.recv(4096):
            data += chunk
        mcu.close()
    received = FrameDecoder().feed(data)
    assert [type(m) for m in received] == [HeartbeatMessage, EventMessage]
    assert received[1] == EventMessage(EventKind.ONSET, 2, 65535, 500)


def test_a_dead_link_stays_down_counts_what_it_drops_and_tells_its_sink_set():
    with socket.create_server(("127.0.0.1", 0)) as server:
        spec = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        sinks = open_sinks([spec, "jsonl:/dev/null"], labels=LABELS)
        (_, sink), _ = sinks.sinks
        mcu, _ = server.accept()
        mcu.close()
        for i in range(50):
            sinks.emit(Event("dog", onset=float(i), offset=None, confidence=0.5))
    assert sink.failed
    assert sink.counters["sent"] + sink.counters["dropped"] == 50 and sink.counters["dropped"] >= 1
    assert sinks.failures == {spec: sink.counters["dropped"], "jsonl:/dev/null": 0}  # the run then exits 1
    sinks.close()


# ---- source ---------------------------------------------------------------


def test_assembler_fills_gaps_drops_repeats_and_restarts():
    assembler = PcmAssembler(max_gap_s=0.1)
    ones = np.full(100, 16384, dtype=np.int16)
    out = [
        assembler.push(PcmMessage.from_samples(1000, 0, ones)),
        assembler.push(PcmMessage.from_samples(1000, 150, ones)),  # 50 missing: filled
        assembler.push(PcmMessage.from_samples(1000, 200, ones)),  # 50 repeated: trimmed
        assembler.push(PcmMessage.from_samples(1000, 100, ones)),  # all old: dropped
        assembler.push(PcmMessage.from_samples(1000, 5000, ones)),  # past max_gap_s: restart
        assembler.push(PcmMessage.from_samples(2000, 5100, ones)),  # new rate: restart
    ]
    assert [len(block) for block in out] == [100, 150, 50, 0, 100, 100]
    assert out[1][:50].tolist() == [0.0] * 50 and out[1][50:].tolist() == [0.5] * 100
    assert assembler.counters.pcm_frames == 5 and assembler.counters.pcm_gaps == 1
    assert assembler.counters.pcm_missing_samples == 50 and assembler.counters.pcm_late_frames == 2
    assert assembler.counters.pcm_restarts == 2 and assembler.sample_rate == 2000


def test_sample_index_wraps_at_two_to_the_32():
    assembler = PcmAssembler()
    samples = np.ones(10, dtype=np.int16)
    assembler.push(PcmMessage.from_samples(16000, 2**32 - 5, samples))
    assert len(assembler.push(PcmMessage.from_samples(16000, 5, samples))) == 10
    assert assembler.counters.pcm_gaps == 0 and assembler.counters.pcm_restarts == 0


def test_source_over_tcp_resamples_fills_a_lost_frame_and_survives_noise(dog_audio):
    samples, rate = dog_audio
    samples = samples[: rate * 2]
    frames = _pcm_frames(samples, rate)
    encoder = FrameEncoder()
    wire = [encoder.encode(frame) for frame in frames]
    del wire[10]  # a lost frame: 320 samples of silence
    wire.insert(20, b"\x13\x37 line noise \x00")
    with socket.create_server(("127.0.0.1", 0)) as server:
        source = BridgeSource(f"tcp://127.0.0.1:{server.getsockname()[1]}", sample_rate=32000)
        mcu, _ = server.accept()
        sender = threading.Thread(target=lambda: (mcu.sendall(b"".join(wire)), mcu.close()))
        sender.start()
        audio = np.concatenate(list(source))
        sender.join()
        source.close()
    expected_16k = np.concatenate([f.samples() for f in frames]).astype(np.float32) / 32768
    expected_16k[10 * FRAME_SAMPLES : 11 * FRAME_SAMPLES] = 0.0
    expected = resample(expected_16k, rate, 32000)
    assert abs(len(audio) - len(expected)) <= 2
    n = min(len(audio), len(expected))
    assert np.max(np.abs(audio[1000 : n - 1000] - expected[1000 : n - 1000])) < 1e-3
    counters = source.counters
    assert counters["pcm_gaps"] == 1 and counters["pcm_missing_samples"] == FRAME_SAMPLES
    assert counters["bridge_lost"] == 1 and counters["bridge_garbage"] == 1
    assert counters["pcm_frames"] == counters["bridge_frames"] == len(frames) - 1


def test_source_over_udp_stops_after_idle_timeout(dog_audio):
    samples, rate = dog_audio
    frames = _pcm_frames(samples[:rate], rate)
    port = _free_port(socket.SOCK_DGRAM)
    source = BridgeSource(f"udp://127.0.0.1:{port}", sample_rate=rate, idle_timeout_s=0.3)
    encoder = FrameEncoder()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mcu:
        for frame in frames:
            mcu.sendto(encoder.encode(frame), ("127.0.0.1", port))
    audio = np.concatenate(list(source))
    source.close()
    np.testing.assert_array_equal(audio, np.concatenate([f.samples() for f in frames]) / np.float32(32768))
    assert source.counters["pcm_frames"] == len(frames)


def test_source_drops_frames_at_a_rate_no_audio_has(dog_audio):
    samples, rate = dog_audio
    good = _pcm_frames(samples[:rate], rate)
    bad = [PcmMessage.from_samples(1, 0, good[0].samples()), PcmMessage.from_samples(4_000_000_000, 0, good[0].samples())]
    port = _free_port(socket.SOCK_DGRAM)
    source = BridgeSource(f"udp://127.0.0.1:{port}", sample_rate=rate, idle_timeout_s=0.3)
    encoder = FrameEncoder()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mcu:
        for frame in [*bad, *good]:
            mcu.sendto(encoder.encode(frame), ("127.0.0.1", port))
    audio = np.concatenate(list(source))
    source.close()
    assert len(audio) == rate and source.counters["pcm_bad_rate_frames"] == 2


def test_source_on_a_busy_udp_port_is_an_audio_input_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(AudioInputError, match=rf"^cannot open udp bridge '127.0.0.1:{port}': "):
            BridgeSource(f"udp://127.0.0.1:{port}", sample_rate=16000)


def test_bridge_sinks_are_registered_for_listen():
    from edge_sed.sinks import open_sinks

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mcu:
        mcu.bind(("127.0.0.1", 0))
        mcu.settimeout(5)
        sinks = open_sinks([f"udp://127.0.0.1:{mcu.getsockname()[1]}"], labels=LABELS)
        sinks.emit(Event("glass_breaking", onset=2.0, offset=None, confidence=0.5))
        sinks.close()
        assert FrameDecoder().feed(mcu.recv(65536)) == [EventMessage(EventKind.ONSET, 2, 32768, 2000)]
    with pytest.raises(SinkError, match=r"^serial URL 'serial:' names no port; e.g. serial:///dev/ttyUSB0"):
        open_sinks(["serial"], labels=LABELS)


def test_the_bridge_never_imports_torch():
    import subprocess

    code = (
        "import sys, firmware_bridge.sink, firmware_bridge.source, firmware_bridge.c_array, edge_sed.cli.bridge; "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
