"""A sink that sends events, scores and heartbeats to firmware as bridge frames.

``edge-sed listen --sink serial:///dev/ttyUSB0?baud=115200`` (or ``udp://``,
``tcp://``) ends here. An event becomes an EVENT frame (an onset when it is
confirmed, an offset when it ends); each pipeline status becomes a SCORES frame
(unless the URL says ``scores=0``) and, once a second of stream time, a
HEARTBEAT. A link that fails mid-run stays down: every frame from then on is
dropped and counted, and each call raises the link's error, so that the sink set
counts the failures, logs the first and keeps the other sinks going.
"""

from __future__ import annotations

import time
import functools
from collections.abc import Sequence

from edge_sed.errors import SinkError
from edge_sed.events import Event, StreamStatus
from firmware_bridge.protocol import (
    CLASS_UNKNOWN,
    EventKind,
    EventMessage,
    FrameEncoder,
    HeartbeatMessage,
    Message,
    ScoresMessage,
    quantize_q16,
)
from firmware_bridge.transports import Transport, open_transport, parse_url

__all__ = ["BridgeSink", "HEARTBEAT_INTERVAL_S", "SINK_FORMS", "register_bridge_sinks"]

#: The sink spec forms, by scheme (shown by ``edge-sed listen --sink`` errors).
SINK_FORMS = {
    "serial": "serial:///dev/ttyUSB0?baud=115200",
    "udp": "udp://host:port",
    "tcp": "tcp://host:port",
}
#: Stream time between two HEARTBEAT frames.
HEARTBEAT_INTERVAL_S = 1.0
_MS_MOD = 1 << 32


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000)) % _MS_MOD


class BridgeSink:
    """Events -> EVENT frames; statuses -> SCORES and HEARTBEAT frames.

    Parameters
    ----------
    url : str
        ``serial:///dev/ttyUSB0?baud=115200``, ``udp://host:port`` or
        ``tcp://host:port``; ``scores=0`` in the query turns SCORES off.
    labels : sequence of str, optional
        The model's labels; an event's class id is its label's index. Without
        them the labels of the first status are used; an event whose label is
        unknown is sent with class id 0xFFFF.
    transport : Transport, optional
        An open transport to use instead of opening *url*.
    """

    def __init__(self, url: str, labels: Sequence[str] | None = None, *, transport: Transport | None = None) -> None:
        target = parse_url(url, error=SinkError, options=("scores",))
        self.url = url
        self.send_scores = target.option("scores", "1") not in ("0", "false", "no")
        self._encoder = FrameEncoder()  # before the link: a missing [serial] extra fails here, with nothing open
        self._transport = transport if transport is not None else open_transport(target, error=SinkError)
        self._class_ids = {label: index for index, label in enumerate(labels or ())}
        self._opened = time.monotonic()
        self._next_heartbeat_s = 0.0
        self.sent = 0
        self.dropped = 0
        self.error: OSError | None = None

    def emit(self, event: Event) -> None:
        """Send an onset (event still open) or an offset (event complete)."""
        class_id = self._class_ids.get(event.label, CLASS_UNKNOWN)
        confidence = quantize_q16(event.confidence)
        if event.offset is None:
            message = EventMessage(EventKind.ONSET, class_id, confidence, _ms(event.onset))
        else:
            duration = max(0, _ms(event.offset) - _ms(event.onset))
            message = EventMessage(EventKind.OFFSET, class_id, confidence, _ms(event.offset), duration)
        self._send(message)

    def update(self, status: StreamStatus) -> None:
        """Send the window's scores, and a heartbeat once per :data:`HEARTBEAT_INTERVAL_S`."""
        if not self._class_ids:
            self._class_ids = {label: index for index, label in enumerate(status.labels)}
        if self.send_scores:
            self._send(ScoresMessage.from_scores(_ms(status.time_s), status.scores))
        if status.time_s >= self._next_heartbeat_s:
            self._next_heartbeat_s = status.time_s + HEARTBEAT_INTERVAL_S
            uptime = _ms(time.monotonic() - self._opened)
            self._send(HeartbeatMessage(uptime, overruns=status.overruns % _MS_MOD))

    def close(self) -> None:
        """Close the link (idempotent)."""
        self._transport.close()

    @property
    def counters(self) -> dict[str, int]:
        """Frames sent and frames dropped because the link failed."""
        return {"sent": self.sent, "dropped": self.dropped}

    @property
    def failed(self) -> bool:
        """Whether the link has failed (it stays down)."""
        return self.error is not None

    def _send(self, message: Message) -> None:
        if self.error is not None:
            self.dropped += 1
            raise OSError(f"the link has been down since: {self.error}")
        try:
            self._transport.write(self._encoder.encode(message))
        except OSError as exc:  # serial.SerialException and socket errors
            self.error = exc
            self.dropped += 1
            raise
        self.sent += 1


def _open_bridge_sink(scheme: str, target: str | None, *, labels: Sequence[str], file: str | None,
                      append: bool = False) -> BridgeSink:
    return BridgeSink(f"{scheme}:{target or ''}", labels)


def register_bridge_sinks() -> None:
    """Register ``serial://``, ``udp://`` and ``tcp://`` with :func:`edge_sed.sinks.register_sink_scheme`."""
    from edge_sed.sinks import register_sink_scheme

    for scheme, form in SINK_FORMS.items():
        register_sink_scheme(scheme, functools.partial(_open_bridge_sink, scheme), form)
