"""The real microphone path: sounddevice/PortAudio (ALSA's pulse device) reading
a PulseAudio null sink's monitor while ``paplay`` plays a real recording into it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bundles import STREAM, write_scene
from conftest import STREAM_BENCH_DATA, need_program, need_shared_data

from edge_sed.sources import STALL_TIMEOUT_S

PLACEMENTS = [("siren", 1.0, 3.0), ("crying_baby", 5.5, 3.0)]
SCENE_S = 9.5
ROOT = Path(__file__).resolve().parents[1]
#: listen and detect see the same events, shifted by when paplay started.
SHIFT_TOLERANCE_S = 0.3
_PULSE_START_S = 10.0
_LISTEN_TIMEOUT_S = 30.0
_PLAYBACK_LATENCY_MS = 2000
_NULL_SINK = "module-null-sink sink_name=vsink rate=16000 channels=1"


def _pactl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="session")
def pulse():
    """A PulseAudio daemon with a 16 kHz null sink whose monitor is the default source."""
    need_program("pulseaudio", "pactl", "paplay")
    started = subprocess.run(["pulseaudio", "--check"]).returncode != 0
    if started:
        subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n", f"--load={_NULL_SINK}",
                        "--load=module-native-protocol-unix"], check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + _PULSE_START_S
    while _pactl("info").returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail("PulseAudio did not answer 'pactl info' in time")
        time.sleep(0.1)
    if "vsink" not in _pactl("list", "short", "sinks").stdout:
        _pactl("load-module", *_NULL_SINK.split())
    _pactl("set-default-source", "vsink.monitor")
    yield
    if started:
        subprocess.run(["pulseaudio", "--kill"], timeout=30)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("mic") / "scene.wav", PLACEMENTS, SCENE_S)


def _default_sigint() -> None:
    """In the child: take SIGINT as a terminal's Ctrl-C even when the tests run as a background
    job, which a shell without job control starts with SIGINT ignored (and Python keeps that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _edge_sed(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "edge_sed", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint, **kwargs)


def _listen_while_playing(recording: Path, model: Path, out: Path, interrupt_when,
                          *options: str, stop: int = signal.SIGINT) -> tuple[int, str, str]:
    """Start listen, play *recording* once listen is ready, Ctrl-C (or *stop*) once ``interrupt_when(out)`` holds."""
    listen = _edge_sed("listen", "--device", "pulse", "--model", str(model), "--sink", f"jsonl:{out}", *options)
    ready = listen.stderr.readline()
    # a deep playback buffer: on a loaded machine paplay would otherwise underrun and the
    # null sink would insert silence that the detector rightly hears
    player = subprocess.Popen(["paplay", f"--latency-msec={_PLAYBACK_LATENCY_MS}", str(recording)])
    try:
        deadline = time.monotonic() + _LISTEN_TIMEOUT_S
        while not interrupt_when(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        listen.send_signal(stop)
        stdout, stderr = listen.communicate(timeout=30)
    finally:
        player.kill()
        player.wait()
    return listen.returncode, ready, stderr


def _events_written(count: int):
    return lambda out: out.exists() and out.read_text().count('"kind": "event"') >= count


def _onset_written(out: Path) -> bool:
    return out.exists() and '"kind": "onset"' in out.read_text()


def _complete(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["kind"] == "event"]


def test_devices_lists_the_pulse_input(pulse) -> None:
    out = _edge_sed("devices").communicate(timeout=60)[0]
    lines = out.splitlines()
    pulse = [line for line in lines if line[2:].startswith("[") and " pulse (44100 Hz, " in line]
    assert len(pulse) == 1 and pulse[0].endswith("): listen opens it at 16000 Hz, mono"), out  # the default model's rate
    assert sum(line.startswith(">") for line in lines) == 1


@pytest.mark.parametrize("device, message", [
    ("usb-mic", "error: no input device matching 'usb-mic'; input devices: [0] pulse (44100 Hz), "),
    ("42", "error: no input device with index 42; input devices: [0] pulse (44100 Hz), "),
    ("e", "error: several input devices match 'e'; pick one by index: input devices: [0] pulse (44100 Hz), "),
])
def test_unknown_or_ambiguous_device_lists_the_inputs(pulse, test_bundle, device, message) -> None:
    listen = _edge_sed("listen", "--device", device, "--model", str(test_bundle))
    _, stderr = listen.communicate(timeout=60)
    assert listen.returncode == 1
    assert stderr.startswith(message) and stderr.count("\n") == 1, stderr


def test_a_rate_the_device_refuses_is_one_line(pulse, test_bundle) -> None:
    listen = _edge_sed("listen", "--device", "pulse", "--device-rate", "700000", "--model", str(test_bundle))
    _, stderr = listen.communicate(timeout=60)
    assert listen.returncode == 1
    assert stderr.startswith("error: cannot open input device [0] pulse at 700000 Hz: ") and stderr.count("\n") == 1


def test_listen_stops_after_duration(pulse, test_bundle, tmp_path) -> None:
    out = tmp_path / "short.jsonl"
    listen = _edge_sed("listen", "--device", "pulse", "--duration", "1.5", "--model", str(test_bundle),
                       "--sink", f"jsonl:{out}")
    _, stderr = listen.communicate(timeout=60)
    assert listen.returncode == 0, stderr
    assert stderr.splitlines()[-1].startswith("done: 1.5 s of audio; 3 windows; 0 events")
    assert out.read_text() == ""


@pytest.mark.parametrize("options, opened", [
    ((), "at 16000 Hz (model 16000 Hz)"),  # the device takes the model's rate: nothing to resample here
    (("--device-rate", "44100"), "at 44100 Hz (model 16000 Hz)"),  # its own rate, resampled with soxr
    (("--block", "1"), "at 16000 Hz (model 16000 Hz)"),  # four hops per wake-up: the same events
])
def test_listen_through_the_microphone_path_equals_detect(pulse, scene, test_bundle, tmp_path, options, opened) -> None:
    detected = _edge_sed("detect", str(scene), "--model", str(test_bundle)).communicate(timeout=60)[0]
    expected = [json.loads(line) for line in detected.splitlines() if '"kind": "event"' in line]
    assert [e["label"] for e in expected] == ["siren", "crying_baby"]
    out = tmp_path / "listen.jsonl"
    code, ready, stderr = _listen_while_playing(scene, test_bundle, out, _events_written(len(expected)), *options)
    assert ready.startswith(f"listening on [0] pulse {opened}"), ready
    assert code == 130, stderr
    heard = _complete(out)
    assert [e["label"] for e in heard] == [e["label"] for e in expected], (heard, stderr)
    shift = heard[0]["onset"] - expected[0]["onset"]
    assert -STREAM.hop_s <= shift < 3.0, (shift, heard, expected, stderr)  # playback starts after listen, seen on each run's own hop grid
    for got, want in zip(heard, expected):
        assert abs(got["onset"] - want["onset"] - shift) <= SHIFT_TOLERANCE_S
        assert abs(got["offset"] - want["offset"] - shift) <= SHIFT_TOLERANCE_S, (heard, expected, stderr)
        assert got["onset_wall"] and abs(got["confidence"] - want["confidence"]) < 0.1


@pytest.mark.parametrize("stop, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_ctrl_c_or_a_service_stop_mid_event_flushes_it_closed(pulse, scene, test_bundle, tmp_path, stop, exit_code) -> None:
    out = tmp_path / "interrupted.jsonl"
    code, _, stderr = _listen_while_playing(scene, test_bundle, out, _onset_written, stop=stop)  # inside the siren
    assert code == exit_code, stderr
    assert stderr.startswith("done: ") and "windows; 1 events" in stderr
    lines = out.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line complete JSON
    assert [(e["kind"], e["label"]) for e in events] == [("onset", "siren"), ("event", "siren")]
    assert events[1]["offset"] > events[1]["onset"] == events[0]["onset"]


def test_a_device_that_stops_delivering_ends_listen_in_one_line(pulse, test_bundle, tmp_path) -> None:
    """A suspended sink's monitor delivers nothing while PortAudio still calls the stream active: listen
    gives up after STALL_TIMEOUT_S (exit 1, one line) instead of waiting for ever, so that a service
    manager can start it again."""
    listen = _edge_sed("listen", "--device", "pulse", "--model", str(test_bundle), "--sink", f"jsonl:{tmp_path / 'e.jsonl'}")
    try:
        assert listen.stderr.readline().startswith("listening on [0] pulse")
        suspended = time.monotonic()
        assert _pactl("suspend-sink", "vsink", "1").returncode == 0
        _, stderr = listen.communicate(timeout=60)
        waited = time.monotonic() - suspended
    finally:
        _pactl("suspend-sink", "vsink", "0")
        listen.kill()
    assert listen.returncode == 1, stderr
    (line,) = stderr.splitlines()
    assert line.startswith("error: input device [0] pulse delivered no audio for ")
    assert line.endswith(" s (unplugged, suspended, or taken by another program?)")
    assert STALL_TIMEOUT_S < waited < STALL_TIMEOUT_S + 10


def _python_prints(code: str) -> list[str]:
    """Run *code* in a fresh Python (its own PortAudio start-up); the words it printed."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_open_returns_once_the_device_delivers(pulse) -> None:
    code = (
        "import time\nfrom edge_sed.sources import MicSource\n"
        "mic = MicSource(16000, 'pulse', block_s=0.25)\nmic.open()\nopened, waiting = time.monotonic(), mic.ring.available\n"
        "delivered = 0\nfor block in mic:\n    delivered += block.size\n    if delivered >= 3 * 16000:\n        break\n"
        "print(waiting, delivered / 16000, time.monotonic() - opened)\nmic.close()\n"
    )
    printed = _python_prints(code)
    waiting, delivered_s, elapsed_s = map(float, printed)
    # audio is flowing when open() returns (PortAudio's start returns 1-1.8 s before it does), and from then
    # on it keeps pace with the clock: the first block was already in, nothing was lost while starting
    assert waiting >= 0.25 * 16000 and elapsed_s <= delivered_s - 0.25 + 0.3, printed


def test_a_consumer_that_falls_behind_counts_overruns(pulse) -> None:
    code = (
        "import time\nfrom edge_sed.sources import MicSource\n"
        "mic = MicSource(16000, 'pulse', device_rate=44100, buffer_s=0.05)\nmic.open()\n"
        "deadline = time.monotonic() + 10\n"
        "while mic.ring.dropped <= 4 * mic.ring.capacity and time.monotonic() < deadline:\n    time.sleep(0.1)\n"
        "block = next(iter(mic))\nmic.close()\n"
        "print(mic.counters['overruns'], mic.ring.dropped, block.size)\n"
    )
    overruns, dropped, block = map(int, _python_prints(code))
    # 44.1 kHz into a 50 ms ring (2205 frames) nobody reads: what does not fit is dropped and counted
    assert overruns >= 2 and dropped > 4 * 2205
    assert 0 < block <= round(0.05 * 16000) + 16  # what the ring held, resampled to 16 kHz


def test_bench_stream_measures_listen_on_a_real_device(pulse, scene, test_bundle, tmp_path) -> None:
    from edge_sed.bench.stream import MIC_MODE, StreamBenchConfig, run_stream_benchmark

    need_shared_data(*STREAM_BENCH_DATA)

    player = subprocess.Popen(["paplay", f"--latency-msec={_PLAYBACK_LATENCY_MS}", str(scene)])
    try:
        config = StreamBenchConfig(model=str(test_bundle), latency_recording=str(scene), placements=tuple(PLACEMENTS),
                                   hops_s=(0.25,), long_s=2.0, paced_s=3.0, startup_s=1.0, device="pulse",
                                   results_dir=str(tmp_path))
        result = run_stream_benchmark(config)
    finally:
        player.kill()
        player.wait()
    mic = next(row for row in result.rows if row["mode"] == MIC_MODE)
    assert "error" not in mic, mic
    assert 2.9 <= mic["audio_s"] <= 3.1 and mic["windows"] >= 4  # --paced-s of live audio, scored every hop
    assert 0 < mic["core_share"] < 1 and 1.0 <= mic["startup_s"] < 1.3 and mic["peak_rss_mib"] > 0
    assert "live from input device pulse" in result.goals[0].goal and result.goals[0].measured == mic["core_share"]
