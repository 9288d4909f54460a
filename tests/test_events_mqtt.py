"""The MQTT sink against a real mosquitto on loopback: delivery, a broker restart
in mid-stream with no event lost, and a spool handed on to the next run."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_sed.errors import SinkError
from edge_sed.events import Event
from edge_sed.sinks import MqttSink, open_sinks, parse_mqtt_url
from conftest import need_program

pytestmark = pytest.mark.system
mqtt = pytest.importorskip("paho.mqtt.client")

WAIT_S = 8.0


def _wait_for(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """mosquitto on a loopback port, with persistence so a subscriber's session survives a restart."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "user root\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "mosquitto.log", "a"),
        )
        _wait_for(self._listening, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=5)
            self.process = None

    def _listening(self) -> bool:
        assert self.process is not None and self.process.poll() is None, (self.folder / "mosquitto.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False


class Subscriber:
    """A paho client with a persistent session collecting every message under ``test/``."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, dict]] = []
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edge-sed-test-subscriber", clean_session=False)
        client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        client.on_connect = lambda c, *_: c.subscribe("test/#", qos=1)
        client.on_subscribe = lambda *_: self.subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client
        assert self.subscribed.wait(WAIT_S)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload)))

    def received(self) -> list[tuple[str, dict]]:
        with self._lock:
            return list(self.messages)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path):
    need_program("mosquitto")
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def subscriber(broker: Broker):
    subscriber = Subscriber(broker.port)
    yield subscriber
    subscriber.stop()


def _distinct(messages) -> set[str]:
    """Messages as a set: delivery is at least once, and not ordered across (re)connects."""
    return {json.dumps([topic, payload], sort_keys=True) for topic, payload in messages}


def _published(events) -> set[str]:
    return _distinct((f"test/{ev.kind}/{ev.label.replace('/', '_')}", ev.to_dict()) for ev in events)


def _events(first: int, count: int) -> list[Event]:
    return [Event("Dog" if i % 2 else "Vehicle horn/honk", float(i), float(i) + 0.5, 0.75) for i in range(first, first + count)]


def _sink(port: int, spool: Path, ack_timeout_s: float = 5.0) -> MqttSink:
    settings = parse_mqtt_url(f"mqtt://127.0.0.1:{port}/test/{{kind}}/{{label}}?spool={spool}&client_id=edge-sed-test")
    return MqttSink(settings, ack_timeout_s=ack_timeout_s, reconnect_max_s=0.3)


def test_every_event_arrives_with_its_topic_and_payload(broker: Broker, subscriber: Subscriber, tmp_path: Path, caplog) -> None:
    spool = tmp_path / "spool"
    onset = Event("Dog", 0.5, None, 0.625, onset_wall="2026-11-23T12:00:00.500000+00:00")
    events = [onset, *_events(1, 3)]
    with caplog.at_level(logging.WARNING, logger="edge_sed.sinks"):
        with open_sinks([f"mqtt://127.0.0.1:{broker.port}/test/{{kind}}/{{label}}?qos=1&spool={spool}"], labels=["Dog"]) as sinks:
            for event in events:
                sinks.emit(event)
    assert caplog.records == []  # closing is not losing the broker
    assert sinks.failures == {f"mqtt://127.0.0.1:{broker.port}/test/{{kind}}/{{label}}?qos=1&spool={spool}": 0}
    assert list(spool.iterdir()) == []
    _wait_for(lambda: len(subscriber.received()) >= 4, "4 messages")
    assert _distinct(subscriber.received()) == _distinct([
        ("test/onset/Dog", onset.to_dict()),
        ("test/event/Dog", events[1].to_dict()),
        ("test/event/Vehicle horn_honk", events[2].to_dict()),
        ("test/event/Dog", events[3].to_dict()),
    ])


def test_broker_restart_mid_stream_loses_no_event(broker: Broker, subscriber: Subscriber, tmp_path: Path) -> None:
    sink = _sink(broker.port, tmp_path / "spool")
    before, during, after = _events(0, 5), _events(5, 5), _events(10, 5)
    for event in before:
        sink.emit(event)
    broker.stop()
    for event in during:
        sink.emit(event)
    assert len(sink.spooled) >= len(during)  # nobody acknowledged these
    broker.start()
    for event in after:
        sink.emit(event)
    sink.close()
    assert sink.spooled == []
    expected = _published(before + during + after)
    _wait_for(lambda: _distinct(subscriber.received()) >= expected, "every event after the restart")
    assert _distinct(subscriber.received()) == expected
    assert sink.disconnects >= 1


def test_spooled_events_are_sent_by_the_next_run(tmp_path: Path) -> None:
    need_program("mosquitto")
    spool, folder = tmp_path / "spool", tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder)  # not started: nobody is listening on its port
    events = _events(0, 3)
    first_run = _sink(broker.port, spool, ack_timeout_s=0.3)
    for event in events:
        first_run.emit(event)
    first_run.close()
    assert len(first_run.spooled) == 3

    broker.start()
    subscriber = Subscriber(broker.port)
    try:
        second_run = _sink(broker.port, spool)
        second_run.close()
        assert second_run.spooled == []
        _wait_for(lambda: len(subscriber.received()) == 3, "the spooled events")
        assert _distinct(subscriber.received()) == _published(events)
    finally:
        subscriber.stop()
        broker.stop()


class StatusWatcher:
    """A paho client that records every payload of one (retained) status topic."""

    def __init__(self, port: int, topic: str) -> None:
        self.payloads: list[str] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edge-sed-test-status")
        client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client
        assert subscribed.wait(WAIT_S)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.payloads.append(message.payload.decode())

    def last(self) -> str | None:
        with self._lock:
            return self.payloads[-1] if self.payloads else None

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_status_topic_is_online_while_running_and_offline_after_close(broker: Broker, subscriber: Subscriber, tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}/test/{{kind}}/{{label}}?spool={tmp_path / 'spool'}&status=status/edge-sed"
    sink = MqttSink(parse_mqtt_url(url))
    watcher = StatusWatcher(broker.port, "status/edge-sed")  # subscribed after the sink connected: the retained value
    try:
        _wait_for(lambda: watcher.last() == "online", "a retained 'online'")
        event = _events(0, 1)[0]
        sink.emit(event)
        sink.close()
        _wait_for(lambda: watcher.last() == "offline", "'offline' after close")
        assert watcher.payloads == ["online", "offline"]
    finally:
        watcher.stop()
    _wait_for(lambda: len(subscriber.received()) == 1, "the event")  # events keep their own topics
    assert _distinct(subscriber.received()) == _published([event])


def test_status_goes_offline_when_the_process_dies(broker: Broker, tmp_path: Path) -> None:
    """SIGKILL gives the sink no chance to say so: the broker publishes its last will."""
    url = f"mqtt://127.0.0.1:{broker.port}/test/{{kind}}/{{label}}?spool={tmp_path / 'spool'}&status=status/killed"
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from edge_sed.sinks import MqttSink, parse_mqtt_url\n"
        f"MqttSink(parse_mqtt_url({url!r}))\n"
        "time.sleep(120)\n")])
    watcher = StatusWatcher(broker.port, "status/killed")
    try:
        _wait_for(lambda: watcher.last() == "online", "'online' from the child")
        child.kill()
        child.wait(timeout=10)
        _wait_for(lambda: watcher.last() == "offline", "the last will")
    finally:
        child.kill()
        watcher.stop()


def test_status_topic_is_a_plain_topic() -> None:
    assert parse_mqtt_url("mqtt://h/a/{label}?status=home/edge-sed/status").status == "home/edge-sed/status"
    assert parse_mqtt_url("mqtt://h/a?status=s/x").to_url() == "mqtt://h:1883/a?qos=1&status=s%2Fx"
    for bad in ("s/%2B", "s/%23", "s/{label}", ""):  # '+' and '#' escaped: as they are, a URL reads them otherwise
        with pytest.raises(SinkError, match="bad MQTT status topic"):
            parse_mqtt_url(f"mqtt://h/a?status={bad}")
