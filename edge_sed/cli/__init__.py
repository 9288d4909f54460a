"""The ``edge-sed`` command line: a thin layer over the library.

Each command group lives in its own module and registers itself on
:data:`app` when imported here.
"""

from __future__ import annotations

import sys

import typer

from edge_sed.cli._app import app, err_console

__all__ = ["app", "main"]

try:  # typer 0.2x carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:
    from click import exceptions as _click_errors

#: click's "no arguments: show the help" signal (click >= 8.2), which is no error.
_SHOW_HELP = getattr(_click_errors, "NoArgsIsHelpError", ())


def main() -> None:
    """Entry point of the ``edge-sed`` console script; click's own errors (an option value
    of the wrong type, an unknown option) are one line too, exit 2."""
    try:
        code = app(prog_name="edge-sed", standalone_mode=False)
    except _SHOW_HELP as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except _click_errors.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err_console.print(f"error: {exc.format_message()}{hint}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-C while click itself was parsing
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


from edge_sed.cli import models as _models  # noqa: F401,E402  registers commands
from edge_sed.cli import stream as _stream  # noqa: F401,E402  registers commands
from edge_sed.cli import bridge as _bridge  # noqa: F401,E402  registers commands
from edge_sed.cli import quantize as _quantize  # noqa: F401,E402  registers commands
from edge_sed.cli import train as _train  # noqa: F401,E402  registers commands
from edge_sed.cli import bench as _bench  # noqa: F401,E402  registers commands
from edge_sed.cli import synth as _synth  # noqa: F401,E402  registers commands
from edge_sed.cli import tune as _tune  # noqa: F401,E402  registers commands
