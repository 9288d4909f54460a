"""``edge-sed bench``: multiply-adds vs mAP, latency per backend, streaming cost.

Each command builds a config object, runs one library function from
:mod:`edge_sed.bench` under a progress bar, prints the table and says where
the JSON went.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional, Sequence

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edge_sed.bench.exports import PRECISIONS
from edge_sed.bench.latency import DEFAULT_LATENCY_MODELS
from edge_sed.bench.stream import STARTUP_S
from edge_sed.bench.results import DEFAULT_RESULTS_DIR, BenchResult, Column, ProgressCallback, format_table, parse_pair
from edge_sed.cli._app import app, command, console, err_console
from edge_sed.errors import EdgeSedError, require

bench_app = typer.Typer(
    help="Benchmarks: multiply-adds vs mAP, latency per backend, streaming cost.",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")

ModelsOpt = Annotated[str, typer.Option("--models", help="Comma-separated zoo model names (default: the whole zoo).")]
ResultsOpt = Annotated[Path, typer.Option("--results", help="Folder for the JSON results (and plot).")]
WorkDirOpt = Annotated[Path | None, typer.Option("--work-dir", help="Keep exported model files here (default: a temporary folder).")]
ShippedOpt = Annotated[bool, typer.Option("--shipped/--no-shipped", help="Include the shipped default model.")]
ModelFileOpt = Annotated[list[str] | None, typer.Option("--model-file", help="LABEL=PATH of an exported .onnx/.tflite model to include (repeatable).")]


@contextlib.contextmanager
def _progress_bar() -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr (when it is a terminal), as a ``progress(done, total, description)`` callback."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err_console, transient=True, disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def update(done: int, total: int, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        yield update


def _split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _pairs(items: list[str] | None, option: str, example: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_pair(item, option, example) for item in items or ())


@command("latency", target=bench_app, help="Per-window latency per model x backend x threads, in one run.")
def latency(
    models: Annotated[str, typer.Option("--models", help="Comma-separated zoo model names, or 'none' (only --model-file and the shipped model).")] = ",".join(DEFAULT_LATENCY_MODELS),
    backends: Annotated[str, typer.Option("--backends", help="Comma-separated backends.")] = ",".join(PRECISIONS),
    threads: Annotated[str, typer.Option("--threads", help="Comma-separated thread counts or 'all'.")] = "1,all",
    audio: Annotated[Path | None, typer.Option("--audio", help="Real recording cut into windows (default: the demo recording).")] = None,
    model_file: ModelFileOpt = None,
    shipped: ShippedOpt = True,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed windows per case.")] = 50,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed windows first.")] = 5,
    window_s: Annotated[float, typer.Option("--window-s", help="Window length in seconds.")] = 1.0,
    results: ResultsOpt = DEFAULT_RESULTS_DIR,
    work_dir: WorkDirOpt = None,
) -> None:
    from edge_sed.bench.latency import LATENCY_COLUMNS, LatencyConfig, parse_threads, run_latency_benchmark

    require("torch", what="bench latency", extra="train")  # zoo models, and every row's PANNs torch baseline
    zoo = () if models.strip() == "none" else _split(models)
    config = LatencyConfig(
        models=zoo, backends=_split(backends), threads=parse_threads(threads),
        audio=str(audio or ""), model_files=_pairs(model_file, "--model-file", "student=runs/student.int8.onnx"), include_shipped=shipped, window_s=window_s,
        warmup=warmup, repeats=repeats, results_dir=str(results), work_dir=str(work_dir or ""),
    )
    _measure(run_latency_benchmark, config, LATENCY_COLUMNS, results)


@command("macs-map", target=bench_app, help="Params, MACs, PANNs multiply-adds, mAP and accuracy per model and precision; PNG plot. Cost rows for --models (default: the whole zoo); mAP for --checkpoint and the shipped model.")
def macs_map(
    data: Annotated[Path | None, typer.Option("--data", help="Labelled clips: a folder with metadata.csv (filename,label,fold), such a CSV, or an AudioSet segment list (eval_segments.csv; audio as Y{YTID}.wav etc. beside it or in audio/; multi-label, scored whole); default: the shared ESC-50.")] = None,
    fold: Annotated[int | None, typer.Option("--fold", help="Evaluate on this fold (0: every clip); default: each checkpoint's held-out fold, else 5; AudioSet: 0.")] = None,
    models: ModelsOpt = "",
    precisions: Annotated[str, typer.Option("--precisions", help="Comma-separated precisions.")] = ",".join(PRECISIONS),
    checkpoint: Annotated[list[str] | None, typer.Option("--checkpoint", help="NAME=PATH of a trained checkpoint to export and score (repeatable).")] = None,
    shipped: ShippedOpt = True,
    max_clips: Annotated[int, typer.Option("--max-clips", help="Score at most this many clips, evenly spread (0: all).")] = 0,
    results: ResultsOpt = DEFAULT_RESULTS_DIR,
    work_dir: WorkDirOpt = None,
) -> None:
    require("torch", what="bench macs-map", extra="train")  # MACs are counted on the torch models
    from edge_sed.bench.macs_map import MACS_MAP_COLUMNS, MacsMapConfig, run_macs_map

    config = MacsMapConfig(
        data=str(data or ""), fold=fold, models=_split(models), precisions=_split(precisions),
        checkpoints=_pairs(checkpoint, "--checkpoint", "student=runs/student/best.pt"), include_shipped=shipped, max_clips=max_clips,
        results_dir=str(results), work_dir=str(work_dir or ""),
    )
    _measure(run_macs_map, config, MACS_MAP_COLUMNS, results)


@command("stream", target=bench_app, help="Share of one core and memory of the listen pipeline at hops 250/500 ms, with and without its terminal view; onset-to-event latency.")
def stream(
    model: Annotated[Path | None, typer.Option("--model", help="Model bundle (.onnx/.tflite); default: the shipped model.")] = None,
    latency_recording: Annotated[Path | None, typer.Option("--latency-recording", help="Recording with known onsets; default: the shipped demo.")] = None,
    onsets: Annotated[Path | None, typer.Option("--onsets", help="Its known events, DCASE TSV (onset, offset, event_label).")] = None,
    latency_set: Annotated[Path | None, typer.Option("--latency-set", help="Also measure onset latency in audio time over many events: a DCASE TSV with its recordings beside it (e.g. from 'edge-sed synth'), run as fast as possible.")] = None,
    long_s: Annotated[float, typer.Option("--long-s", help="Seconds of audio for the as-fast-as-possible runs.")] = 600.0,
    paced_s: Annotated[float, typer.Option("--paced-s", help="Seconds of audio for the real-time paced runs.")] = 30.0,
    device: Annotated[str, typer.Option("--device", help="Also run listen live on this input device (index or name) for --paced-s; play sound into it. The goal is then judged on it.")] = "",
    startup_s: Annotated[float, typer.Option("--startup-s", help="Seconds of audio at the start of each run counted as start-up, not running cost.")] = STARTUP_S,
    block: Annotated[Optional[list[float]], typer.Option("--block", help="Also measure the paced, view, latency and live runs with this many seconds of audio per wake-up (listen --block; the hop for one hop per wake-up; repeatable).")] = None,
    results: ResultsOpt = DEFAULT_RESULTS_DIR,
) -> None:
    from edge_sed.bench.stream import STREAM_COLUMNS, StreamBenchConfig, run_stream_benchmark

    config = StreamBenchConfig(
        model=str(model or ""), latency_recording=str(latency_recording or ""), onsets=str(onsets or ""),
        latency_set=str(latency_set or ""),
        long_s=long_s, paced_s=paced_s, device=device, startup_s=startup_s, blocks_s=tuple(block or ()),
        results_dir=str(results),
    )
    _measure(run_stream_benchmark, config, STREAM_COLUMNS, results)


def _measure(run: Callable[..., BenchResult], config: Any, columns: Sequence[Column], results: Path) -> None:
    """Make the results folder (a bad --results fails now, not after the run), run under a progress bar, report."""
    results.mkdir(parents=True, exist_ok=True)
    with _progress_bar() as progress:
        result = run(config, progress=progress)
    _report(result, columns)


def _report(result: BenchResult, columns: Sequence[Column]) -> None:
    """The table of measured rows, then failed rows, goals and the results path;
    :class:`EdgeSedError` (exit 1) when any case failed."""
    measured = [row for row in result.rows if not row.get("error")]
    console.print(format_table(measured, columns), markup=False, highlight=False, soft_wrap=True)
    for row in result.rows:
        if row.get("error"):
            what = " ".join(str(row[key]) for key in ("model", "mode", "backend", "precision", "threads") if row.get(key))
            console.print(f"failed: {what}: {row['error']}", markup=False, highlight=False, soft_wrap=True)
    for goal in result.goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal.met]
        value = "-" if goal.measured is None else f"{goal.measured:.3g}"
        console.print(f"goal: {goal.goal}: {value} (target {goal.target:g}): {verdict}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"results: {result.path}", markup=False, highlight=False, soft_wrap=True)
    if not measured:
        why = f"all {len(result.rows)} cases failed (above)" if result.rows else "no case to run; check --models, --backends and --model-file"
        raise EdgeSedError(f"nothing was measured: {why}")
    failed = len(result.rows) - len(measured)
    if failed:
        raise EdgeSedError(f"{failed} of {len(result.rows)} cases failed (above); the {len(measured)} measured are in {result.path}")
