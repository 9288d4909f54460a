"""The ``edge-sed`` command line: a thin layer over the library.

Each command group lives in its own module and registers itself on
:data:`app` when imported here.
"""

from __future__ import annotations

from edge_sed.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``edge-sed`` console script."""
    app()
from edge_sed.cli import models as _models  # noqa: F401,E402  registers commands
from edge_sed.cli import stream as _stream  # noqa: F401,E402  registers commands
from edge_sed.cli import bridge as _bridge  # noqa: F401,E402  registers commands
from edge_sed.cli import quantize as _quantize  # noqa: F401,E402  registers commands
from edge_sed.cli import train as _train  # noqa: F401,E402  registers commands
from edge_sed.cli import bench as _bench  # noqa: F401,E402  registers commands
from edge_sed.cli import synth as _synth  # noqa: F401,E402  registers commands
from edge_sed.cli import tune as _tune  # noqa: F401,E402  registers commands
