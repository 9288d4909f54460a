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


def empty_argument(args: list[str]) -> str | None:
    """What is wrong when *args* hold an empty argument (``-o ''``, ``--model=``, an unset
    shell variable); None when they hold none. Paths would read an empty one as '.'."""
    for i, arg in enumerate(args):
        if arg.startswith("--") and arg.find("=") == len(arg) - 1 > 2:
            return f"{arg[:-1]} was given an empty value"
        if arg == "":
            option = args[i - 1] if i and args[i - 1].startswith("-") else ""
            return f"{option} was given an empty value" if option else f"argument {i + 1} is empty"
    return None


def main() -> None:
    """Entry point of the ``edge-sed`` console script; click's own errors (an option value
    of the wrong type, an unknown option) and empty arguments are one line too, exit 2."""
    problem = empty_argument(sys.argv[1:])
    if problem:
        err_console.print(f"error: {problem}; give a value, or leave the argument out", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
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
