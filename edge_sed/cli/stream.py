"""``edge-sed listen``, ``detect`` and ``devices``: the run-time commands.

``listen`` and ``detect`` build the same :class:`~edge_sed.pipeline.PipelineConfig`
and call :func:`edge_sed.pipeline.run`; they differ only in their sources.
"""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer

from edge_sed.backends import Backend, load_backend
from edge_sed.bundle import ModelBundle, read_bundle
from edge_sed.cli._app import (READER_GONE_EXIT, command, console, end_by_signal, err_console, silence_stdout,
                               stop_signals_interrupt)
from edge_sed.config import ClassRule, TrackerConfig, load_toml, resolve, table
from edge_sed.errors import AllSinksFailed, AudioInputError, ConfigError, ModelError, SinkError
from edge_sed.pipeline import PipelineConfig, RunSummary, run
from edge_sed.sources import (
    DEFAULT_WAKE_S, MAX_BLOCK_S, FileSource, MicSource, Source, StdinSource, input_settings, list_input_devices, wake_block_s,
)

__all__ = ["listen", "detect", "devices", "parse_threshold", "pipeline_config", "default_model_path"]

#: Exit code after Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT = 130
_DEFAULT_MODEL = "default.onnx"
_DEMO_RECORDING = "demo.flac"
_STDIN_NAME = "-"

ModelOpt = Annotated[Optional[Path], typer.Option("--model", "-m", help="Model: an .onnx bundle, a .tflite with its sidecar, or a torch checkpoint; default: the shipped model.")]
HopOpt = Annotated[Optional[float], typer.Option("--hop", help="Seconds between windows (0.1 up to the window); default: the model's.")]
ThresholdOpt = Annotated[Optional[list[str]], typer.Option(
    "--threshold", help="Onset threshold: 0.6 for every class, or LABEL=0.6 for one (repeatable).")]
SinkOpt = Annotated[Optional[list[str]], typer.Option(
    "--sink", help="Where events go (repeatable; one on stdout at most): terminal, jsonl, jsonl:PATH, tsv, tsv:PATH, mqtt://host:port/topic, serial:///dev/ttyUSB0, udp://host:port, tcp://host:port.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML file with \\[stream] and \\[tracker] settings.")]
DemoOpt = Annotated[bool, typer.Option("--demo", help="Use the shipped demo recording instead of real input.")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", "-d", help="Input device: index or name substring (see 'edge-sed devices').")]
BridgeSourceOpt = Annotated[Optional[str], typer.Option(
    "--source", help="PCM frames from a microcontroller: serial:///dev/ttyUSB0?baud=921600, tcp://HOST:PORT, udp://0.0.0.0:PORT.")]
DeviceRateOpt = Annotated[Optional[int], typer.Option(
    "--device-rate", help="Open the input at this rate (default: the model's where the device takes it, else its own).")]
DurationOpt = Annotated[Optional[float], typer.Option("--duration", help="Stop after this many seconds of audio.")]
BlockOpt = Annotated[Optional[float], typer.Option("--block", help=(
    f"Seconds of audio taken per wake-up from the microphone or --demo, from the hop up to {MAX_BLOCK_S:g} (default: the fewest "
    f"hops lasting {DEFAULT_WAKE_S:g} s, two at a 250 ms hop). Larger blocks cost less CPU and power and report events up to "
    "block - hop later; event times are unchanged."))]


def _asset(name: str) -> Path:
    return Path(str(importlib.resources.files("edge_sed") / "assets" / name))


def default_model_path() -> Path:
    """The shipped default bundle, or :class:`ModelError` if this install has none."""
    path = _asset(_DEFAULT_MODEL)
    if not path.is_file():
        raise ModelError("no default model is shipped in this install; pass --model FILE.onnx")
    return path


def _demo_path() -> Path:
    path = _asset(_DEMO_RECORDING)
    if not path.is_file():
        raise AudioInputError(f"no demo recording is shipped in this install (edge_sed/assets/{_DEMO_RECORDING}); pass an audio FILE")
    return path


def parse_threshold(text: str, labels: tuple[str, ...]) -> tuple[str | None, float]:
    """``"0.6"`` -> (None, 0.6) for every class; ``"dog=0.7"`` -> ("dog", 0.7)."""
    label, equals, value = text.rpartition("=")
    try:
        threshold = float(value)
    except ValueError:
        raise ConfigError(f"--threshold {text!r} is not a number or LABEL=NUMBER") from None
    if equals and not label:
        raise ConfigError(f"--threshold {text!r} has no label before '='; give LABEL=NUMBER, or NUMBER for every class")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold {text!r} must be between 0 and 1")
    if label and label not in labels:
        raise ConfigError(f"--threshold {text!r}: unknown label {label!r}; the model knows: {', '.join(labels)}")
    return (label or None), threshold


def _with_on_threshold(rule: ClassRule, threshold: float) -> ClassRule:
    return resolve(rule, {"on_threshold": threshold, "off_threshold": min(rule.off_threshold, threshold)})


def _file_tracker(model: TrackerConfig, section: Any, labels: Sequence[str]) -> TrackerConfig:
    """The model's event rules with a config file's ``[tracker]`` section over them, key by key."""
    file_tracker = table(section, "tracker")
    unknown = sorted(set(file_tracker) - {"default", "per_class"})
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in [tracker]; valid: default, per_class")
    file_classes = table(file_tracker.get("per_class", {}), "tracker.per_class")
    strangers = [label for label in file_classes if label not in labels]
    if strangers:
        raise ConfigError(f"[tracker.per_class.{strangers[0]}]: the model has no class {strangers[0]!r}; "
                          f"it knows: {', '.join(labels)}")
    model_rules = model.to_dict()
    default = {**model_rules["default"], **table(file_tracker.get("default", {}), "tracker.default")}
    per_class = dict(model_rules["per_class"])
    for label, rule in file_classes.items():  # the keys given override the model's rule for the class, or the default
        per_class[label] = {**per_class.get(label, default), **table(rule, f"tracker.per_class.{label}")}
    return TrackerConfig.from_dict({"default": default, "per_class": per_class})


def pipeline_config(bundle: ModelBundle, *, config_file: Path | None = None, hop_s: float | None = None,
                    thresholds: list[str] | None = None, duration_s: float | None = None) -> PipelineConfig:
    """Settings for a run: bundle metadata < config file < command-line flags."""
    stream, tracker = bundle.stream, bundle.tracker
    if config_file:
        layer = load_toml(config_file)
        unknown = sorted(set(layer) - {"stream", "tracker"})
        if unknown:
            raise ConfigError(f"unknown section {unknown[0]!r} in {str(config_file)!r}; valid sections: stream, tracker")
        try:
            stream = resolve(stream, layer.get("stream"), where="stream")
            if stream.window_s != bundle.stream.window_s:
                raise ConfigError(f"window_s is fixed by the model ({bundle.stream.window_s:g} s); only hop_s can change")
            if "tracker" in layer:
                tracker = _file_tracker(tracker, layer["tracker"], bundle.labels)
        except ConfigError as exc:
            raise ConfigError(f"config file {str(config_file)!r}: {exc}") from None
    stream = resolve(stream, {"hop_s": hop_s})
    for label, threshold in (parse_threshold(text, bundle.labels) for text in thresholds or ()):
        if label is None:
            tracker = TrackerConfig(_with_on_threshold(tracker.default, threshold),
                                    tuple((name, _with_on_threshold(rule, threshold)) for name, rule in tracker.per_class))
        else:
            others = tuple(item for item in tracker.per_class if item[0] != label)
            tracker = TrackerConfig(tracker.default, (*others, (label, _with_on_threshold(tracker.rule(label), threshold))))
    return PipelineConfig(stream=stream, tracker=tracker, duration_s=duration_s)


def _default_listen_sink() -> str:
    """``listen``'s sink when none is given: the live view in a terminal; elsewhere (a pipe, a
    file, a service's journal), where a view would be drawn only once at the end, JSON Lines."""
    try:
        return "terminal" if sys.stdout.isatty() else "jsonl"
    except ValueError:  # stdout closed
        return "jsonl"


def _run_pipeline(sources: list[Source], backend: Backend, sink_specs: list[str], config: PipelineConfig, *,
                  append: bool = False) -> RunSummary:
    """Open the sinks (files appended to with *append*) and run; the shared tail of ``listen`` and ``detect``."""
    from edge_sed.sinks import open_sinks

    sinks = open_sinks(sink_specs, labels=backend.bundle.labels, append=append)
    with stop_signals_interrupt() as stopped_by:
        try:
            summary = run(sources, backend, sinks, config)
        except AllSinksFailed as exc:
            if not exc.reader_gone:
                raise
            silence_stdout()  # ``edge-sed detect ... | head``: the reader has what it wanted; end quietly
            raise typer.Exit(code=READER_GONE_EXIT) from None
    err_console.print(f"done: {summary.describe()}", highlight=False)
    if summary.interrupted:
        if stopped_by:  # SIGTERM or SIGHUP: events closed and flushed as for Ctrl-C, then the signal's own end
            end_by_signal(stopped_by[0])
        raise typer.Exit(code=INTERRUPTED_EXIT)
    failed = [f"{name!r} failed {count}x" for name, count in summary.sink_failures.items() if count]
    if failed:
        raise SinkError(f"not every event reached every sink: {', '.join(failed)} (its first error is logged above)")
    return summary


@command("listen", help="Detect sound events live from a microphone (Ctrl-C to stop): a live view in a terminal, JSON Lines into a pipe or file.")
def listen(
    device: DeviceOpt = None,
    device_rate: DeviceRateOpt = None,
    model: ModelOpt = None,
    hop: HopOpt = None,
    threshold: ThresholdOpt = None,
    sink: SinkOpt = None,
    duration: DurationOpt = None,
    demo: DemoOpt = False,
    config: ConfigOpt = None,
    source_url: BridgeSourceOpt = None,
    block: BlockOpt = None,
) -> None:
    """Microphone (or the demo recording, paced in real time) -> events."""
    inputs = [option for option, given in (("--demo", demo), ("--source", source_url), ("--device", device)) if given]
    if len(inputs) > 1:
        raise ConfigError(f"{inputs[0]} and {inputs[1]} both name the input; give one of --device, --source, --demo")
    if device_rate is not None and (inputs or ["--device"])[0] != "--device":
        raise ConfigError(f"--device-rate applies to a microphone, not to {inputs[0]}")
    backend = load_backend(model or default_model_path())
    settings = pipeline_config(backend.bundle, config_file=config, hop_s=hop, thresholds=threshold, duration_s=duration)
    block_s = wake_block_s(settings.stream.hop_s, block)
    if block is not None and source_url:
        raise ConfigError("--block applies to a microphone or --demo; --source takes frames as the microcontroller sends them")
    rate = backend.bundle.frontend.sample_rate
    if demo:
        source: Source = FileSource(_demo_path(), rate, realtime=True, block_s=block_s)
    elif source_url:
        from firmware_bridge.source import BridgeSource

        source = BridgeSource(source_url, rate)
    else:
        mic = MicSource(rate, device, device_rate=device_rate, block_s=block_s)
        mic.open()
        source = mic
        err_console.print(f"listening on {mic.name} at {mic.device_rate} Hz (model {rate} Hz); Ctrl-C to stop",
                          highlight=False)
    # a listener's files are its record: one restarted (by a service manager, say) adds to them
    _run_pipeline([source], backend, sink or [_default_listen_sink()], settings, append=True)


@command("detect", help="Detect sound events in audio files ('-' reads raw 16-bit PCM from stdin), faster than real time.")
def detect(
    files: Annotated[Optional[list[str]], typer.Argument(help="WAV, FLAC or OGG files; '-' for raw PCM on stdin.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="Event format: jsonl or tsv.")] = "jsonl",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write events here (default: stdout).")] = None,
    model: ModelOpt = None,
    hop: HopOpt = None,
    threshold: ThresholdOpt = None,
    sink: SinkOpt = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Pace files in real time, as a microphone would.")] = False,
    rate: Annotated[Optional[int], typer.Option("--rate", help="Sample rate of raw PCM on stdin.")] = None,
    channels: Annotated[int, typer.Option("--channels", help="Channels of raw PCM on stdin.")] = 1,
    demo: DemoOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Files -> events, as JSON Lines (with ``file``) or DCASE TSV."""
    if output_format not in ("jsonl", "tsv"):
        raise ConfigError(f"invalid --format {output_format!r}; valid: jsonl, tsv")
    names = [*(files or []), *([str(_demo_path())] if demo else [])]
    if not names:
        raise ConfigError("no input: give audio FILEs, '-' for raw PCM on stdin, or --demo")
    if names.count(_STDIN_NAME) > 1:
        raise ConfigError("'-' (raw PCM on stdin) is given more than once; stdin can be read only once")
    if (rate is not None or channels != 1) and _STDIN_NAME not in names:
        raise ConfigError("--rate and --channels describe raw PCM on stdin ('-'); audio files carry their own")
    backend = load_backend(model or default_model_path())
    settings = pipeline_config(backend.bundle, config_file=config, hop_s=hop, thresholds=threshold)
    model_rate = backend.bundle.frontend.sample_rate
    sources: list[Source] = []
    for name in names:
        if name == _STDIN_NAME:
            if rate is None:
                raise ConfigError("raw PCM on stdin needs --rate (e.g. --rate 16000)")
            sources.append(StdinSource(model_rate, rate=rate, channels=channels))
        else:
            sources.append(FileSource(name, model_rate, realtime=realtime))
    if output is None:
        from edge_sed.sinks import writes_stdout

        on_stdout = [spec for spec in sink or () if writes_stdout(spec)]
        if on_stdout:
            raise SinkError(f"--sink {on_stdout[0]} writes to stdout, where detect's events go without -o; give -o FILE")
    events_spec = f"{output_format}:{output}" if output else output_format
    _run_pipeline(sources, backend, [events_spec, *(sink or [])], settings)


@command("devices", help="List audio input devices with their default rates and how listen opens them ('>' marks the default).")
def devices(model: ModelOpt = None) -> None:
    """One line per input device: ``> [id] name (rate Hz, channels): listen opens it at R Hz, C ch``."""
    rate = read_bundle(model or default_model_path()).frontend.sample_rate  # a bad --model is named first
    inputs = list_input_devices()
    if not inputs:
        raise AudioInputError("no input devices found (is a sound card or PulseAudio available?)")
    for device in inputs:
        mark = ">" if device["is_default"] else " "
        opened_rate, channels = input_settings(device, rate)
        console.print(
            f"{mark} [{device['index']}] {device['name']} ({device['default_samplerate']:g} Hz, "
            f"{device['max_input_channels']} ch): listen opens it at {opened_rate} Hz, "
            f"{'mono' if channels == 1 else f'{channels} ch'}", markup=False, highlight=False,
        )
