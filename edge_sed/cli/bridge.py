"""``edge-sed bridge ...``: firmware bridge tools (see ``firmware_bridge``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_sed.cli._app import app, command, err_console

__all__ = ["bridge_app", "c_array"]

bridge_app = typer.Typer(help="Microcontroller bridge: the model as C arrays for TFLite Micro.", no_args_is_help=True)
app.add_typer(bridge_app, name="bridge")

ModelArg = Annotated[Path, typer.Argument(help="Model file: an int8 .tflite with its .tflite.json sidecar (edge-sed quantize --tflite).")]
OutDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Directory for model_data.h/.cc and model_settings.h.")]


@command("c-array", target=bridge_app, help="Write the model as model_data.{h,cc} plus model_settings.h for TFLite Micro.")
def c_array(model: ModelArg, output: OutDirOpt = Path(".")) -> None:
    """Model file + its bundle metadata -> C++ sources."""
    from edge_sed.bundle import read_bundle
    from firmware_bridge.c_array import write_c_array

    paths = write_c_array(model, read_bundle(model), output)
    err_console.print(f"wrote {', '.join(str(path) for path in paths)}", highlight=False)
