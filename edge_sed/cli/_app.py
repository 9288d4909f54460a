"""The typer application, its shared option aliases, and the one place where
library errors become one line on stderr and an exit code."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any, Callable, NoReturn, TypeVar

import typer
from rich.console import Console

from edge_sed.errors import EdgeSedError
from edge_sed.sinks import pipe_console

__all__ = [
    "app", "command", "handle_errors", "console", "err_console", "READER_GONE_EXIT", "silence_stdout",
    "STOP_SIGNALS", "stop_signals_interrupt", "end_by_signal",
]

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="edge-sed",
    help="Streaming, real-time sound event detection for edge devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# soft_wrap: lines are not broken at the width (80 columns when not a terminal), so paths stay whole
console = pipe_console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
#: Exit code when the reader of stdout went away (128 + SIGPIPE, as for a process SIGPIPE ends).
READER_GONE_EXIT = 141
#: Signals that stop a run as Ctrl-C does: a service manager's stop (SIGTERM), a closed terminal (SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_state = {"debug": False}


def _print_version(asked: bool) -> None:
    if asked:
        from edge_sed import __version__

        console.print(f"edge-sed {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Show the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress and details."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Streaming, real-time sound event detection for edge devices."""
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def handle_errors(fn: F) -> F:
    """Turn :class:`EdgeSedError` into ``error: <message>`` and its exit code, and an
    :class:`OSError` (a full disk, a missing or misplaced folder) into ``error: <reason>: '<path>'``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # ``edge-sed ... | head``: the reader has what it wanted; end quietly
            silence_stdout()
            raise typer.Exit(code=READER_GONE_EXIT) from None
        except EdgeSedError as exc:
            if _state["debug"]:
                raise
            err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None
        except OSError as exc:  # what the file system refuses: a full disk, a file where a folder must be, ...
            if _state["debug"]:
                raise
            where = f": {exc.filename!r}" if exc.filename else ""
            hint = " (a file stands where a folder is needed)" if isinstance(exc, (FileExistsError, NotADirectoryError)) else ""
            err_console.print(f"error: {exc.strerror or exc}{where}{hint}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", highlight=False)
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush meets no closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's capture)
        pass


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[list[int]]:
    """Inside the block, :data:`STOP_SIGNALS` raise :class:`KeyboardInterrupt` in the main thread,
    as Ctrl-C does, so that a run closes its open events and flushes its sinks. The list
    yielded receives the signal's number; a second stop signal during that clean-up is ignored."""
    received: list[int] = []

    def interrupt(number: int, frame: object) -> None:
        received.append(number)
        for stop in STOP_SIGNALS:
            signal.signal(stop, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in STOP_SIGNALS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def end_by_signal(number: int) -> NoReturn:
    """End the process by signal *number*'s default action, once everything is flushed: a service
    manager sees the stop it asked for (systemd counts SIGTERM and SIGHUP as clean), a shell 128 + number."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    raise SystemExit(128 + number)  # where the signal is blocked


def command(*args: Any, target: typer.Typer | None = None, **kwargs: Any) -> Callable[[F], F]:
    """``app.command`` (or *target*'s) with :func:`handle_errors` applied."""

    def decorate(fn: F) -> F:
        (target or app).command(*args, **kwargs)(handle_errors(fn))
        return fn

    return decorate
