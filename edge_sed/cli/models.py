"""``edge-sed tag``: PANNs/edge-sed checkpoints on a recording (torch, imported lazily)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_sed.cli._app import command, console
from edge_sed.errors import require

__all__ = ["tag"]

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
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many labels to show.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    require("torch", what="edge-sed tag", extra="train")
    from edge_sed.models.checkpoint import load_checkpoint
    from edge_sed.models.tagging import tag_file

    result = tag_file(audio, load_checkpoint(checkpoint, architecture=model))
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(result)))
        return
    console.print(f"{result.file}", highlight=False)
    for label, score in result.top(top):
        console.print(f"  {score:6.3f}  {label}", highlight=False)
