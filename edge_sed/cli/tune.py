"""``edge-sed tune``: per-class tracking rules chosen on validation recordings, written into a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_sed.cli._app import command, console
from edge_sed.errors import require

__all__ = ["tune"]


@command("tune", help="Choose per-class thresholds, median lengths and min durations by event F1 on annotated validation recordings.")
def tune(
    model: Annotated[Path, typer.Argument(help="ONNX model bundle to tune (e.g. the int8 one).")],
    annotations: Annotated[Path, typer.Argument(help="DCASE TSV of validation recordings (files beside it), e.g. from 'edge-sed synth --split validation'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Bundle to write, with the tuned rules.")],
    hop: Annotated[Optional[float], typer.Option("--hop", help="Seconds between windows; default: the model's.")] = None,
    min_events: Annotated[int, typer.Option(help="Classes with fewer validation events keep the default rule.")] = 4,
) -> None:
    require("onnx", what="edge-sed tune", extra="train")  # it writes the tuned bundle
    from edge_sed.tuning import tune_bundle

    result = tune_bundle(model, annotations, output, hop_s=hop, min_events_per_class=min_events)
    console.print(
        f"validation event F1: {result.micro_f1:.3f} tuned ({result.macro_f1:.3f} macro), {result.base_micro_f1:.3f} with the base rule; "
        f"{len(result.tracker.per_class)} classes with their own rule -> {output}",
        highlight=False,
    )
