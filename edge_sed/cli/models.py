"""``edge-sed models`` (the zoo with parameters and multiply-adds) and ``edge-sed tag``
(PANNs/edge-sed checkpoints on a recording). Torch is imported inside the commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from rich import box
from rich.table import Table

from edge_sed.cli._app import app, command, console, handle_errors
from edge_sed.config import MAX_WINDOW_S
from edge_sed.errors import ConfigError, require

__all__ = ["models_app", "list_models", "fetch", "tag"]

models_app = typer.Typer(help="The model zoo: 'edge-sed models' lists it with costs; 'edge-sed models fetch' downloads official checkpoints.")
app.add_typer(models_app, name="models")

CheckpointOpt = Annotated[Path, typer.Option("--checkpoint", "-c", help="A PANNs or edge-sed .pth checkpoint.")]
ModelNameOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Registry name; default: from the checkpoint.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@command("tag", help="Tag a recording with a PANNs or edge-sed checkpoint (clip-level scores).")
def tag(
    audio: Annotated[Path, typer.Argument(help="Audio file (any rate and channel count).")],
    checkpoint: CheckpointOpt,
    model: ModelNameOpt = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many labels to show (--json gives them all).")] = 5,
    as_json: JsonOpt = False,
) -> None:
    require("torch", what="edge-sed tag", extra="train")
    from edge_sed.models.checkpoint import load_checkpoint
    from edge_sed.models.tagging import tag_file

    result = tag_file(audio, load_checkpoint(checkpoint, architecture=model))
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(result)))
        return
    console.print(result.file, highlight=False, markup=False, soft_wrap=True)
    for label, score in result.top(top):
        console.print(f"  {score:6.3f}  {label}", highlight=False, markup=False, soft_wrap=True)


@models_app.callback(invoke_without_command=True)
@handle_errors
def list_models(
    ctx: typer.Context,
    seconds: Annotated[float, typer.Option("--seconds", "-s", help="Clip length for the MAC counts.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """List the zoo: trainable parameters, true MACs (network, front end) and PANNs' multiply-adds."""
    if ctx.invoked_subcommand is not None:
        return
    if not 0 < seconds <= MAX_WINDOW_S:
        raise ConfigError(f"--seconds must be between 0 and {MAX_WINDOW_S:g}, got {seconds!r}")
    require("torch", what="edge-sed models", extra="train")
    from edge_sed.models.macs import model_cost
    from edge_sed.models.registry import model_names

    costs = [model_cost(name, seconds=seconds) for name in model_names()]
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(cost) for cost in costs]))
        return
    table = Table(title=f"edge-sed model zoo: a {seconds:g} s clip, MACs in units of 1e9", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    rows = [(cost.name, f"{cost.params:,}", f"{cost.macs_network / 1e9:.3f}", f"{cost.macs_frontend / 1e9:.3f}",
             f"{cost.panns_multiply_adds / 1e9:.3f}") for cost in costs]
    for index, column in enumerate(("params", "macs_network", "macs_frontend", "panns_multiply_adds"), start=1):
        longest = max(len(row[index]) for row in rows)  # numbers stay whole in 80 columns; headers wrap
        table.add_column(column.replace("_", " "), justify="right", min_width=longest)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@command("fetch", target=models_app, help="Download an official PANNs checkpoint (Zenodo) and verify its checksum.")
def fetch(
    name: Annotated[str, typer.Argument(help="Registry name, e.g. mobilenet_v1, cnn14_16k.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write the .pth file.")] = Path("."),
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Expected SHA-256 (overrides the built-in one; the built-in MD5 of the official file is still checked).")] = None,
    base_url: Annotated[str, typer.Option("--base-url", help="Mirror of the Zenodo files folder.")] = "",
) -> None:
    from edge_sed.models.fetch import ZENODO_FILES_URL, fetch_checkpoint

    result = fetch_checkpoint(name, output_dir, base_url=base_url or ZENODO_FILES_URL, expected_sha256=sha256)
    checked = ", ".join(result.verified) or "no checksum known: compare it yourself"
    console.print(f"{result.path}  sha256 {result.sha256}  (verified: {checked})", highlight=False, markup=False, soft_wrap=True)
