"""``edge-sed train teacher|distill CONFIG`` and ``edge-sed evaluate CHECKPOINT DATA``.

Torch is imported only inside the commands (through :mod:`edge_sed.train`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from edge_sed.cli._app import app, command, console
from edge_sed.errors import ConfigError, require

train_app = typer.Typer(help="Train teachers and distil students (torch; the \\[train] extra).", no_args_is_help=True)
app.add_typer(train_app, name="train")

ConfigArg = Annotated[Path, typer.Argument(help="Recipe file (TOML), e.g. configs/esc50_teacher_cpu.toml.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", help="Override a recipe value: section.key=value (repeatable).")
]
FoldOpt = Annotated[Optional[int], typer.Option("--fold", help="Validation fold (data.val_fold).")]
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", help="Epochs (train.epochs).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Output folder (train.out_dir).")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda or cuda:N (train.device).")]
ResumeOpt = Annotated[Optional[Path], typer.Option("--resume", help="Continue from this last.pt (train.resume).")]


class _Throughput(ProgressColumn):
    """Clips per second of the running task."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f} clips/s" if task.speed else "-- clips/s", style="progress.data.speed")


class RichProgress:
    """The :class:`edge_sed.train.loop.ProgressHook` drawn with rich: bar, throughput, ETA and loss."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            _Throughput(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]}"),
            console=console,
            transient=True,
        )
        self._task: Any = None

    def begin(self, description: str, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, loss="--")

    def advance(self, n_clips: int, loss: float | None = None) -> None:
        self._progress.update(self._task, advance=n_clips, loss=f"{loss:.4f}" if loss is not None else "--")

    def end(self, summary: str) -> None:
        self._progress.remove_task(self._task)
        self._progress.stop()
        console.print(summary, highlight=False)


def _recipe_overrides(sets: list[str] | None, **options: Any) -> list[str]:
    """``--set`` values, then the explicit options as ``section.key=value`` (explicit options win)."""
    named = {"val_fold": "data.val_fold", "epochs": "train.epochs", "out": "train.out_dir", "device": "train.device", "resume": "train.resume"}
    explicit = [f"{named[name]}={json.dumps(str(value)) if isinstance(value, (str, Path)) else value}" for name, value in options.items() if value is not None]
    return [*(sets or []), *explicit]


def _run_training(config: Path, sets: list[str] | None, *, distill: bool, **options: Any) -> None:
    require("torch", what="training", extra="train")
    from edge_sed.train.loop import load_recipe, train

    recipe = load_recipe(config, _recipe_overrides(sets, **options))
    if distill and recipe.distill is None:
        raise ConfigError(f"{str(config)!r} has no [distill] section (teacher = ...); use 'edge-sed train teacher' for it")
    if not distill and recipe.distill is not None:
        raise ConfigError(f"{str(config)!r} has a [distill] section; use 'edge-sed train distill' for it")
    result = train(recipe, progress=RichProgress())
    if result.best_metrics:  # torchrun: only rank 0 validates, and says which checkpoint is best
        best = ", ".join(f"{name} {value:.4f}" for name, value in result.best_metrics.items() if name.startswith("val_"))
        console.print(f"best checkpoint: {result.best_checkpoint} ({best})", highlight=False)


def _training_command(name: str, *, distill: bool, help: str) -> None:
    """Register ``edge-sed train <name>``; teacher and distill differ only in the section they require."""

    @command(name, target=train_app, help=help)
    def run(
        config: ConfigArg,
        set_: SetOpt = None,
        fold: FoldOpt = None,
        epochs: EpochsOpt = None,
        out: OutOpt = None,
        device: DeviceOpt = None,
        resume: ResumeOpt = None,
    ) -> None:
        _run_training(config, set_, distill=distill, val_fold=fold, epochs=epochs, out=out, device=device, resume=resume)


_training_command("teacher", distill=False, help="Train a teacher (or any model on labels alone) from a recipe.")
_training_command("distill", distill=True, help="Distil a student from a teacher's cached logits (\\[distill] section).")


@command("evaluate", help="Tagging metrics (mAP, AUC, d', accuracy) of a checkpoint on a dataset or fold.")
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint (.pt) written by edge-sed train.")],
    data: Annotated[Path, typer.Argument(help="Dataset folder (with metadata.csv) or PANNs HDF5 file.")],
    kind: Annotated[str, typer.Option("--kind", help="esc50, fsdd, librosa, csv, audioset_csv or audioset_hdf5.")] = "csv",
    fold: Annotated[Optional[int], typer.Option("--fold", help="Evaluate this fold only.")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    require("torch", what="evaluate", extra="train")
    from edge_sed.train.data import DataConfig
    from edge_sed.train.loop import evaluate_checkpoint

    if data.suffix in (".h5", ".hdf5"):
        kind = "audioset_hdf5"
    result = evaluate_checkpoint(checkpoint, DataConfig(kind=kind, root=str(data)), fold=fold, device=device)
    if as_json:
        finite = {name: None if isinstance(value, float) and not math.isfinite(value) else value for name, value in result.items()}
        console.print_json(json.dumps(finite, allow_nan=False))  # JSON has no Infinity: d' of a perfect class is null
        return
    for name, value in result.items():
        console.print(f"{name:>10}  {value:.4f}" if isinstance(value, float) else f"{name:>10}  {value}", highlight=False)
