"""Where events go: the terminal, JSON Lines, DCASE TSV, MQTT; several at once.

A sink spec string names each sink; :func:`parse_sink_spec` is the one parser:

- ``terminal``: a live rich view (active and recent events, per-class meters,
  input level, real-time factor, overruns and other counters);
- ``jsonl`` (stdout) or ``jsonl:PATH``: one JSON object per line, onsets and
  complete events, flushed per line;
- ``tsv`` (stdout) or ``tsv:PATH``: DCASE ``filename onset offset event_label``
  with a header, complete events only;
- ``mqtt://[user:pass@]host[:port]/topic/template?qos=1&spool=DIR&client_id=ID``:
  JSON payloads, topic placeholders ``{label}`` and ``{kind}``, and a local spool
  so that no event is lost while the broker is down (the ``[mqtt]`` extra).

More schemes plug in with :func:`register_sink_scheme` (``serial://`` from
``firmware_bridge``). :func:`open_sinks` opens a :class:`SinkSet`, which fans
every event and status out to all sinks and isolates their failures: a sink
that raises is counted in :attr:`SinkSet.failures`, logged once, and stops
neither detection nor the other sinks, until a call (an event, a status, the
closing flush) reaches none of them (:class:`~edge_sed.errors.AllSinksFailed`).
At most one sink writes to stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import errno
import json
import logging
import os
import string
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Protocol, Sequence
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from edge_sed.errors import AllSinksFailed, SinkError, require
from edge_sed.events import Event, StreamStatus

__all__ = [
    "Sink",
    "SinkSet",
    "SinkSpec",
    "SinkScheme",
    "SINK_SCHEMES",
    "register_sink_scheme",
    "parse_sink_spec",
    "writes_stdout",
    "open_sinks",
    "JsonlSink",
    "TsvSink",
    "TerminalSink",
    "pipe_console",
    "MqttSettings",
    "parse_mqtt_url",
    "MqttSink",
    "TSV_HEADER",
]

logger = logging.getLogger(__name__)

TSV_HEADER = "filename\tonset\toffset\tevent_label"
STDOUT_TARGET = "-"
DEFAULT_TSV_FILENAME = "-"
#: Characters in a terminal score meter.
_METER_WIDTH = 30


class Sink(Protocol):
    """Anything that takes events and status snapshots; ``close()`` flushes and releases it."""

    def emit(self, event: Event) -> None: ...

    def update(self, status: StreamStatus) -> None: ...

    def close(self) -> None: ...


#: ``factory(target, labels=..., file=..., append=...)``: *target* is what follows ``scheme:``
#: (``None`` when the spec is the bare scheme name); *append*: add to an existing file rather than
#: start it afresh (sinks that write no file ignore it).
SinkFactory = Callable[..., Sink]


def _never(target: str | None) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class SinkScheme:
    """A registered kind of sink: how to open it, the spec forms it accepts (for error
    messages), and whether a spec's target means stdout."""

    factory: SinkFactory
    forms: tuple[str, ...]
    writes_stdout: Callable[[str | None], bool] = _never


SINK_SCHEMES: dict[str, SinkScheme] = {}


def register_sink_scheme(name: str, factory: SinkFactory, *forms: str,
                         writes_stdout: Callable[[str | None], bool] = _never) -> None:
    """Make ``name`` or ``name:...`` specs open sinks through *factory*.

    *forms* are the spec shapes shown when a spec is wrong, e.g. ``"serial:PORT?baud=115200"``;
    *writes_stdout* tells from a spec's target whether the sink writes to stdout.
    """
    SINK_SCHEMES[name] = SinkScheme(factory, forms or (name,), writes_stdout)


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """A parsed sink spec: the scheme, and what followed ``scheme:`` (``None`` if nothing)."""

    text: str
    scheme: str
    target: str | None


def _valid_forms() -> str:
    return ", ".join(form for scheme in SINK_SCHEMES.values() for form in scheme.forms)


def _bad_spec(text: str, why: str) -> SinkError:
    return SinkError(f"{why} in sink {text!r}; valid sinks: {_valid_forms()}")


def writes_stdout(spec: SinkSpec | str) -> bool:
    """Whether the sink *spec* names writes to stdout (``jsonl``, ``tsv``, ``terminal``)."""
    spec = parse_sink_spec(spec) if isinstance(spec, str) else spec
    return SINK_SCHEMES[spec.scheme].writes_stdout(spec.target)


def parse_sink_spec(text: str) -> SinkSpec:
    """Split a sink spec into its scheme and target, refusing unknown schemes.

    Raises
    ------
    SinkError
        One line naming the spec and listing the valid forms.
    """
    scheme, colon, target = text.strip().partition(":")
    if scheme not in SINK_SCHEMES:
        close = difflib.get_close_matches(scheme, SINK_SCHEMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SinkError(f"unknown sink {text!r}{hint}; valid sinks: {_valid_forms()}")
    return SinkSpec(text, scheme, target if colon else None)


class SinkSet:
    """Several sinks as one: every call reaches every sink, and a failing sink is
    counted (:attr:`failures`, by spec) and logged once instead of raising,
    until a call reaches none of them (:attr:`stopped`)."""

    def __init__(self, sinks: Sequence[tuple[str, Sink]]) -> None:
        self.sinks = list(sinks)
        self.failures: dict[str, int] = {name: 0 for name, _ in self.sinks}
        self.stopped = False
        self._warned: set[str] = set()

    def emit(self, event: Event) -> None:
        """Hand *event* to every sink; :class:`~edge_sed.errors.AllSinksFailed`, once, if none took it."""
        self._settle(self._each("emit", event))

    def update(self, status: StreamStatus) -> None:
        """Hand a status snapshot to every sink (with a ``sink failures`` counter once one failed);
        :class:`~edge_sed.errors.AllSinksFailed`, once, if every sink failed to take it."""
        failed = sum(self.failures.values())
        if failed:
            status = dataclasses.replace(status, counters={**status.counters, "sink failures": failed})
        self._settle(self._each("update", status))

    def close(self) -> None:
        """Close every sink, whatever the others do; :class:`~edge_sed.errors.AllSinksFailed` as for :meth:`emit`."""
        self._settle(self._each("close"))

    def __enter__(self) -> SinkSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _each(self, method: str, *args: Any) -> dict[str, Exception]:
        """Call *method* of every sink; the errors of those that failed, by name (each one counted)."""
        failed: dict[str, Exception] = {}
        for name, sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception as exc:  # a dead sink must stop neither detection nor the other sinks
                self.failures[name] += 1
                failed[name] = exc
        return failed

    def _settle(self, failed: dict[str, Exception]) -> None:
        """Stop the set if every sink failed this call (the first time), else warn of new failures."""
        if self.sinks and len(failed) == len(self.sinks) and not self.stopped:
            self.stopped = True
            raise AllSinksFailed(failed)
        self._warn(failed)

    def _warn(self, failed: dict[str, Exception]) -> None:
        """Log each sink's first failure (none once the set has stopped: its error says why)."""
        for name, exc in failed.items():
            if name not in self._warned and not self.stopped:
                self._warned.add(name)
                logger.warning("sink %r failed (%s: %s); detection goes on and its failures are counted",
                               name, type(exc).__name__, exc)


def open_sinks(specs: Sequence[str], *, labels: Sequence[str], file: str | None = None, append: bool = False) -> SinkSet:
    """Parse every spec, then open the sinks (nothing is opened if any spec is wrong).

    Parameters
    ----------
    specs : sequence of str
        Sink specs (see the module docstring).
    labels : sequence of str
        The model's class names (the terminal view's meters).
    file : str, optional
        The input's name, for the ``filename`` column of TSV rows of events without one.
    append : bool
        File sinks add to an existing file (a TSV without a second header) instead of
        starting it afresh: a listener restarted by a service manager keeps its record.
    """
    parsed = [parse_sink_spec(spec) for spec in specs]
    on_stdout = [spec.text for spec in parsed if writes_stdout(spec)]
    if len(on_stdout) > 1:
        raise SinkError(f"sinks {on_stdout[0]!r} and {on_stdout[1]!r} would both write to stdout; "
                        "send one to a file (jsonl:PATH, tsv:PATH, or detect's -o FILE)")
    opened: list[tuple[str, Sink]] = []
    try:
        for spec in parsed:
            name = spec.text if spec.text not in dict(opened) else f"{spec.text}#{len(opened) + 1}"
            factory = SINK_SCHEMES[spec.scheme].factory
            opened.append((name, factory(spec.target, labels=tuple(labels), file=file, append=append)))
    except BaseException:
        SinkSet(opened).close()
        raise
    return SinkSet(opened)


# -- files and streams --------------------------------------------------------------------


def _is_stdout(target: str | None) -> bool:
    return target is None or target == STDOUT_TARGET


def _open_text(target: str | None, scheme: str, append: bool) -> tuple[IO[str], bool]:
    """The stream for ``scheme[:PATH]`` (appended to, or started afresh) and whether the sink owns it
    (stdout it does not)."""
    if _is_stdout(target):
        return sys.stdout, False
    if not target:
        raise _bad_spec(f"{scheme}:", "empty path")
    try:
        return open(target, "a" if append else "w", encoding="utf-8"), True
    except OSError as exc:
        raise SinkError(f"cannot open sink '{scheme}:{target}': {exc.strerror or exc}") from None


class _LineSink:
    """Writes one line per record and flushes it, so a crash loses nothing written."""

    def __init__(self, stream: IO[str], *, owns_stream: bool = False) -> None:
        self.stream = stream
        self._owns_stream = owns_stream

    def _write_line(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def update(self, status: StreamStatus) -> None:
        """Status snapshots are not written to files."""

    def close(self) -> None:
        if self._owns_stream:
            self.stream.close()
        else:
            self.stream.flush()


class JsonlSink(_LineSink):
    """One JSON object per line (:meth:`Event.to_dict`): onset notifications and complete events."""

    def emit(self, event: Event) -> None:
        self._write_line(json.dumps(event.to_dict(), ensure_ascii=False))


class TsvSink(_LineSink):
    """DCASE-style ``filename onset offset event_label`` rows, complete events only, after a header
    (written unless *header* is False: rows added to a file that has one).

    ``filename`` is the base name of the event's ``file``, as in DCASE annotations
    (JSON Lines keep the path as given); rows of events without one get *filename*.
    """

    def __init__(self, stream: IO[str], *, filename: str | None = None, owns_stream: bool = False,
                 header: bool = True) -> None:
        super().__init__(stream, owns_stream=owns_stream)
        self.filename = filename or DEFAULT_TSV_FILENAME
        if header:
            self._write_line(TSV_HEADER)

    def emit(self, event: Event) -> None:
        if event.offset is not None:
            filename = os.path.basename(event.file) if event.file else self.filename
            self._write_line(f"{filename}\t{event.onset:.3f}\t{event.offset:.3f}\t{event.label}")


def _open_jsonl(target: str | None, *, labels: Sequence[str], file: str | None, append: bool = False) -> JsonlSink:
    stream, owned = _open_text(target, "jsonl", append)
    return JsonlSink(stream, owns_stream=owned)


def _open_tsv(target: str | None, *, labels: Sequence[str], file: str | None, append: bool = False) -> TsvSink:
    stream, owned = _open_text(target, "tsv", append)
    try:  # the header now, unless rows go on after an existing one
        return TsvSink(stream, filename=file, owns_stream=owned, header=not (owned and append and stream.tell() > 0))
    except OSError as exc:
        if owned:
            with contextlib.suppress(OSError):  # the header is still in its buffer
                stream.close()
        spec = "tsv" if target is None else f"tsv:{target}"
        raise SinkError(f"cannot write sink {spec!r}: {exc.strerror or exc}") from None


# -- the terminal --------------------------------------------------------------------------


def pipe_console(**options: Any) -> Any:
    """A rich ``Console`` (*options* as its own) on which a reader that went away raises
    :class:`BrokenPipeError`, so that the caller decides what follows (rich would exit 1),
    and any other write error names the file (``'<stdout>'``: a full disk under ``> FILE``)."""
    from rich.console import Console

    class _PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def _check_buffer(self) -> None:
            try:
                super()._check_buffer()
            except BrokenPipeError:
                raise
            except OSError as exc:
                if exc.filename is not None:
                    raise
                raise OSError(exc.errno, exc.strerror, getattr(self.file, "name", "the console's output")) from None

    return _PipeConsole(**options)


class TerminalSink:
    """A rich Live view: active events, recent events, meters for the top classes,
    input level, real-time factor, overruns and the other counters.

    Chosen explicitly (``terminal``); it draws on *console* (default: stdout).
    The view is lines of styled segments, not tables or ``Text``: a table redraw
    cost ~3 ms of CPU, as much as the rest of ``listen``'s hop. Status updates
    redraw it at most every *min_redraw_s* seconds; events always do.
    """

    def __init__(self, labels: Sequence[str], *, console: Any = None, top_classes: int = 5, recent: int = 8,
                 min_redraw_s: float = 0.2) -> None:
        from rich.live import Live

        self.labels = tuple(labels)
        self.console = console if console is not None else pipe_console()
        self.top_classes = top_classes
        self.min_redraw_s = min_redraw_s
        self._live = Live(console=self.console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
        self._started = False
        self._drawn_at = -float("inf")
        self._label_width = max([len(label) for label in self.labels] + [len("recent")])
        # the theme's styles, looked up once: render() runs at every hop
        self._bold, self._bar, self._bar_back = (self.console.get_style(name) for name in ("bold", "bar.complete", "bar.back"))
        self._active: dict[str, Event] = {}
        self._recent: deque[Event] = deque(maxlen=recent)
        self._status: StreamStatus | None = None

    def emit(self, event: Event) -> None:
        if event.offset is None:
            self._active[event.label] = event
        else:
            self._active.pop(event.label, None)
            self._recent.appendleft(event)
        self._refresh()

    def update(self, status: StreamStatus) -> None:
        self._status = status
        if time.monotonic() - self._drawn_at >= self.min_redraw_s:
            self._refresh()

    def close(self) -> None:
        if self._started:
            self._live.update(self.render(), refresh=True)
            self._live.stop()
            if not self.console.is_terminal:  # rich ends a non-terminal Live without a newline
                self.console.line()
            self._started = False

    def _refresh(self) -> None:
        if not self._started:
            self._live.start()
            self._started = True
        self._live.update(self.render(), refresh=True)
        self._drawn_at = time.monotonic()

    def render(self) -> Any:
        """The view as a rich renderable."""
        from rich.control import strip_control_codes
        from rich.segment import Segment

        bold, bar, bar_back = self._bold, self._bar, self._bar_back
        width = self._label_width
        lines: list[list[Any]] = []
        status = self._status
        if status is not None:
            counters = "".join(f"  {name} {value}" for name, value in sorted(status.counters.items()))
            lines.append([Segment(f"t {status.time_s:8.2f} s  level {status.level_dbfs:6.1f} dBFS  "
                                  f"real-time factor {status.real_time_factor:.3f}  overruns {status.overruns}{counters}")])
            lines.append([Segment("scores", bold)])
            top = sorted(range(len(status.scores)), key=lambda i: -status.scores[i])[: self.top_classes]
            for i in top:
                mark = "*" if status.labels[i] in status.active else " "
                filled = round(_METER_WIDTH * min(1.0, max(0.0, status.scores[i])))
                lines.append([Segment(strip_control_codes(f"{mark} {status.labels[i]:<{width}} ")),
                              Segment("\u2501" * filled, bar),
                              Segment("\u2500" * (_METER_WIDTH - filled), bar_back),  # light: visible without colour
                              Segment(f" {status.scores[i]:.2f}")])
        lines.append([Segment(f"{'active':<{width + 2}} {'since (s)':>9}  {'confidence':>10}", bold)])
        for event in self._active.values():
            lines.append([Segment(strip_control_codes(
                f"  {event.label:<{width}} {event.onset:9.2f}  {event.confidence:10.2f}"))])
        lines.append([Segment(f"{'recent':<{width + 2}} {'onset (s)':>9}  {'offset (s)':>10}  {'confidence':>10}", bold)])
        for event in self._recent:
            lines.append([Segment(strip_control_codes(
                f"  {event.label:<{width}} {event.onset:9.2f}  {event.offset:10.2f}  {event.confidence:10.2f}"))])
        return _ViewLines(lines)


class _ViewLines:
    """Lines of styled rich segments, drawn as they are: no wrapping to work out.

    A styled ``Text`` of the same lines cost about twice the CPU per redraw
    (0.39 against 0.18 ms back to back; ``listen`` redraws at every hop), most
    of it rich working out where to wrap. Rich still crops each line to the
    terminal's width.
    """

    def __init__(self, lines: list[list[Any]]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        for index, line in enumerate(self.lines):
            if index:
                yield Segment.line()
            yield from line


def _open_terminal(target: str | None, *, labels: Sequence[str], file: str | None, append: bool = False) -> TerminalSink:
    if target is not None:
        raise _bad_spec(f"terminal:{target}", "'terminal' takes no argument")
    return TerminalSink(labels)


# -- MQTT ------------------------------------------------------------------------------------

MQTT_DEFAULT_PORT = 1883
MQTT_DEFAULT_TOPIC = "edge-sed/{label}/{kind}"
MQTT_PLACEHOLDERS = ("label", "kind")
MQTT_OPTIONS = ("qos", "spool", "client_id", "status")
#: What the ``status=`` topic holds (retained): Home Assistant's default availability payloads.
MQTT_ONLINE, MQTT_OFFLINE = "online", "offline"
MQTT_MAX_CLIENT_ID = 65535
_TOPIC_FORBIDDEN = str.maketrans({"/": "_", "+": "_", "#": "_"})


def _default_spool_dir(host: str, port: int) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "edge-sed" / "mqtt-spool" / f"{host}_{port}"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """An ``mqtt://`` sink spec, parsed (:func:`parse_mqtt_url`)."""

    host: str
    port: int = MQTT_DEFAULT_PORT
    topic: str = MQTT_DEFAULT_TOPIC
    qos: int = 1
    spool: str | None = None
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    #: A topic that says whether the detector is running (retained ``online``/``offline``; the
    #: broker sets ``offline`` itself when the connection dies: MQTT's last will).
    status: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise SinkError(f"MQTT sink needs a host, as in mqtt://localhost:1883/{MQTT_DEFAULT_TOPIC}")
        if not 0 < self.port < 65536:
            raise SinkError(f"MQTT port must be in 1..65535, got {self.port!r}")
        if self.qos not in (0, 1, 2):
            raise SinkError(f"MQTT qos must be 0, 1 or 2, got {self.qos!r}")
        if len(self.client_id.encode()) > MQTT_MAX_CLIENT_ID:  # an MQTT string's length field is 16 bits
            raise SinkError(f"MQTT client_id must be at most {MQTT_MAX_CLIENT_ID} bytes, got {len(self.client_id.encode())}")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.topic) if name is not None}
        except ValueError as exc:
            raise SinkError(f"bad MQTT topic template {self.topic!r} ({exc}); placeholders: {{label}}, {{kind}}") from None
        if self.status is not None and (not self.status or any(c in self.status for c in "+#{}")):
            raise SinkError(f"bad MQTT status topic {self.status!r}: it must be non-empty, without '+', '#' or placeholders")
        unknown = sorted(fields - set(MQTT_PLACEHOLDERS))
        if unknown or not self.topic or "+" in self.topic or "#" in self.topic:
            raise SinkError(
                f"bad MQTT topic template {self.topic!r}: it must be non-empty, without '+' or '#', "
                f"and its only placeholders are {{label}} and {{kind}}"
            )

    @property
    def spool_dir(self) -> Path:
        """Where unacknowledged events wait (``spool=``, else a per-broker folder in the user's cache)."""
        return Path(self.spool) if self.spool else _default_spool_dir(self.host, self.port)

    def topic_for(self, event: Event) -> str:
        """The topic *event* is published to (``/``, ``+``, ``#`` in labels become ``_``)."""
        return self.topic.format(label=event.label.translate(_TOPIC_FORBIDDEN), kind=event.kind)

    def to_url(self) -> str:
        """The spec string that :func:`parse_mqtt_url` reads back into these settings."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        query = {"qos": self.qos, "spool": self.spool, "client_id": self.client_id or None, "status": self.status}
        query_text = urlencode({key: value for key, value in query.items() if value is not None})
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{auth}{host}:{self.port}/{quote(self.topic, safe='/{}')}" + (f"?{query_text}" if query_text else "")


def parse_mqtt_url(url: str) -> MqttSettings:
    """Read ``mqtt://[user[:pass]@]host[:port][/topic/template][?qos=1&spool=DIR&client_id=ID&status=TOPIC]``.

    Raises
    ------
    SinkError
        For anything else, naming the part that is wrong.
    """
    form = "mqtt://host[:port]/topic/{label}?qos=1&spool=DIR&client_id=ID&status=TOPIC"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SinkError(f"bad MQTT sink {url!r} ({exc}); expected {form}") from None
    if parts.scheme != "mqtt" or not url.startswith("mqtt://"):
        raise SinkError(f"bad MQTT sink {url!r}; expected {form}")
    if parts.fragment or "#" in url:
        raise SinkError(f"bad MQTT sink {url!r}: '#' is a subscription wildcard, not a topic to publish to")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in MQTT_OPTIONS:
            raise SinkError(f"unknown MQTT option {key!r} in {url!r}; valid options: {', '.join(MQTT_OPTIONS)}")
        options[key] = value
    try:
        qos = int(options.get("qos", "1"))
    except ValueError:
        raise SinkError(f"MQTT qos must be 0, 1 or 2, got {options['qos']!r}") from None
    return MqttSettings(
        host=parts.hostname or "",
        port=MQTT_DEFAULT_PORT if port is None else port,
        topic=unquote(parts.path[1:]) or MQTT_DEFAULT_TOPIC,
        qos=qos,
        spool=options.get("spool") or None,
        client_id=options.get("client_id", ""),
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        status=options.get("status"),
    )


class _Spool:
    """A folder of messages not yet acknowledged: one fsync'd JSON file per message,
    removed when the broker acknowledges it. Survives crashes and restarts."""

    SUFFIX = ".json"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create the MQTT spool folder {str(folder)!r}: {exc.strerror or exc}") from None
        self._sequence = 0

    def add(self, topic: str, payload: str) -> Path:
        """Write one message durably and return its file."""
        self._sequence += 1
        path = self.folder / f"{time.time_ns():020d}-{os.getpid()}-{self._sequence:06d}{self.SUFFIX}"
        partial = path.with_suffix(".partial")
        with open(partial, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"topic": topic, "payload": payload}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return path

    def pending(self) -> list[Path]:
        """Spooled messages, oldest first."""
        return sorted(self.folder.glob(f"*{self.SUFFIX}"))

    @staticmethod
    def read(path: Path) -> tuple[str, str]:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record["topic"], record["payload"]

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)


class MqttSink:
    """Publishes events as JSON to an MQTT broker, at least once.

    Every event is first written to the spool (fsync'd), then published; its
    spool file is removed when the broker acknowledges it (PUBACK for QoS 1).
    paho-mqtt reconnects by itself and resends what was in flight; spooled
    messages that are not in flight (left by an earlier run, or refused by
    paho) are published on start and after every reconnect. :meth:`close` waits
    up to ``ack_timeout_s`` for acknowledgements; what is left stays spooled and
    is sent by the next run with the same spool.

    Delivery is at least once: a message whose acknowledgement was lost is sent
    again, and messages resent around a (re)connect may overtake newer ones.
    Each payload carries its own times, so consumers can order and deduplicate.

    With ``status=TOPIC`` the sink keeps a retained ``online`` there while it is
    connected, and ``offline`` once it closes; should the process die or the
    network fail instead, the broker publishes ``offline`` for it (the last will).
    """

    def __init__(self, settings: MqttSettings, *, ack_timeout_s: float = 3.0, reconnect_max_s: float = 2.0) -> None:
        mqtt = require("paho.mqtt.client", what="the MQTT sink", extra="mqtt")
        self.settings = settings
        self.ack_timeout_s = ack_timeout_s
        self.disconnects = 0
        self._closing = False
        self._mqtt = mqtt
        self._spool = _Spool(settings.spool_dir)
        self._lock = threading.Lock()
        self._in_flight: dict[int, Path | None] = {}  # mid -> spool file (None: a status message, not spooled)
        self._acked_early: set[int] = set()  # PUBACKs that beat publish() back to us
        self._reconnected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        client.reconnect_delay_set(min_delay=0.1, max_delay=reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        if settings.status is not None:
            client.will_set(settings.status, MQTT_OFFLINE, qos=1, retain=True)
        self._client = client
        client.connect_async(settings.host, settings.port)
        client.loop_start()
        self._replay()  # what an earlier run left: paho queues it until connected

    @property
    def spooled(self) -> list[Path]:
        """Messages not acknowledged yet."""
        return self._spool.pending()

    def emit(self, event: Event) -> None:
        topic, payload = self.settings.topic_for(event), json.dumps(event.to_dict(), ensure_ascii=False)
        self._publish(self._spool.add(topic, payload), topic, payload)
        self._replay_after_reconnect()

    def update(self, status: StreamStatus) -> None:
        self._replay_after_reconnect()

    def close(self) -> None:
        deadline = time.monotonic() + self.ack_timeout_s
        while time.monotonic() < deadline:
            self._replay_after_reconnect()
            with self._lock:
                waiting = bool(self._in_flight)
            if not waiting and not self._spool.pending():
                break
            time.sleep(0.02)
        if self.settings.status is not None and self._client.is_connected():  # a clean end sends no last will
            with contextlib.suppress(RuntimeError, ValueError):  # the connection went just now: the will says it
                self._publish_status(MQTT_OFFLINE).wait_for_publish(self.ack_timeout_s)
        self._closing = True  # the disconnect below is ours, not a lost broker
        self._client.disconnect()
        self._client.loop_stop()
        left = len(self._spool.pending())
        if left:
            logger.warning("%d MQTT message(s) not acknowledged stay spooled in %s; the next run sends them",
                           left, self._spool.folder)

    def _publish(self, path: Path, topic: str, payload: str) -> None:
        info = self._client.publish(topic, payload, qos=self.settings.qos)
        if info.rc not in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):
            logger.warning("MQTT publish refused (%s); the message stays spooled", self._mqtt.error_string(info.rc))
            return
        self._track(info.mid, path)

    def _publish_status(self, payload: str) -> Any:
        info = self._client.publish(self.settings.status, payload, qos=1, retain=True)
        self._track(info.mid, None)
        return info

    def _track(self, mid: int, path: Path | None) -> None:
        """Wait for *mid*'s acknowledgement, which removes *path* from the spool (None: nothing to
        remove), unless it has come already."""
        with self._lock:
            if mid in self._acked_early:
                self._acked_early.discard(mid)
                if path is not None:
                    self._spool.remove(path)
            else:
                self._in_flight[mid] = path

    def _replay(self) -> None:
        with self._lock:
            in_flight = set(self._in_flight.values())
        for path in self._spool.pending():
            if path not in in_flight:
                try:
                    topic, payload = self._spool.read(path)
                except (OSError, ValueError, KeyError) as exc:
                    logger.warning("unreadable MQTT spool file %s (%s); moved aside", path, exc)
                    path.rename(path.with_suffix(".bad"))
                    continue
                self._publish(path, topic, payload)

    def _replay_after_reconnect(self) -> None:
        if self._reconnected.is_set():
            self._reconnected.clear()
            self._replay()

    # paho's network thread calls these

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            logger.warning("MQTT broker %s:%d refused the connection: %s", self.settings.host, self.settings.port, reason_code)
            return
        logger.info("connected to MQTT broker %s:%d", self.settings.host, self.settings.port)
        if self.settings.status is not None:
            self._publish_status(MQTT_ONLINE)
        self._reconnected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.disconnects += 1
        if self.disconnects == 1 and not self._closing:
            logger.warning("lost the MQTT broker %s:%d (%s); events are spooled and resent on reconnect",
                           self.settings.host, self.settings.port, reason_code)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        with self._lock:
            if mid not in self._in_flight:
                self._acked_early.add(mid)
                return
            path = self._in_flight.pop(mid)
            if path is not None:
                self._spool.remove(path)


def _open_mqtt(target: str | None, *, labels: Sequence[str], file: str | None, append: bool = False) -> MqttSink:
    if target is None:
        raise _bad_spec("mqtt", "missing broker URL")
    return MqttSink(parse_mqtt_url(f"mqtt:{target}"))


register_sink_scheme("terminal", _open_terminal, "terminal", writes_stdout=lambda target: True)
register_sink_scheme("jsonl", _open_jsonl, "jsonl", "jsonl:PATH", writes_stdout=_is_stdout)
register_sink_scheme("tsv", _open_tsv, "tsv", "tsv:PATH", writes_stdout=_is_stdout)
register_sink_scheme("mqtt", _open_mqtt, "mqtt://host[:port]/topic/{label}?qos=1&spool=DIR&client_id=ID&status=TOPIC")

# Bridge frames to microcontrollers: serial://, udp://, tcp:// (pyserial is imported when one opens).
from firmware_bridge.sink import register_bridge_sinks  # noqa: E402

register_bridge_sinks()
