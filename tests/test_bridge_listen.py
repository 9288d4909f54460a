"""``edge-sed listen --source tcp://... --sink udp://...``: an MCU's PCM in, EVENT frames out,
the same events as ``edge-sed detect`` on the same recording."""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pytest
import soundfile as sf
from bundles import LABELS, write_scene
from typer.testing import CliRunner

from edge_sed.cli import app
from firmware_bridge.protocol import EventKind, EventMessage, FrameDecoder, FrameEncoder, PcmMessage

PLACEMENTS = [("siren", 1.5, 3.0), ("dog", 6.0, 1.5)]
SCENE_S = 9.0
FRAME_SAMPLES = 256


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("bridge") / "scene.wav", PLACEMENTS, SCENE_S)


def _serve_pcm(server: socket.socket, pcm: np.ndarray, rate: int) -> None:
    mcu, _ = server.accept()
    encoder = FrameEncoder()
    frames = (PcmMessage.from_samples(rate, i, pcm[i : i + FRAME_SAMPLES]) for i in range(0, len(pcm), FRAME_SAMPLES))
    mcu.sendall(b"".join(encoder.encode(frame) for frame in frames))
    mcu.close()


def test_listen_from_mcu_pcm_sends_the_events_detect_finds(scene, test_bundle):
    pcm, rate = sf.read(scene, dtype="int16")
    detected = [
        json.loads(line)
        for line in CliRunner().invoke(app, ["detect", str(scene), "--model", str(test_bundle)]).stdout.splitlines()
    ]
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.5)
        mcu = threading.Thread(target=_serve_pcm, args=(server, pcm, rate))
        mcu.start()
        result = CliRunner().invoke(app, [
            "listen", "--model", str(test_bundle),
            "--source", f"tcp://127.0.0.1:{server.getsockname()[1]}",
            "--sink", f"udp://127.0.0.1:{sink.getsockname()[1]}?scores=0",
        ])
        mcu.join()
        decoder, received = FrameDecoder(), []
        while True:
            try:
                received += decoder.feed(sink.recv(65536))
            except TimeoutError:
                break
    assert result.exit_code == 0, result.output
    assert f"done: {SCENE_S:.1f} s of audio" in result.stderr and "bridge frames" in result.stderr
    events = [m for m in received if isinstance(m, EventMessage)]
    expected = []
    for event in detected:
        class_id = LABELS.index(event["label"])
        if event["kind"] == "onset":
            expected.append((EventKind.ONSET, class_id, round(event["onset"] * 1000), 0))
        else:
            duration = round(event["offset"] * 1000) - round(event["onset"] * 1000)
            expected.append((EventKind.OFFSET, class_id, round(event["offset"] * 1000), duration))
    assert [(e.kind, e.class_id, e.timestamp_ms, e.duration_ms) for e in events] == expected
    assert [LABELS[e.class_id] for e in events if e.kind == EventKind.OFFSET] == ["siren", "dog"]
    assert decoder.counters.errors == 0 and decoder.counters.lost == 0
