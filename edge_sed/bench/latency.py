"""Per-window latency of one model on one backend, each case in a fresh process.

A case is (model, backend, threads). Backends:

``torch-fp32``
    The model as PANNs users run it: the PyTorch forward of the zoo model on a
    waveform, with PANNs' convolutional STFT front end (its frozen
    ``conv_real``/``conv_imag`` kernels), float32.
``onnx-fp32``, ``onnx-int8``, ``tflite-int8``
    An exported model file opened with :func:`edge_sed.backends.load_backend`,
    fed the numpy :class:`~edge_sed.frontend.LogMel` of each window (the
    front end is inside the timed call, as in the pipeline).

Each case runs in its own subprocess (``python -m edge_sed.bench.latency``),
so its peak resident memory is its own and one runtime's thread pools cannot
slow the next. All cases of one call run back to back, and speed-ups are
ratios between rows of that one run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edge_sed.audio import read_audio
from edge_sed.bench.child import child_main, run_child
from edge_sed.bench.exports import INT8_PRECISIONS, PRECISIONS, calibration_csv, check_precisions, export_precisions, random_checkpoint
from edge_sed.bench.inputs import ESC50_HELD_OUT_FOLD, SHIPPED_MODEL, default_audio, default_esc50_dir, real_windows
from edge_sed.bench.machine import available_cores
from edge_sed.bench.results import DEFAULT_RESULTS_DIR, BenchResult, Column, Goal, ProgressCallback, add_ratios, write_results
from edge_sed.bench.timing import current_rss_mib, peak_rss_mib, time_calls
from edge_sed.config import MAX_WINDOW_S, FrontendConfig, from_mapping
from edge_sed.errors import ConfigError, ModelError

__all__ = [
    "BACKENDS",
    "TORCH_BACKEND",
    "STUDENT_SPEEDUP_GOAL",
    "TEACHER",
    "LATENCY_COLUMNS",
    "LatencyCase",
    "ModelUnderTest",
    "plan_cases",
    "add_speedups",
    "student_goal",
    "parse_threads",
    "panns_layout",
    "LatencyConfig",
    "run_latency_benchmark",
    "measure_case",
    "run_cases",
]

log = logging.getLogger(__name__)

TORCH_BACKEND = "torch-fp32"
#: A backend is a precision run by its runtime: torch-fp32, onnx-fp32, onnx-int8, tflite-int8.
BACKENDS = PRECISIONS
#: The PANNs teacher the students are distilled from: the model a student replaces.
TEACHER = "cnn14"
#: Zoo models ``bench latency`` times by default: the teacher and the two strided students.
DEFAULT_LATENCY_MODELS = (TEACHER, "mobilenet_v1_strided", "mobilenet_v2_strided")
#: The issue's goal: the int8 strided student's speed-up over PANNs' torch fp32 forward (1 thread).
STUDENT_SPEEDUP_GOAL = 25.0
#: ... per window of this length.
GOAL_WINDOW_S = 1.0
#: Distinct real windows cycled through while timing.
N_DISTINCT_WINDOWS = 8

#: The table ``bench latency`` prints and the README shows.
LATENCY_COLUMNS = (
    Column("model", "model"),
    Column("backend", "backend"),
    Column("threads", "threads"),
    Column("window_s", "window s", "{:g}"),
    Column("median_ms", "median ms", "{:.2f}"),
    Column("p95_ms", "p95 ms", "{:.2f}"),
    Column("frontend_median_ms", "of which front end ms", "{:.2f}"),
    Column("windows_per_s", "windows/s", "{:.1f}"),
    Column("real_time_factor", "RTF", "{:.4f}"),
    Column("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
    Column("speedup_vs_panns_torch", "x PANNs torch", "{:.1f}"),
    Column("speedup_vs_teacher_torch", "x CNN14 torch", "{:.0f}"),
)



@dataclass(frozen=True, slots=True)
class LatencyCase:
    """One measurement: *model* on *backend* with *threads* threads.

    ``model_file`` is the exported file for ONNX/TFLite backends (its bundle
    sets the window). ``torch-fp32`` builds zoo model ``architecture``
    (default: *model*) randomly initialised, since weights do not change its
    speed, with *frontend* (``FrontendConfig`` fields; default: the entry's
    own) and *num_classes* outputs.
    """

    model: str
    backend: str
    threads: int
    audio: str
    model_file: str = ""
    architecture: str = ""
    frontend: dict[str, Any] | None = None
    num_classes: int = 527
    window_s: float = 1.0
    warmup: int = 5
    repeats: int = 50

    def __post_init__(self) -> None:
        check_precisions([self.backend], what="backend")
        if self.backend != TORCH_BACKEND and not self.model_file:
            raise ConfigError(f"{self.backend} needs an exported model file for {self.model!r}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads!r}")
        if self.window_s <= 0 or self.warmup < 0 or self.repeats < 1:
            raise ConfigError("need window_s > 0, warmup >= 0 and repeats >= 1")


@dataclass(frozen=True, slots=True)
class _Forward:
    """What one case times: the whole per-window call, and its front end alone."""

    window: Callable[[np.ndarray], object]
    frontend_only: Callable[[np.ndarray], object]
    config: FrontendConfig
    window_s: float


def _panns_torch_forward(case: LatencyCase) -> _Forward:
    """The PANNs-style forward: conv-STFT front end + network, fp32, no grad."""
    import torch
    import torch.nn.functional as F

    from edge_sed.models.registry import build_model

    torch.set_num_threads(case.threads)
    frontend = from_mapping(FrontendConfig, case.frontend, where="frontend") if case.frontend else None
    model = build_model(case.architecture or case.model, num_classes=case.num_classes, frontend=frontend).eval()
    spectrogram = model.spectrogram_extractor
    pad = spectrogram.n_fft // 2

    @torch.inference_mode()
    def logmel(window: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(window)[None, None, :]
        x = F.pad(x, (pad, pad), mode="reflect")
        real = F.conv1d(x, spectrogram.stft.conv_real.weight, stride=spectrogram.hop_length)
        imag = F.conv1d(x, spectrogram.stft.conv_imag.weight, stride=spectrogram.hop_length)
        return model.logmel_extractor((real**2 + imag**2).transpose(1, 2))

    @torch.inference_mode()
    def forward(window: np.ndarray) -> object:
        return model.forward_logmel(logmel(window))["clipwise_output"]

    return _Forward(forward, logmel, model.frontend_config, case.window_s)


def _file_backend_forward(case: LatencyCase) -> _Forward:
    """Numpy log-mel + an exported model through :func:`load_backend`."""
    from edge_sed.backends import load_backend
    from edge_sed.frontend import LogMel

    backend = load_backend(case.model_file, threads=case.threads)
    bundle = backend.bundle
    if bundle.input == "waveform":  # the front end is inside the graph
        return _Forward(backend, lambda window: None, bundle.frontend, bundle.stream.window_s)
    logmel = LogMel(bundle.frontend)

    def forward(window: np.ndarray) -> object:
        return backend(logmel(window))

    return _Forward(forward, logmel, bundle.frontend, bundle.stream.window_s)


def measure_case(case: LatencyCase) -> dict[str, Any]:
    """Time one case in this process; return its result row.

    Row keys: the case's fields, ``median_ms``, ``p95_ms``, ``mean_ms``,
    ``frontend_median_ms`` (the log-mel front end alone: PANNs' conv STFT for
    torch, numpy :class:`~edge_sed.frontend.LogMel` for file backends),
    ``windows_per_s``, ``real_time_factor`` (processing time / audio time),
    ``sample_rate`` and ``window_s`` (an exported model's own window),
    ``startup_rss_mib`` (after imports, before the model) and
    ``peak_rss_mib`` (the whole process).
    """
    startup_rss = current_rss_mib()
    timed = _panns_torch_forward(case) if case.backend == TORCH_BACKEND else _file_backend_forward(case)
    windows = real_windows(case.audio, sample_rate=timed.config.sample_rate, window_s=timed.window_s,
                           count=N_DISTINCT_WINDOWS)
    stats = time_calls(lambda i: timed.window(windows[i % len(windows)]), warmup=case.warmup, repeats=case.repeats)
    frontend = time_calls(lambda i: timed.frontend_only(windows[i % len(windows)]), warmup=case.warmup,
                          repeats=case.repeats)
    median_s = stats.median_ms / 1e3
    return {
        **asdict(case),
        "window_s": timed.window_s,
        "sample_rate": timed.config.sample_rate,
        "median_ms": stats.median_ms,
        "p95_ms": stats.p95_ms,
        "mean_ms": stats.mean_ms,
        "frontend_median_ms": frontend.median_ms,
        "windows_per_s": 1.0 / median_s,
        "real_time_factor": median_s / timed.window_s,
        "startup_rss_mib": startup_rss,
        "peak_rss_mib": peak_rss_mib(),
    }


def _run_in_subprocess(case: LatencyCase) -> dict[str, Any]:
    row = run_child("edge_sed.bench.latency", asdict(case), threads=case.threads)
    if "error" in row:
        log.warning("%s / %s / %d threads failed: %s", case.model, case.backend, case.threads, row["error"])
        return {**asdict(case), **row}
    return row


def run_cases(cases: Sequence[LatencyCase], *, progress: ProgressCallback | None = None) -> list[dict[str, Any]]:
    """Measure each case in a fresh subprocess, one after another.

    A case that fails (a runtime missing, an export refused) becomes a row with
    an ``error`` message, so the other rows of the run still count.
    """
    rows = []
    for done, case in enumerate(cases):
        if progress is not None:
            progress(done, len(cases), f"{case.model} {case.backend} x{case.threads}")
        rows.append(_run_in_subprocess(case))
    if progress is not None:
        progress(len(cases), len(cases), "done")
    return rows


@dataclass(frozen=True, slots=True)
class ModelUnderTest:
    """A model to time: its label, one file per file backend, and its torch baseline.

    ``torch-fp32`` runs ``panns_layout``, the PANNs layout of the architecture
    (a strided student's twin computes the same function), with the model's
    own *frontend*, *num_classes* and *window_s* (``frontend=None``: the zoo
    entry's front end).
    """

    label: str
    panns_layout: str
    files: dict[str, str]
    strided: bool = False
    window_s: float = 1.0
    frontend: dict[str, Any] | None = None
    num_classes: int = 527

    @property
    def baseline(self) -> str:
        """The label of its torch-fp32 row (shared by zoo models of one layout)."""
        return self.panns_layout if self.frontend is None else f"{self.panns_layout} as {self.label}"


def plan_cases(
    models: Sequence[ModelUnderTest],
    *,
    backends: Sequence[str],
    threads: Sequence[int],
    audio: str | Path,
    warmup: int = 5,
    repeats: int = 50,
) -> list[LatencyCase]:
    """Every (model, backend, threads) case once; one torch case per baseline."""
    cases: dict[tuple[str, str, int], LatencyCase] = {}
    common = {"audio": str(audio), "warmup": warmup, "repeats": repeats}
    for model in models:
        for backend in backends:
            for n in threads:
                if backend == TORCH_BACKEND:
                    cases.setdefault((model.baseline, backend, n), LatencyCase(
                        model.baseline, backend, n, architecture=model.panns_layout, frontend=model.frontend,
                        num_classes=model.num_classes, window_s=model.window_s, **common,
                    ))
                elif backend in model.files:
                    cases[model.label, backend, n] = LatencyCase(
                        model.label, backend, n, model_file=str(model.files[backend]), window_s=model.window_s, **common
                    )
    return list(cases.values())


def add_speedups(rows: Sequence[dict[str, Any]], models: Sequence[ModelUnderTest]) -> list[dict[str, Any]]:
    """Two speed-ups over torch fp32 rows of this run only, each that row's median over this row's:

    ``speedup_vs_panns_torch``
        over the model's own PANNs-layout torch row (same front end, window and threads);
    ``speedup_vs_teacher_torch``
        over :data:`TEACHER`'s torch row of the same threads, window and sample rate (None
        where the run has none): what moving from the teacher to this row buys.
    """
    baseline_of_label = {model.label: model.baseline for model in models}
    torch_rows = {(row["model"], row["threads"]): row for row in rows if row["backend"] == TORCH_BACKEND}
    teacher_rows = {_input_key(row): row for row in rows if row["backend"] == TORCH_BACKEND and row["model"] == TEACHER}

    def baseline(row: dict[str, Any]) -> dict[str, Any] | None:
        return torch_rows.get((baseline_of_label.get(row["model"], row["model"]), row["threads"]))

    rows = add_ratios(rows, value="median_ms", ratio="speedup_vs_panns_torch", baseline_of=baseline)
    return add_ratios(rows, value="median_ms", ratio="speedup_vs_teacher_torch",
                      baseline_of=lambda row: teacher_rows.get(_input_key(row)))


def _input_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """Rows with equal keys time the same work: the same threads on the same windows."""
    return row["threads"], row.get("window_s"), row.get("sample_rate")


def student_goal(rows: Sequence[dict[str, Any]], models: Sequence[ModelUnderTest]) -> Goal:
    """The issue's goal: an int8 strided student >= 25x the PANNs torch fp32 forward, one thread."""
    strided = {model.label for model in models if model.strided}
    candidates = [
        row for row in rows
        if row["model"] in strided and row["backend"] in INT8_PRECISIONS and row["threads"] == 1
        and row.get("window_s") == GOAL_WINDOW_S and row.get("speedup_vs_panns_torch") is not None
    ]
    best = max(candidates, key=lambda row: row["speedup_vs_panns_torch"], default=None)
    name = "int8 strided student speed-up over the PANNs-style torch fp32 forward, 1 s window, 1 thread"
    if best is None:
        return Goal(name, STUDENT_SPEEDUP_GOAL, None)
    return Goal(f"{name} ({best['model']}, {best['backend']})", STUDENT_SPEEDUP_GOAL, best["speedup_vs_panns_torch"])


def parse_threads(text: str) -> tuple[int, ...]:
    """``"1,all"`` -> ``(1, <available cores>)``: comma-separated counts or ``all``, duplicates dropped."""
    counts: list[int] = []
    for item in (part.strip().lower() for part in text.split(",")):
        if item == "all":
            count = available_cores()
        elif item.isdigit() and int(item) > 0:
            count = int(item)
        else:
            raise ConfigError(f"invalid thread count {item!r} in {text!r}; use positive integers or 'all', e.g. '1,all'")
        if count not in counts:
            counts.append(count)
    return tuple(counts)


def panns_layout(name: str) -> str:
    """The PANNs-layout twin of zoo model *name* (itself unless it is a strided variant)."""
    from edge_sed.models.registry import MODELS, get_spec

    spec = get_spec(name)
    if not spec.strided:
        return name
    for other in MODELS.values():
        if other.table == spec.table and not other.strided and other.framewise == spec.framewise:
            return other.name
    raise ModelError(f"zoo model {name!r} has no PANNs-layout twin to compare with")


def _deploys_strided(name: str) -> bool:
    """Whether the exported model of *name* runs the strided layout (as quantize deploys it)."""
    from edge_sed.models.registry import build_model, get_spec

    if get_spec(name).strided:
        return True
    from quantize.export import deployable_model

    return bool(deployable_model(build_model(name)).strided)


@dataclass(frozen=True, slots=True)
class LatencyConfig:
    """What ``bench latency`` measures."""

    models: tuple[str, ...] = DEFAULT_LATENCY_MODELS
    backends: tuple[str, ...] = BACKENDS
    threads: tuple[int, ...] = (1,)
    audio: str = ""
    model_files: tuple[tuple[str, str], ...] = ()  # (label, exported file) measured as they are
    include_shipped: bool = True  # add the shipped default model when it is installed
    window_s: float = 1.0
    warmup: int = 5
    repeats: int = 50
    results_dir: str = str(DEFAULT_RESULTS_DIR)
    work_dir: str = ""

    def __post_init__(self) -> None:
        check_precisions(self.backends, what="backend")
        if not self.threads or min(self.threads) < 1:
            raise ConfigError(f"threads must be positive counts, got {self.threads!r}")
        if not 0 < self.window_s <= MAX_WINDOW_S or self.warmup < 0 or self.repeats < 1:
            raise ConfigError(f"need 0 < window_s <= {MAX_WINDOW_S:g}, warmup >= 0 and repeats >= 1, "
                              f"got {self.window_s!r}, {self.warmup!r}, {self.repeats!r}")


def _calibration_source(audio: str, work_dir: Path) -> Path:
    """ESC-50's training folds when present (never the held-out fold), else the audio's own folder."""
    metadata = default_esc50_dir() / "metadata.csv"
    if metadata.is_file():
        return calibration_csv(metadata, work_dir, held_out_fold=ESC50_HELD_OUT_FOLD)
    return Path(audio).parent


def _file_model(label: str, path: str, window_s: float) -> ModelUnderTest:
    """An exported file measured as it is; its torch baseline has its front end, classes and window
    (shared with the zoo models' baseline when those equal the zoo entry's)."""
    from edge_sed.bundle import read_bundle
    from edge_sed.models.registry import AUDIOSET_CLASSES, get_spec

    bundle = read_bundle(path)
    suffix = Path(path).suffix
    backend = {".onnx": f"onnx-{bundle.precision}", ".tflite": f"tflite-{bundle.precision}"}.get(suffix, "")
    if backend not in BACKENDS:
        raise ConfigError(f"{path!r}: cannot time a {bundle.precision} {suffix} model; backends: {', '.join(BACKENDS)}")
    if not bundle.architecture:
        raise ModelError(f"{path!r} does not name its architecture in its metadata; re-export it")
    as_zoo = (bundle.frontend, len(bundle.labels), bundle.stream.window_s) == (
        get_spec(bundle.architecture).frontend, AUDIOSET_CLASSES, window_s)
    return ModelUnderTest(
        label, panns_layout(bundle.architecture), {backend: path}, _deploys_strided(bundle.architecture),
        window_s=bundle.stream.window_s, frontend=None if as_zoo else dataclasses.asdict(bundle.frontend),
        num_classes=len(bundle.labels),
    )


def run_latency_benchmark(config: LatencyConfig, *, progress: ProgressCallback | None = None) -> BenchResult:
    """Export every model to the file backends, time every case, write ``latency.json``."""
    with contextlib.ExitStack() as stack:
        work_dir = Path(config.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-sed-bench-")))
        audio = config.audio or str(default_audio())
        read_audio(audio)  # an unreadable recording fails here, in one line, not in every case
        given = [_file_model(label, path, config.window_s) for label, path in config.model_files]
        for model in given:
            left_out = [backend for backend in model.files if backend not in config.backends]
            if left_out:
                raise ConfigError(f"--model-file {model.label}= runs on {left_out[0]}, which --backends leaves out; add it to --backends")
        file_backends = [backend for backend in config.backends if backend != TORCH_BACKEND]
        models, export_errors = [], {}
        calibration = _calibration_source(audio, work_dir) if file_backends else None
        for index, name in enumerate(config.models):
            if progress is not None:
                progress(index, len(config.models), f"exporting {name}")
            files = {}
            if file_backends:
                exported = export_precisions(random_checkpoint(name, work_dir), file_backends, work_dir,
                                             calibration=calibration, window_s=config.window_s)
                files = {precision: str(path) for precision, path in exported.files.items()}
                export_errors[name] = exported.errors
            models.append(ModelUnderTest(name, panns_layout(name), files, _deploys_strided(name), window_s=config.window_s))
        models += given
        if config.include_shipped and SHIPPED_MODEL.is_file():
            models.append(_file_model("default", str(SHIPPED_MODEL), config.window_s))
        cases = plan_cases(models, backends=config.backends, threads=config.threads, audio=audio,
                           warmup=config.warmup, repeats=config.repeats)
        rows = add_speedups(run_cases(cases, progress=progress), models)
    rows += [
        {"model": name, "backend": backend, "threads": None, "error": message}
        for name, errors in export_errors.items() for backend, message in errors.items()
    ]
    goals = [student_goal(rows, models)]
    settings = {
        **{key: value for key, value in dataclasses.asdict(config).items() if key not in ("results_dir", "work_dir")},
        "audio": audio,
        "baseline": "torch-fp32: PANNs-layout PyTorch forward with the convolutional STFT front end",
        "models_under_test": [dataclasses.asdict(model) for model in models],
    }
    path = write_results("latency", rows, settings=settings, goals=goals, results_dir=config.results_dir)
    return BenchResult(path, rows, goals)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:], lambda spec: measure_case(LatencyCase(**spec))))
