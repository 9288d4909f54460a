"""``edge-sed detect`` / ``devices`` through the CLI: outputs, and one exact line per bad input."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from bundles import write_scene
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edge_sed.cli import app
from edge_sed.cli import stream as stream_cli
from edge_sed.errors import ConfigError
from edge_sed.sources import DEFAULT_WAKE_S, wake_block_s

PLACEMENTS = [("siren", 1.5, 3.0), ("dog", 6.0, 1.5)]
SCENE_S = 9.0
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("cli") / "scene.wav", PLACEMENTS, SCENE_S)


def _invoke(*args: str, input: bytes | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_detect_writes_json_lines_with_the_file(scene, test_bundle) -> None:
    result = _invoke("detect", str(scene), "--model", str(test_bundle))
    assert result.exit_code == 0, result.output
    events = [e for e in _events(result.stdout) if e["kind"] == "event"]
    assert [e["label"] for e in events] == ["siren", "dog"]
    for event, (_, onset, duration) in zip(events, PLACEMENTS):
        assert abs(event["onset"] - onset) <= 0.75 and abs(event["offset"] - onset - duration) <= 1.0
        assert event["file"] == str(scene) and 0.5 <= event["confidence"] <= 1.0
    assert result.stderr.startswith(f"done: {SCENE_S:.1f} s of audio; 33 windows; 2 events")


def test_detect_reads_raw_pcm_from_stdin_like_the_file(scene, test_bundle) -> None:
    from_file = _events(_invoke("detect", str(scene), "--model", str(test_bundle)).stdout)
    pcm, _ = sf.read(scene, dtype="int16")
    result = _invoke("detect", "-", "--rate", "16000", "--model", str(test_bundle), input=pcm.tobytes())
    assert result.exit_code == 0, result.output
    got = _events(result.stdout)
    assert [(e["label"], e["onset"], e["offset"]) for e in got] == [(e["label"], e["onset"], e["offset"]) for e in from_file]


def test_clipping_is_counted_not_refused(tmp_path, test_bundle) -> None:
    loud = tmp_path / "clipped.wav"
    sf.write(loud, np.clip(4 * sf.read(write_scene(tmp_path / "s.wav", PLACEMENTS, SCENE_S))[0], -1, 1), 16000)
    result = _invoke("detect", str(loud), "--model", str(test_bundle))
    assert result.exit_code == 0
    assert "; clipped blocks " in result.stderr and "siren" in result.stdout
    beyond = tmp_path / "beyond.wav"  # float audio far past full scale is cut at it: no overflow, no NaN scores
    sf.write(beyond, 1e30 * sf.read(loud, dtype="float32")[0], 16000, subtype="FLOAT")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = _invoke("detect", str(beyond), "--model", str(test_bundle))
    assert again.exit_code == 0 and [w.message for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert all(math.isfinite(event["confidence"]) for event in _events(again.stdout))


def _write_nonfinite(path: Path) -> Path:
    samples = np.zeros(16000, dtype=np.float32)
    samples[8000] = np.nan
    sf.write(path, samples, 16000, subtype="FLOAT")
    return path


def _write_corrupt(path: Path) -> Path:
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    return path


def _write_empty(path: Path) -> Path:
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.wav", "error: audio file '{path}' does not exist"),
    (lambda p: p, "error: audio file '{path}' is a directory; give a file"),
    (lambda p: _write_corrupt(p / "corrupt.wav"), "error: cannot read '{path}' as audio (Error in WAV file. No 'data' chunk marker.); "
                                                   "use WAV, FLAC or OGG/Opus"),
    (lambda p: _write_empty(p / "empty.wav"), "error: audio file '{path}' is empty (0 samples)"),
    (lambda p: _write_nonfinite(p / "nan.wav"), "error: '{path}' contains NaN/Inf samples; re-export it as finite PCM or float audio"),
])
def test_bad_files_get_one_line(tmp_path, test_bundle, make, message) -> None:
    path = make(tmp_path)
    result = _invoke("detect", str(path), "--model", str(test_bundle))
    assert result.exit_code == 1
    assert _error(result).startswith(message.format(path=path))


def test_raw_pcm_that_never_comes(test_bundle) -> None:
    result = _invoke("detect", "-", "--rate", "16000", "--model", str(test_bundle), input=b"")
    assert result.exit_code == 1
    assert _error(result) == "error: stdin ended before any audio arrived; pipe raw 16-bit little-endian PCM into it"


def test_raw_pcm_with_a_stray_byte(scene, test_bundle) -> None:
    result = _invoke("detect", "-", "--rate", "16000", "--channels", "2", "--model", str(test_bundle), input=b"\x01" * 4003)
    assert result.exit_code == 1
    assert _error(result) == ("error: stdin ended with 3 stray byte(s) after 4000 bytes; raw PCM must be "
                              "16-bit little-endian with 2 channel(s) (4 bytes per frame)")
    pcm = np.round(sf.read(scene)[0][: 7 * 16000] * 32767).astype("<i2").tobytes()  # ends while the dog barks
    whole = _invoke("detect", "-", "--rate", "16000", "--model", str(test_bundle), input=pcm)
    stray = _invoke("detect", "-", "--rate", "16000", "--model", str(test_bundle), input=pcm + b"x")
    assert stray.exit_code == 1 and "stray byte" in stray.stderr
    ends = [[e["offset"] for e in _events(run.stdout) if e["kind"] == "event"] for run in (whole, stray)]
    assert len(ends[0]) == 2 and ends[1] == ends[0]  # the samples before the stray byte all count


@pytest.mark.parametrize("rate", [100, 1_000_000])
def test_rates_outside_audio_are_refused(tmp_path, test_bundle, rate) -> None:
    result = _invoke("detect", "-", "--rate", str(rate), "--model", str(test_bundle), input=b"\x00" * 64)
    assert _error(result) == ("error: raw PCM needs --rate between 1000 and 768000 Hz and a positive --channels, "
                              f"got {rate}, 1")
    odd = tmp_path / "odd.wav"
    sf.write(odd, np.zeros(rate // 10 or 1, dtype=np.float32), rate)
    result = _invoke("detect", str(odd), "--model", str(test_bundle))
    assert _error(result) == f"error: '{odd}' is sampled at {rate} Hz; audio between 1000 and 768000 Hz is taken"


@pytest.mark.parametrize("args, message", [
    (["-"], "error: raw PCM on stdin needs --rate (e.g. --rate 16000)"),
    (["x.wav", "--format", "csv"], "error: invalid --format 'csv'; valid: jsonl, tsv"),
    (["x.wav", "--threshold", "dgo=0.5"], "error: --threshold 'dgo=0.5': unknown label 'dgo'; the model knows: church_bells, "),
    (["x.wav", "--threshold", "1.5"], "error: --threshold '1.5' must be between 0 and 1"),
    (["x.wav", "--threshold", "loud"], "error: --threshold 'loud' is not a number or LABEL=NUMBER"),
    (["x.wav", "--threshold", "=0.5"], "error: --threshold '=0.5' has no label before '='; give LABEL=NUMBER"),
    (["x.wav", "--hop", "0.05"], "error: hop_s must be between 0.1 s and the window (1 s), got 0.05"),
    (["-", "-", "--rate", "16000"], "error: '-' (raw PCM on stdin) is given more than once; stdin can be read only once"),
    (["x.wav", "--rate", "16000"], "error: --rate and --channels describe raw PCM on stdin ('-'); audio files carry their own"),
    ([], "error: no input: give audio FILEs, '-' for raw PCM on stdin, or --demo"),
])
def test_bad_options_get_one_line(test_bundle, args, message) -> None:
    result = _invoke("detect", *args, "--model", str(test_bundle))
    assert result.exit_code == 1
    assert _error(result).startswith(message)


def test_a_directory_given_as_the_model_is_named_as_such(tmp_path) -> None:
    result = _invoke("detect", "x.wav", "--model", str(tmp_path))
    assert result.exit_code == 1
    assert _error(result) == f"error: model file '{tmp_path}' is a directory; give a file"


@pytest.mark.parametrize("block", ["0.1", "2.5"])
def test_listen_block_out_of_range_is_one_line(test_bundle, block) -> None:
    result = _invoke("listen", "--demo", "--model", str(test_bundle), "--block", block)
    assert result.exit_code == 1
    assert _error(result) == f"error: --block must be between the hop (0.25 s) and 2 s, got {block}"


@pytest.mark.parametrize("args, message", [
    (["--demo", "--source", "tcp://127.0.0.1:9"], "--demo and --source both name the input; give one of --device, --source, --demo"),
    (["--demo", "--device", "0"], "--demo and --device both name the input; give one of --device, --source, --demo"),
    (["--demo", "--device-rate", "48000"], "--device-rate applies to a microphone, not to --demo"),
    (["--device-rate", "0"], "--device-rate must be between 1000 and 768000 Hz, got 0"),
])
def test_listen_takes_one_input(test_bundle, args, message) -> None:
    result = _invoke("listen", *args, "--model", str(test_bundle))
    assert result.exit_code == 1
    assert _error(result) == f"error: {message}"


@pytest.mark.parametrize("duration", ["0", "nan", "inf", "1e308"])
def test_listen_duration_must_be_positive_and_finite(test_bundle, duration) -> None:
    result = _invoke("listen", "--demo", "--model", str(test_bundle), "--duration", duration)
    assert result.exit_code == 1
    assert _error(result) == f"error: --duration must be positive seconds (up to 1e+09), got {float(duration)!r}"


def test_listen_block_with_a_microcontroller_source_is_one_line(test_bundle) -> None:
    result = _invoke("listen", "--source", "tcp://127.0.0.1:9", "--model", str(test_bundle), "--block", "1")
    assert result.exit_code == 1
    assert _error(result) == ("error: --block applies to a microphone or --demo; "
                              "--source takes frames as the microcontroller sends them")


def test_listen_demo_in_one_second_blocks(test_bundle) -> None:
    result = _invoke("listen", "--demo", "--model", str(test_bundle), "--block", "1", "--duration", "2", "--sink", "jsonl")
    assert result.exit_code == 0, result.output
    assert "done: 2.0 s of audio; 5 windows" in result.stderr  # a window at 1 s, then every 0.25 s


@pytest.mark.parametrize(("hop", "block"), [(0.25, 0.5), (0.1, 0.5), (0.3, 0.6), (0.5, 0.5), (1.0, 1.0)])
def test_listen_wakes_at_most_twice_a_second_by_default(hop: float, block: float) -> None:
    assert wake_block_s(hop) == pytest.approx(block)
    assert wake_block_s(hop, hop) == hop  # --block HOP: one hop per wake-up


@given(st.floats(0.01, 3.0))
def test_the_default_block_is_the_fewest_whole_hops_lasting_half_a_second(hop: float) -> None:
    block = wake_block_s(hop)
    hops = block / hop
    assert hops == pytest.approx(round(hops)) and round(hops) >= 1
    assert block >= min(DEFAULT_WAKE_S, hop) - 1e-9 and (round(hops) == 1 or block - hop < DEFAULT_WAKE_S - 1e-9)


def test_missing_default_model_and_demo(monkeypatch, scene) -> None:
    monkeypatch.setattr(stream_cli, "_DEFAULT_MODEL", "absent.onnx")
    monkeypatch.setattr(stream_cli, "_DEMO_RECORDING", "absent.flac")
    assert _error(_invoke("detect", str(scene))) == (
        "error: no default model is shipped in this install; pass --model FILE.onnx")
    assert _error(_invoke("listen", "--demo")) == (
        "error: no default model is shipped in this install; pass --model FILE.onnx")
    assert _error(_invoke("detect", "--demo", "--model", "m.onnx")) == (
        "error: no demo recording is shipped in this install (edge_sed/assets/absent.flac); pass an audio FILE")


def test_config_file_and_flags_override_the_bundle(tmp_path, test_bundle) -> None:
    from edge_sed.backends import OnnxBackend

    bundle = OnnxBackend(test_bundle).bundle
    toml = tmp_path / "edge-sed.toml"
    toml.write_text("[stream]\nhop_s = 0.5\n[tracker.default]\nmin_duration_s = 1.0\n[tracker.per_class.dog]\non_threshold = 0.9\n")
    config = stream_cli.pipeline_config(bundle, config_file=toml)
    assert config.stream.hop_s == 0.5 and config.tracker.default.min_duration_s == 1.0
    assert config.tracker.rule("dog").on_threshold == 0.9 and config.tracker.rule("dog").min_duration_s == 1.0
    config = stream_cli.pipeline_config(bundle, config_file=toml, hop_s=0.2, thresholds=["0.7", "dog=0.4"])
    assert config.stream.hop_s == 0.2
    assert config.tracker.default.on_threshold == 0.7 and config.tracker.rule("siren").on_threshold == 0.7
    assert (config.tracker.rule("dog").on_threshold, config.tracker.rule("dog").off_threshold) == (0.4, 0.3)
    assert config.tracker.rule("dog").min_duration_s == 1.0


def test_a_per_class_table_overrides_only_its_keys_of_the_model_s_rule(tmp_path, test_bundle) -> None:
    from edge_sed.backends import OnnxBackend
    from edge_sed.config import ClassRule, TrackerConfig

    tuned = ClassRule(on_threshold=0.1, off_threshold=0.05, median_s=1.5, min_duration_s=1.0)
    bundle = OnnxBackend(test_bundle).bundle
    bundle = dataclasses.replace(bundle, tracker=TrackerConfig(bundle.tracker.default, (("siren", tuned),)))
    toml = tmp_path / "edge-sed.toml"
    toml.write_text("[tracker.per_class.siren]\nmedian_s = 1.0\n")
    assert stream_cli.pipeline_config(bundle, config_file=toml).tracker.rule("siren") == dataclasses.replace(tuned, median_s=1.0)


def test_portaudio_missing_names_the_package(monkeypatch) -> None:
    class NoPortAudio:
        """Import hook at the sounddevice boundary: what sounddevice raises without libportaudio."""

        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    result = _invoke("devices")
    assert result.exit_code == 1
    assert _error(result) == ("error: the PortAudio library is not installed (PortAudio library not found); "
                              "install it with: apt-get install libportaudio2")


@pytest.mark.parametrize("spec", ["tsv", "jsonl", "terminal"])
def test_a_sink_on_stdout_beside_detect_s_own_events_asks_for_o(scene, test_bundle, spec) -> None:
    result = _invoke("detect", str(scene), "--model", str(test_bundle), "--sink", spec)
    assert result.exit_code == 1
    assert _error(result) == f"error: --sink {spec} writes to stdout, where detect's events go without -o; give -o FILE"


def test_devices_names_a_bad_model_before_looking_for_devices(tmp_path) -> None:
    """Whether or not this machine has an input device, the model given is checked first."""
    result = _invoke("devices", "--model", str(tmp_path / "missing.onnx"))
    assert result.exit_code == 1
    assert _error(result) == f"error: model file {str(tmp_path / 'missing.onnx')!r} does not exist"


def test_detect_never_imports_torch_or_heavy_scipy(scene, test_bundle) -> None:
    heavy = ("torch", "scipy.signal", "scipy.stats")  # scipy.signal alone costs ~50 MB and ~1 s of start-up
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom edge_sed.cli import app\n"
        f"r = CliRunner().invoke(app, ['detect', {str(scene)!r}, '--model', {str(test_bundle)!r}])\n"
        "assert r.exit_code == 0 and 'siren' in r.stdout, r.output\n"
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_detect_several_files_to_a_tsv_file(scene, tmp_path, test_bundle) -> None:
    quiet = write_scene(tmp_path / "quiet.wav", [], 3.0)
    out = tmp_path / "events.tsv"
    result = _invoke("detect", str(scene), str(quiet), str(scene), "--format", "tsv", "-o", str(out), "--model", str(test_bundle))
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows[0] == ["filename", "onset", "offset", "event_label"]
    assert [(row[0], row[3]) for row in rows[1:]] == [("scene.wav", "siren"), ("scene.wav", "dog")] * 2  # DCASE: base names
    assert rows[1:3] == rows[3:5]  # each file is its own stream, from time 0


@settings(max_examples=100, deadline=None)
@given(label=st.sampled_from(["", "dog", "siren"]), value=st.floats(0.0, 1.0, allow_nan=False))
def test_threshold_parser_round_trips(label: str, value: float) -> None:
    text = f"{label}={value!r}" if label else repr(value)
    assert stream_cli.parse_threshold(text, ("dog", "siren")) == (label or None, value)


@given(text=st.text(max_size=12))
def test_threshold_parser_refuses_junk_with_a_config_error(text: str) -> None:
    try:
        label, value = stream_cli.parse_threshold(text, ("dog",))
    except ConfigError as exc:
        assert str(exc).startswith(f"--threshold {text!r} ")
    else:
        assert label in (None, "dog") and 0.0 <= value <= 1.0


def test_a_dead_sink_does_not_stop_detection_but_fails_the_run(scene, tmp_path, test_bundle) -> None:
    out = tmp_path / "events.jsonl"
    result = _invoke("detect", str(scene), "-o", str(out), "--sink", "jsonl:/dev/full", "--model", str(test_bundle))
    assert result.exit_code == 1, result.output
    assert [e["label"] for e in _events(out.read_text()) if e["kind"] == "event"] == ["siren", "dog"]
    done, error = result.stderr.strip().splitlines()[-2:]  # after the sink's logged warning
    assert done.endswith("; jsonl:/dev/full failed 5x")  # 2 onsets, 2 events and the closing flush
    assert error == ("error: not every event reached every sink: 'jsonl:/dev/full' failed 5x "
                     "(its first error is logged above)")


def test_when_no_sink_takes_events_detection_stops_in_one_line(scene, test_bundle) -> None:
    result = _invoke("detect", str(scene), str(scene), "-o", "/dev/full", "--model", str(test_bundle))
    assert result.exit_code == 1
    assert _error(result) == ("error: every sink failed, so detection stopped: "
                              "jsonl:/dev/full (OSError: [Errno 28] No space left on device)")


def test_a_reader_that_goes_away_ends_detect_quietly(scene, test_bundle) -> None:
    """``edge-sed detect ... | head -1``: exit 141 (as SIGPIPE would), nothing on stderr."""
    args = [sys.executable, "-m", "edge_sed", "detect", *[str(scene)] * 40, "--model", str(test_bundle)]
    with subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as detect:
        first = json.loads(detect.stdout.readline())
        detect.stdout.close()  # what head does after its one line
        stderr = detect.stderr.read().decode()
        assert detect.wait(timeout=120) == stream_cli.READER_GONE_EXIT, stderr
    assert first["label"] == "siren" and stderr == ""


def test_listen_into_a_pipe_writes_json_lines_as_events_come(test_bundle) -> None:
    """Without --sink, listen draws its view in a terminal only; into a pipe (``| jq``, ``> file``, a
    service's journal) events go as JSON Lines, as they come, not as one view drawn at the end."""
    args = [sys.executable, "-m", "edge_sed", "listen", "--demo", "--duration", "4", "--model", str(test_bundle)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    events = _events(done.stdout)
    assert [(e["kind"], e["label"]) for e in events] == [("onset", "dog"), ("event", "dog")]  # the demo's dog at 0.8 s
    assert events[0]["onset_wall"] and events[0]["file"].endswith("demo.flac")


def test_listen_adds_to_its_event_files_and_detect_starts_them_afresh(scene, test_bundle, tmp_path) -> None:
    """A listener restarted (by a service manager, say) keeps the events of its earlier runs."""
    out = tmp_path / "events.jsonl"
    for _ in range(2):
        result = _invoke("listen", "--demo", "--duration", "2", "--model", str(test_bundle), "--sink", f"jsonl:{out}")
        assert result.exit_code == 0, result.output
    assert [(e["kind"], e["label"]) for e in _events(out.read_text())] == [("onset", "dog"), ("event", "dog")] * 2
    assert _invoke("detect", str(scene), "--model", str(test_bundle), "-o", str(out)).exit_code == 0
    assert [e["label"] for e in _events(out.read_text()) if e["kind"] == "event"] == ["siren", "dog"]


def test_a_terminal_view_whose_reader_went_away_ends_quietly(test_bundle) -> None:
    """``edge-sed listen | head``: rich would exit 1 on the broken pipe; the view's sink set ends the run with 141."""
    args = [sys.executable, "-m", "edge_sed", "listen", "--demo", "--duration", "2", "--block", "1", "--model", str(test_bundle),
            "--sink", "terminal"]
    with subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as listen:
        listen.stdout.close()  # the reader is gone before the view is drawn
        stderr = listen.stderr.read().decode()
        assert listen.wait(timeout=120) == stream_cli.READER_GONE_EXIT, stderr
    assert stderr == ""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_mid_event_flushes_it_closed_and_ends_by_that_signal(scene, test_bundle, tmp_path, stop) -> None:
    """``systemctl stop`` (SIGTERM) or a closed terminal (SIGHUP) stops as Ctrl-C does: the open
    event is closed and written; then the process ends by the signal, a clean stop for systemd."""
    out = tmp_path / "events.jsonl"
    args = [sys.executable, "-m", "edge_sed", "detect", str(scene), "--realtime", "--model", str(test_bundle), "-o", str(out)]
    with subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as detect:
        deadline = time.monotonic() + 60
        while not (out.exists() and '"kind": "onset"' in out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)  # inside the siren (1.5-4.5 s)
        detect.send_signal(stop)
        _, stderr = detect.communicate(timeout=30)
    assert detect.returncode == -stop, stderr
    assert stderr.startswith("done: ") and "windows; 1 events" in stderr, stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]  # every line complete JSON
    assert [(e["kind"], e["label"]) for e in events] == [("onset", "siren"), ("event", "siren")]
    assert events[1]["offset"] > events[1]["onset"] == events[0]["onset"]


def test_realtime_pacing_takes_the_recording_s_duration(tmp_path, test_bundle) -> None:
    short = write_scene(tmp_path / "short.wav", [("crying_baby", 0.2, 1.3)], 2.0)
    started = time.monotonic()
    result = _invoke("detect", str(short), "--realtime", "--model", str(test_bundle))
    assert result.exit_code == 0 and time.monotonic() - started >= 2.0
    (event,) = [e for e in _events(result.stdout) if e["kind"] == "event"]
    wall = datetime.fromisoformat(event["offset_wall"]) - datetime.fromisoformat(event["onset_wall"])
    assert wall.total_seconds() == pytest.approx(event["offset"] - event["onset"])  # paced: wall-clock stamps


def test_config_file_typos_are_refused(tmp_path, scene, test_bundle) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[tracker.defaults]\non_threshold = 0.9\n")
    result = _invoke("detect", str(scene), "--config", str(toml), "--model", str(test_bundle))
    assert _error(result) == f"error: config file '{toml}': unknown key 'defaults' in [tracker]; valid: default, per_class"
    toml.write_text("[stream]\nhop = 0.5\n")
    assert _error(_invoke("detect", str(scene), "--config", str(toml), "--model", str(test_bundle))) == (
        f"error: config file '{toml}': unknown key 'hop' in [stream] (did you mean 'hop_s'?); valid keys: window_s, hop_s")


@pytest.mark.parametrize("text, message", [
    ("stream = 5", "[stream] must be a table of key = value settings, got 5"),
    ("tracker = 5", "[tracker] must be a table of key = value settings, got 5"),
    ("[tracker]\ndefault = 5", "[tracker.default] must be a table of key = value settings, got 5"),
    ("[tracker.per_class]\ndog = 5", "[tracker.per_class.dog] must be a table of key = value settings, got 5"),
    ("[stream]\nhop_s = true", "hop_s in [stream] must be a finite number, got True"),
    ("[stream]\nhop_s = 'abc'", "hop_s in [stream] must be a finite number, got 'abc'"),
    ("[tracker.default]\nmedian_s = nan", "median_s in [tracker.default] must be a finite number, got nan"),
    ("[tracker.default]\nmedian_s = 1e9", "[tracker.default] median_s must be between 0 and 600 s, got 1000000000.0"),
    ("[tracker.default]\non_threshold = 0.2\noff_threshold = 0.5",
     "[tracker.default] need 0 <= off_threshold <= on_threshold <= 1, got on=0.2, off=0.5"),
    ("[tracker.per_class.dog]\nmin_duration_s = -1", "[tracker.per_class.dog] min_duration_s must be between 0 and 600 s"),
    ("[stream]\nhop_s = 0.01", "[stream] hop_s must be between 0.1 s and the window"),
    ("[tracker.per_class.dog]\non_threshold = 'high'", "on_threshold in [tracker.per_class.dog] must be a finite number"),
    ("[tracker.per_class.dgo]\non_threshold = 0.5", "[tracker.per_class.dgo]: the model has no class 'dgo'; "
                                                    "it knows: church_bells, "),
])
def test_config_file_values_of_the_wrong_kind_are_refused(tmp_path, test_bundle, text, message) -> None:
    """Each error names the file and the section of the value it refuses."""
    toml = tmp_path / "bad.toml"
    toml.write_text(text + "\n")
    result = _invoke("detect", "x.wav", "--config", str(toml), "--model", str(test_bundle))
    assert result.exit_code == 1
    assert _error(result).startswith(f"error: config file '{toml}': {message}")


def test_a_config_file_that_is_no_toml_text_is_refused(tmp_path, test_bundle) -> None:
    binary = tmp_path / "audio.toml"
    binary.write_bytes(bytes(range(128, 256)))
    for path, why in [(tmp_path, "is a directory; give a .toml file"), (binary, "is not text (TOML is UTF-8)")]:
        result = _invoke("detect", "x.wav", "--config", str(path), "--model", str(test_bundle))
        assert result.exit_code == 1
        assert _error(result) == f"error: config file '{path}' {why}"
