"""Byte transports for bridge frames: serial (pyserial), UDP and TCP, opened from a URL.

=================================  =====================================================
URL                                what it opens
=================================  =====================================================
``serial:///dev/ttyUSB0?baud=N``   a serial port (pyserial), raw 8N1, ``baud`` default 115200
``udp://host:port``                as a sender: datagrams to host:port; as a receiver
                                   (``listen=True``): bound to host:port
``tcp://host:port``                a TCP client connected to host:port
=================================  =====================================================

Every transport has ``read() -> bytes`` (waits at most ``timeout_s``; ``b""``
when nothing came), ``write(data)`` and ``close()``. ``read`` returns ``None``
once the peer has closed a TCP connection.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from edge_sed.errors import ConfigError, EdgeSedError, require

__all__ = ["Transport", "TransportUrl", "parse_url", "open_transport", "SCHEMES", "DEFAULT_BAUD"]

log = logging.getLogger(__name__)

SCHEMES = ("serial", "udp", "tcp")
DEFAULT_BAUD = 115200
_READ_SIZE = 4096
_UDP_MAX_DATAGRAM = 65507


class Transport(Protocol):
    """A byte pipe to firmware."""

    def read(self) -> bytes | None: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TransportUrl:
    """A parsed transport URL: ``scheme``, ``path`` (serial) or ``host``/``port``, options."""

    scheme: str
    path: str = ""
    host: str = ""
    port: int = 0
    baud: int = DEFAULT_BAUD
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str) -> str:
        """A query option other than ``baud`` (e.g. ``scores=0``), or *default*."""
        return dict(self.options).get(name, default)


def parse_url(url: str, *, error: type[EdgeSedError] = ConfigError, options: tuple[str, ...] = ()) -> TransportUrl:
    """Parse a ``serial://``, ``udp://`` or ``tcp://`` URL taking ``baud`` and the query *options*;
    *error* (one line) names the forms."""
    forms = "serial:///dev/ttyUSB0?baud=115200, udp://host:port, tcp://host:port"
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise error(f"unknown bridge URL scheme in {url!r}; use one of: {forms}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"baud", *options})
    if unknown:
        raise error(f"unknown option {unknown[0]!r} in {url!r}; valid options: {', '.join(('baud', *options))}")
    baud_text = query.pop("baud", str(DEFAULT_BAUD))
    if not baud_text.isdigit() or int(baud_text) <= 0:
        raise error(f"baud must be a positive integer in {url!r}, got {baud_text!r}")
    options = tuple(sorted(query.items()))
    if parts.scheme == "serial":
        if not parts.path:
            raise error(f"serial URL {url!r} names no port; e.g. serial:///dev/ttyUSB0?baud=115200")
        return TransportUrl("serial", path=parts.path, baud=int(baud_text), options=options)
    example = f"e.g. {parts.scheme}://127.0.0.1:5005"
    bad_port = error(f"{parts.scheme} URL {url!r}: the port must be a number from 1 to 65535; {example}")
    try:
        port = parts.port
    except ValueError:  # not a number, or over 65535
        raise bad_port from None
    if port == 0:
        raise bad_port
    if not parts.hostname or port is None:
        raise error(f"{parts.scheme} URL {url!r} needs a host and a port, {example}")
    return TransportUrl(parts.scheme, host=parts.hostname, port=port, options=options)


def open_transport(
    url: str | TransportUrl,
    *,
    listen: bool = False,
    timeout_s: float = 0.1,
    error: type[EdgeSedError] = EdgeSedError,
) -> Transport:
    """Open the transport *url* names.

    Parameters
    ----------
    listen : bool
        For ``udp://``: bind to host:port and receive, instead of sending there.
    timeout_s : float
        How long one ``read()`` waits.
    error : type of EdgeSedError
        What to raise when the port or socket cannot be opened (a sink passes
        ``SinkError``, a source ``AudioInputError``).
    """
    target = parse_url(url) if isinstance(url, str) else url
    try:
        if target.scheme == "serial":
            return _SerialTransport(target, timeout_s)
        if target.scheme == "udp":
            return _UdpTransport(target, timeout_s, listen)
        return _TcpTransport(target, timeout_s)
    except OSError as exc:  # serial.SerialException is an OSError
        where = target.path or f"{target.host}:{target.port}"
        raise error(f"cannot open {target.scheme} bridge {where!r}: {exc.strerror or exc}") from None


class _SerialTransport:
    def __init__(self, target: TransportUrl, timeout_s: float) -> None:
        serial = require("serial", what="a serial:// bridge", extra="serial")
        self._port = serial.Serial(target.path, baudrate=target.baud, timeout=timeout_s, write_timeout=1.0)

    def read(self) -> bytes:
        waiting = self._port.in_waiting
        return self._port.read(max(1, min(waiting, _READ_SIZE)))

    def write(self, data: bytes) -> None:
        self._port.write(data)

    def close(self) -> None:
        self._port.close()


class _UdpTransport:
    def __init__(self, target: TransportUrl, timeout_s: float, listen: bool) -> None:
        self._address = (target.host, target.port)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.settimeout(timeout_s)
        if listen:
            self._socket.bind(self._address)

    def read(self) -> bytes:
        try:
            return self._socket.recv(_UDP_MAX_DATAGRAM)
        except TimeoutError:
            return b""

    def write(self, data: bytes) -> None:
        self._socket.sendto(data, self._address)

    def close(self) -> None:
        self._socket.close()


class _TcpTransport:
    def __init__(self, target: TransportUrl, timeout_s: float) -> None:
        self._socket = socket.create_connection((target.host, target.port), timeout=max(timeout_s, 2.0))
        self._socket.settimeout(timeout_s)

    def read(self) -> bytes | None:
        try:
            data = self._socket.recv(_READ_SIZE)
        except TimeoutError:
            return b""
        return data or None  # b"" from recv: the peer closed the connection

    def write(self, data: bytes) -> None:
        self._socket.sendall(data)

    def close(self) -> None:
        self._socket.close()
