"""Sinks: exact JSONL/TSV contents, dead sinks, the spec parser, the terminal view."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import sys
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from edge_sed.errors import AllSinksFailed, MissingDependencyError, SinkError
from edge_sed.events import Event, StreamStatus
from edge_sed.sinks import (
    SINK_SCHEMES,
    JsonlSink,
    MqttSettings,
    MqttSink,
    SinkSet,
    TerminalSink,
    open_sinks,
    parse_mqtt_url,
    parse_sink_spec,
    register_sink_scheme,
)

LABELS = ("Dog", "Siren")
ONSET = Event("Dog", 1.25, None, 0.8125, onset_wall="2026-11-23T12:00:01.250000+00:00")
DOG = Event("Dog", 1.25, 3.5, 0.875, "2026-11-23T12:00:01.250000+00:00", "2026-11-23T12:00:03.500000+00:00")
SIREN = Event("Siren", 2.0, 6.125, 0.5, file="street.flac")
EVENTS = (ONSET, DOG, SIREN)


def test_jsonl_file_holds_one_object_per_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with open_sinks([f"jsonl:{path}"], labels=LABELS) as sinks:
        for event in EVENTS:
            sinks.emit(event)
        assert len(path.read_text().splitlines()) == 3  # flushed per line, before close
    assert path.read_text() == (
        '{"kind": "onset", "label": "Dog", "onset": 1.25, "offset": null, "confidence": 0.8125, '
        '"onset_wall": "2026-11-23T12:00:01.250000+00:00", "offset_wall": null, "file": null}\n'
        '{"kind": "event", "label": "Dog", "onset": 1.25, "offset": 3.5, "confidence": 0.875, '
        '"onset_wall": "2026-11-23T12:00:01.250000+00:00", "offset_wall": "2026-11-23T12:00:03.500000+00:00", "file": null}\n'
        '{"kind": "event", "label": "Siren", "onset": 2.0, "offset": 6.125, "confidence": 0.5, '
        '"onset_wall": null, "offset_wall": null, "file": "street.flac"}\n'
    )


def test_tsv_file_holds_complete_events_under_a_dcase_header(tmp_path: Path) -> None:
    path = tmp_path / "events.tsv"
    with open_sinks([f"tsv:{path}"], labels=LABELS, file="mic.wav") as sinks:
        for event in EVENTS:
            sinks.emit(dataclasses.replace(event, file=f"field/2026/{event.file}") if event.file else event)
    assert path.read_text() == (
        "filename\tonset\toffset\tevent_label\n"
        "mic.wav\t1.250\t3.500\tDog\n"
        "street.flac\t2.000\t6.125\tSiren\n"
    )


def test_file_sinks_start_afresh_or_append(tmp_path: Path) -> None:
    """A run starts its files afresh (detect's results); with ``append`` (listen: a restarted
    listener) it adds to them, and a TSV keeps its one header."""
    jsonl, tsv = tmp_path / "events.jsonl", tmp_path / "events.tsv"
    for append in (False, True, True):
        with open_sinks([f"jsonl:{jsonl}", f"tsv:{tsv}"], labels=LABELS, file="mic.wav", append=append) as sinks:
            sinks.emit(DOG)
    assert [json.loads(line)["onset"] for line in jsonl.read_text().splitlines()] == [1.25, 1.25, 1.25]
    assert tsv.read_text() == "filename\tonset\toffset\tevent_label\n" + "mic.wav\t1.250\t3.500\tDog\n" * 3
    with open_sinks([f"jsonl:{jsonl}", f"tsv:{tsv}"], labels=LABELS, file="mic.wav") as sinks:
        sinks.emit(SIREN)
    assert len(jsonl.read_text().splitlines()) == 1 and tsv.read_text().count("\n") == 2
    empty = tmp_path / "empty.tsv"
    empty.touch()  # an existing file without a header gets one
    with open_sinks([f"tsv:{empty}"], labels=LABELS, append=True) as sinks:
        sinks.emit(SIREN)
    assert empty.read_text().startswith("filename\tonset\toffset\tevent_label\n")


def test_an_appended_file_rotated_by_copytruncate_goes_on_from_its_new_end(tmp_path: Path) -> None:
    """logrotate's copytruncate empties a listener's file under it: the next line starts the file
    (appending writes at the end, wherever that is), with no run of NUL bytes before it."""
    path = tmp_path / "events.jsonl"
    with open_sinks([f"jsonl:{path}"], labels=LABELS, append=True) as sinks:
        sinks.emit(DOG)
        (tmp_path / "events.jsonl.1").write_bytes(path.read_bytes())
        with open(path, "r+") as rotated:
            rotated.truncate(0)
        sinks.emit(SIREN)
    assert [json.loads(line)["label"] for line in path.read_text().splitlines()] == ["Siren"]


def test_dead_sinks_are_counted_and_the_others_get_every_event(tmp_path: Path, caplog) -> None:
    good_jsonl, good_tsv = tmp_path / "good.jsonl", tmp_path / "good.tsv"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the pipe's reader has gone away
    sinks = open_sinks(["jsonl:/dev/full", f"jsonl:{good_jsonl}", f"tsv:{good_tsv}"], labels=LABELS)
    sinks = SinkSet([*sinks.sinks, ("pipe", JsonlSink(os.fdopen(write_end, "w"), owns_stream=True))])
    with caplog.at_level(logging.WARNING, logger="edge_sed.sinks"):
        for event in EVENTS:
            sinks.emit(event)
        sinks.update(StreamStatus(6.5, LABELS, (0.1, 0.2)))
        sinks.close()

    # three emits and the final flush on close, each failing
    assert sinks.failures == {"jsonl:/dev/full": 4, f"jsonl:{good_jsonl}": 0, f"tsv:{good_tsv}": 0, "pipe": 4}
    assert [json.loads(line) for line in good_jsonl.read_text().splitlines()] == [ev.to_dict() for ev in EVENTS]
    assert good_tsv.read_text().count("\n") == 3
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2  # logged once per dead sink
    assert "sink 'jsonl:/dev/full' failed (OSError: [Errno 28] No space left on device)" in warnings[0]
    assert "sink 'pipe' failed (BrokenPipeError" in warnings[1]


def test_sink_set_reports_failures_in_the_status_counters() -> None:
    seen: list[StreamStatus] = []

    class Recorder:
        def emit(self, event: Event) -> None:
            raise OSError("gone")

        def update(self, status: StreamStatus) -> None:
            seen.append(status)

        def close(self) -> None:
            pass

    sinks = SinkSet([("recorder", Recorder()), ("jsonl", JsonlSink(io.StringIO()))])
    sinks.update(StreamStatus(0.5, LABELS, (0.1, 0.2), counters={"clipped": 1}))
    sinks.emit(DOG)
    sinks.update(StreamStatus(1.0, LABELS, (0.1, 0.2), counters={"clipped": 1}))
    assert [status.counters for status in seen] == [{"clipped": 1}, {"clipped": 1, "sink failures": 1}]


def test_an_event_no_sink_takes_stops_the_set_once_and_quietly(caplog) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    sinks = SinkSet([("pipe", JsonlSink(os.fdopen(write_end, "w"), owns_stream=True))])
    with caplog.at_level(logging.WARNING, logger="edge_sed.sinks"):
        with pytest.raises(AllSinksFailed, match=r"^every sink failed, so detection stopped: pipe \(BrokenPipeError: ") as caught:
            sinks.emit(DOG)
        sinks.emit(DOG)  # the events closed after the stop: counted, not raised again
        sinks.close()
    assert caught.value.reader_gone and sinks.stopped and sinks.failures == {"pipe": 3}
    assert caplog.records == []  # the error says it all


def test_two_sinks_on_stdout_are_refused() -> None:
    for specs in (["jsonl", "tsv"], ["terminal", "jsonl:-"]):
        with pytest.raises(SinkError, match=rf"^sinks '{specs[0]}' and '{specs[1]}' would both write to stdout; send one to a file"):
            open_sinks(specs, labels=LABELS)
    open_sinks(["terminal", "jsonl:/dev/null", "tsv:/dev/null"], labels=LABELS).close()


def test_a_registered_scheme_opens_through_open_sinks() -> None:
    received: list[tuple[str | None, Event]] = []

    class ListSink:
        def __init__(self, target: str | None) -> None:
            self.target = target

        def emit(self, event: Event) -> None:
            received.append((self.target, event))

        def update(self, status: StreamStatus) -> None:
            pass

        def close(self) -> None:
            pass

    register_sink_scheme("memory", lambda target, **_: ListSink(target), "memory:NAME")
    try:
        assert "memory:NAME" in str(pytest.raises(SinkError, parse_sink_spec, "nope").value)
        with open_sinks(["memory:a", "memory:a"], labels=LABELS) as sinks:
            sinks.emit(DOG)
        assert list(sinks.failures) == ["memory:a", "memory:a#2"]
        assert received == [("a", DOG), ("a", DOG)]
    finally:
        del SINK_SCHEMES["memory"]


VALID_FORMS = (
    "valid sinks: terminal, jsonl, jsonl:PATH, tsv, tsv:PATH, "
    "mqtt://host[:port]/topic/{label}?qos=1&spool=DIR&client_id=ID&status=TOPIC, "
    "serial:///dev/ttyUSB0?baud=115200, udp://host:port, tcp://host:port"
)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("jsnl:out.jsonl", f"unknown sink 'jsnl:out.jsonl' (did you mean 'jsonl'?); {VALID_FORMS}"),
        ("", f"unknown sink ''; {VALID_FORMS}"),
        ("terminal:x", f"'terminal' takes no argument in sink 'terminal:x'; {VALID_FORMS}"),
        ("jsonl:", f"empty path in sink 'jsonl:'; {VALID_FORMS}"),
        ("mqtt", f"missing broker URL in sink 'mqtt'; {VALID_FORMS}"),
        ("tsv:/no/such/dir/x.tsv", "cannot open sink 'tsv:/no/such/dir/x.tsv': No such file or directory"),
        ("mqtt://h/a?qos=3", "MQTT qos must be 0, 1 or 2, got 3"),
        ("mqtt://h:99999/a", "bad MQTT sink 'mqtt://h:99999/a' (Port out of range 0-65535); "
                             "expected mqtt://host[:port]/topic/{label}?qos=1&spool=DIR&client_id=ID&status=TOPIC"),
        ("mqtt://h/a?retain=1", "unknown MQTT option 'retain' in 'mqtt://h/a?retain=1'; valid options: qos, spool, client_id, status"),
        ("mqtt://h/{lable}", "bad MQTT topic template '{lable}': it must be non-empty, without '+' or '#', "
                             "and its only placeholders are {label} and {kind}"),
        ("mqtt://h/a/#", "bad MQTT sink 'mqtt://h/a/#': '#' is a subscription wildcard, not a topic to publish to"),
        ("mqtt://h/a?client_id=" + "x" * 65536, "MQTT client_id must be at most 65535 bytes, got 65536"),
        ("tsv:/dev/full", "cannot write sink 'tsv:/dev/full': No space left on device"),
    ],
)
def test_bad_specs_give_one_line(spec: str, message: str) -> None:
    with pytest.raises(SinkError) as error:
        open_sinks([spec], labels=LABELS)
    assert str(error.value) == message


@given(st.one_of(st.text(max_size=60), st.text(max_size=40).map(lambda rest: "mqtt://" + rest)))
def test_any_spec_text_parses_or_gives_a_sink_error(text: str) -> None:
    try:
        spec = parse_sink_spec(text)
    except SinkError as exc:
        assert "valid sinks: terminal" in str(exc)
    else:
        assert spec.scheme in SINK_SCHEMES
        assert spec.target == (text.strip().partition(":")[2] if ":" in text.strip() else None)
    if text.startswith("mqtt:"):
        try:
            parse_mqtt_url(text)
        except SinkError:
            pass


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=200)
@given(
    host=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,5})?", fullmatch=True),
    port=st.integers(1, 65535),
    topic=st.lists(st.one_of(st.sampled_from(["{label}", "{kind}", "edge sed", "a?b", "100%"]),
                             _names.filter(lambda s: not set(s) & set("{}+#/"))), min_size=1, max_size=4),
    qos=st.sampled_from([0, 1, 2]),
    spool=st.one_of(st.none(), st.sampled_from(["/var/spool/edge sed", "spool&dir", "relative/x=y"])),
    client_id=st.one_of(st.just(""), _names),
    credentials=st.one_of(st.none(), st.tuples(_names, st.one_of(st.none(), _names))),
    status=st.one_of(st.none(), st.lists(_names.filter(lambda s: not set(s) & set("{}+#/")), min_size=1, max_size=3)),
)
def test_mqtt_settings_round_trip_through_their_url(host, port, topic, qos, spool, client_id, credentials, status) -> None:
    username, password = credentials or (None, None)
    mqtt_settings = MqttSettings(host, port, "/".join(topic), qos, spool, client_id, username, password,
                                 None if status is None else "/".join(status))
    url = mqtt_settings.to_url()
    assert parse_mqtt_url(url) == mqtt_settings
    assert parse_sink_spec(url).scheme == "mqtt"


def test_mqtt_topic_template_fills_label_and_kind() -> None:
    mqtt_settings = parse_mqtt_url("mqtt://broker/home/{kind}/{label}")
    assert (mqtt_settings.host, mqtt_settings.port, mqtt_settings.qos) == ("broker", 1883, 1)
    assert mqtt_settings.topic_for(Event("Vehicle horn/honk", 1.0, None, 0.9)) == "home/onset/Vehicle horn_honk"
    assert mqtt_settings.topic_for(DOG) == "home/event/Dog"
    assert parse_mqtt_url("mqtt://broker").topic == "edge-sed/{label}/{kind}"


def test_mqtt_sink_without_paho_names_the_extra(tmp_path: Path) -> None:
    with mock.patch.dict(sys.modules, {"paho": None, "paho.mqtt": None, "paho.mqtt.client": None}):
        with pytest.raises(MissingDependencyError) as error:
            MqttSink(MqttSettings("localhost", spool=str(tmp_path)))
    assert str(error.value) == (
        "the MQTT sink needs the [mqtt] extra (paho.mqtt.client is not installed): pip install 'edge-sed[mqtt]'"
    )


def test_terminal_view_shows_events_meters_and_counters() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    view = TerminalSink(LABELS, console=console)
    view.emit(ONSET)
    view.update(StreamStatus(2.0, LABELS, (0.9, 0.25), ("Dog",), -23.5, 0.042, 3, {"clipped": 2}))
    view.emit(SIREN)
    view.close()
    text = console.file.getvalue()
    assert "level  -23.5 dBFS" in text
    assert "real-time factor 0.042" in text
    assert "overruns 3" in text and "clipped 2" in text
    assert "* Dog    " + "━" * 27 + "─" * 3 + " 0.90" in text  # 0.90 of the 30 cells; the active mark
    assert "  Siren  " + "━" * 8 + "─" * 22 + " 0.25" in text
    assert "  Dog         1.25        0.81" in text  # active since 1.25 s
    assert "  Siren       2.00        6.12        0.50" in text  # recent, complete


def test_terminal_view_crops_lines_to_a_narrow_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=24, color_system=None)
    view = TerminalSink(LABELS, console=console)
    view.update(StreamStatus(2.0, LABELS, (0.9, 0.25), ("Dog",), -23.5, 0.042, 3, {"clipped": 2}))
    view.emit(SIREN)
    view.close()
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue()).replace("\r", "\n").splitlines()
    assert "t     2.00 s  level  -23" in lines  # cropped, not wrapped onto a second line
    assert "  Siren       2.00      " in lines
    assert max(len(line) for line in lines) == 24


def test_terminal_view_redraws_for_every_event_but_caps_status_redraws() -> None:
    def frames(min_redraw_s: float) -> int:
        console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
        view = TerminalSink(LABELS, console=console, min_redraw_s=min_redraw_s)
        view.emit(ONSET)
        for step in range(5):
            view.update(StreamStatus(2.0 + step, LABELS, (0.9, 0.25), ("Dog",)))
        view.emit(SIREN)
        return console.file.getvalue().count("recent ")

    assert frames(0.0) == 7  # two events and five statuses
    assert frames(3600.0) == 2  # the events only


def test_terminal_view_ends_with_a_newline_when_not_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=120, color_system=None)
    view = TerminalSink(LABELS, console=console)
    view.emit(ONSET)
    view.close()
    text = console.file.getvalue()
    assert "Dog" in text and text.endswith("\n")
