"""A tiny latency run: real audio, a real model on torch and on ONNX Runtime, each
case in its own process. Numbers are checked for consistency, never for speed."""

from __future__ import annotations

import dataclasses

import pytest

from edge_sed.bench.latency import (
    LatencyCase,
    ModelUnderTest,
    add_speedups,
    plan_cases,
    run_cases,
    student_goal,
)
from edge_sed.config import PANNS_16K
from edge_sed.errors import ConfigError


def _check_row(row: dict, case: LatencyCase) -> None:
    assert "error" not in row, row.get("error")
    assert (row["model"], row["backend"], row["threads"], row["repeats"]) == (case.model, case.backend, 1, 3)
    assert 0 < row["median_ms"] <= row["p95_ms"]
    assert 0 < row["frontend_median_ms"]
    assert row["windows_per_s"] == pytest.approx(1e3 / row["median_ms"])
    assert row["real_time_factor"] == pytest.approx(row["median_ms"] / 1e3 / case.window_s)
    assert 0 < row["startup_rss_mib"] < row["peak_rss_mib"]


def test_tiny_latency_run_on_torch_and_onnx(dog_clip, test_bundle):
    torch_case = LatencyCase("mobilenet_v2", "torch-fp32", 1, str(dog_clip), window_s=0.5, warmup=1, repeats=3)
    onnx_case = LatencyCase("logreg", "onnx-fp32", 1, str(dog_clip), model_file=str(test_bundle), warmup=1, repeats=3)
    seen = []
    rows = run_cases([torch_case, onnx_case], progress=lambda done, total, what: seen.append((done, total)))

    assert seen == [(0, 2), (1, 2), (2, 2)]
    _check_row(rows[0], torch_case)
    _check_row(rows[1], onnx_case)
    assert rows[0]["sample_rate"] == 32000 and rows[1]["sample_rate"] == 16000
    # torch's import alone makes its process larger than ONNX Runtime's
    assert rows[0]["peak_rss_mib"] > rows[1]["peak_rss_mib"]


def test_failed_case_is_a_row_with_its_error(dog_clip, tmp_path):
    missing = LatencyCase("ghost", "onnx-int8", 1, str(dog_clip), model_file=str(tmp_path / "ghost.onnx"), repeats=1)
    (row,) = run_cases([missing])
    assert row["error"] == f"error: model file {str(tmp_path / 'ghost.onnx')!r} does not exist"


def test_plan_has_one_torch_baseline_per_layout_and_front_end_and_speedups_within_the_run():
    frontend_16k = dataclasses.asdict(PANNS_16K)
    models = [
        ModelUnderTest("mobilenet_v2_strided", "mobilenet_v2", {"onnx-int8": "s.onnx"}, strided=True),
        ModelUnderTest("mobilenet_v2_other", "mobilenet_v2", {"onnx-int8": "o.onnx"}, strided=True),
        ModelUnderTest("default", "mobilenet_v2", {"onnx-int8": "d.onnx"}, strided=True,
                       window_s=2.0, frontend=frontend_16k, num_classes=52),
    ]
    cases = plan_cases(models, backends=("torch-fp32", "onnx-int8"), threads=(1, 2), audio="a.flac", repeats=1)
    assert [(c.model, c.backend, c.threads, c.window_s) for c in cases] == [
        ("mobilenet_v2", "torch-fp32", 1, 1.0), ("mobilenet_v2", "torch-fp32", 2, 1.0),
        ("mobilenet_v2_strided", "onnx-int8", 1, 1.0), ("mobilenet_v2_strided", "onnx-int8", 2, 1.0),
        ("mobilenet_v2_other", "onnx-int8", 1, 1.0), ("mobilenet_v2_other", "onnx-int8", 2, 1.0),
        ("mobilenet_v2 as default", "torch-fp32", 1, 2.0), ("mobilenet_v2 as default", "torch-fp32", 2, 2.0),
        ("default", "onnx-int8", 1, 2.0), ("default", "onnx-int8", 2, 2.0),
    ]
    baseline = cases[6]
    assert (baseline.architecture, baseline.frontend, baseline.num_classes) == ("mobilenet_v2", frontend_16k, 52)
    medians = [30.0, 20.0, 1.0, 0.8, 1.5, 1.0, 40.0, 30.0, 1.0, 1.0]
    rows = add_speedups([{"model": c.model, "backend": c.backend, "threads": c.threads, "window_s": c.window_s,
                          "median_ms": median} for c, median in zip(cases, medians)], models)
    assert [row["speedup_vs_panns_torch"] for row in rows] == [1.0, 1.0, 30.0, 25.0, 20.0, 20.0, 1.0, 1.0, 40.0, 30.0]
    goal = student_goal(rows, models)  # 1 s windows only: "default" (2 s) is not a candidate
    assert goal.measured == 30.0 and goal.met is True
    assert "(mobilenet_v2_strided, onnx-int8)" in goal.goal


def test_speedup_over_the_teacher_compares_only_rows_timing_the_same_windows():
    models = [
        ModelUnderTest("cnn14", "cnn14", {}),
        ModelUnderTest("mobilenet_v2_strided", "mobilenet_v2", {"onnx-int8": "s.onnx"}, strided=True),
        ModelUnderTest("default", "mobilenet_v2", {"onnx-int8": "d.onnx"}, strided=True, window_s=2.0,
                       frontend=dataclasses.asdict(PANNS_16K), num_classes=52),
    ]
    rows = [
        {"model": model, "backend": backend, "threads": threads, "window_s": window_s, "sample_rate": rate, "median_ms": median}
        for model, backend, threads, window_s, rate, median in [
            ("cnn14", "torch-fp32", 1, 1.0, 32000, 150.0), ("cnn14", "torch-fp32", 2, 1.0, 32000, 80.0),
            ("mobilenet_v2", "torch-fp32", 1, 1.0, 32000, 12.0),
            ("mobilenet_v2_strided", "onnx-int8", 1, 1.0, 32000, 1.5), ("mobilenet_v2_strided", "onnx-int8", 2, 1.0, 32000, 2.0),
            ("default", "onnx-int8", 1, 2.0, 16000, 1.2),
        ]
    ]
    rows = add_speedups(rows, models)
    assert [row["speedup_vs_teacher_torch"] for row in rows] == [1.0, 1.0, 12.5, 100.0, 40.0, None]
    assert [row["speedup_vs_panns_torch"] for row in rows] == [1.0, 1.0, 1.0, 8.0, None, None]
    goal = student_goal(rows, models)  # judged on the model's own architecture, never on the teacher
    assert goal.measured == 8.0 and goal.met is False


def test_case_refuses_unknown_backend_and_missing_file():
    with pytest.raises(ConfigError, match="unknown backend 'onnx-fp16'; known: torch-fp32, onnx-fp32, onnx-int8, tflite-int8"):
        LatencyCase("m", "onnx-fp16", 1, "a.flac", model_file="m.onnx")
    with pytest.raises(ConfigError, match="onnx-int8 needs an exported model file for 'm'"):
        LatencyCase("m", "onnx-int8", 1, "a.flac")
