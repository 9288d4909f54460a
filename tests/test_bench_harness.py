"""The benchmark harness: result files, machine info, ratios, tables, timing, plot, CLI errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from edge_sed.bench.latency import parse_threads
from edge_sed.bench.machine import INT8_FLAGS, available_cores, int8_flags
from edge_sed.bench.results import (
    RESULTS_SCHEMA,
    Column,
    Goal,
    add_ratios,
    format_table,
    parse_pair,
    read_results,
    write_results,
)
from edge_sed.bench.timing import TimingStats, time_calls
from edge_sed.cli import app
from edge_sed.errors import ConfigError


def test_results_file_has_schema_machine_info_rows_and_goals(tmp_path):
    rows = [{"model": "a", "median_ms": 2.0}, {"model": "b", "median_ms": None}]
    goal = Goal("a at least 2x", 2.0, 2.5)
    path = write_results("latency", rows, settings={"repeats": 3}, goals=[goal], results_dir=tmp_path)

    document = read_results(path)
    assert path == tmp_path / "latency.json"
    assert document["schema"] == RESULTS_SCHEMA
    assert document["benchmark"] == "latency"
    assert document["rows"] == rows
    assert document["settings"] == {"repeats": 3}
    assert document["goals"] == [{"goal": "a at least 2x", "target": 2.0, "measured": 2.5, "met": True}]
    machine = document["machine"]
    assert machine["cpu_model"].strip()
    assert machine["logical_cores"] == os.cpu_count()
    assert machine["available_cores"] == available_cores() >= 1
    assert machine["libraries"]["numpy"] == np.__version__
    assert machine["python"].count(".") == 2
    assert machine["cpu_int8_flags"] is None or set(machine["cpu_int8_flags"]) <= set(INT8_FLAGS)


def test_int8_flags_come_from_the_cpuinfo_flags_line_on_x86_and_arm():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma avx512bw avx512_vnni sha_ni\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 asimddp\nCPU implementer\t: 0x41\n"
    assert int8_flags(x86) == ["avx2", "avx512bw", "avx512_vnni"]
    assert int8_flags(arm) == ["asimddp"]
    assert int8_flags("processor\t: 0\nflags\t\t: fpu sse2\n") == []
    assert int8_flags("") is None


def test_read_results_refuses_a_file_without_the_schema(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"rows": []}))
    with pytest.raises(ConfigError, match="not an edge-sed results file"):
        read_results(path)


def test_ratios_come_from_rows_of_the_same_run():
    rows = [
        {"model": "teacher", "backend": "torch-fp32", "median_ms": 30.0},
        {"model": "student", "backend": "onnx-int8", "median_ms": 1.5},
        {"model": "orphan", "backend": "onnx-int8", "median_ms": 1.0},
    ]
    by_model = {row["model"]: row for row in rows}
    out = add_ratios(
        rows, value="median_ms", ratio="speedup",
        baseline_of=lambda row: by_model["teacher"] if row["model"] != "orphan" else None,
    )
    assert [row["speedup"] for row in out] == [1.0, 20.0, None]
    share = add_ratios(rows, value="median_ms", ratio="share", baseline_of=lambda row: by_model["teacher"], inverse=True)
    assert share[1]["share"] == pytest.approx(0.05)


def test_goal_direction():
    assert Goal("fast", 25.0, 30.0).met is True
    assert Goal("fast", 25.0, 20.0).met is False
    assert Goal("cheap", 0.01, 0.004, higher_is_better=False).met is True
    assert Goal("fast", 25.0, None).met is None


def test_table_leaves_missing_values_blank_and_aligns_columns():
    table = format_table(
        [{"model": "cnn14", "mAP": 0.4312}, {"model": "mobilenet_v2", "mAP": None}],
        [Column("model", "model"), Column("mAP", "mAP", "{:.3f}")],
    )
    lines = table.splitlines()
    assert lines[0] == "| model        | mAP   |"
    assert lines[2] == "|        cnn14 | 0.431 |"
    assert lines[3] == "| mobilenet_v2 |       |"


def test_timing_summary_of_known_durations():
    stats = TimingStats.from_seconds(np.array([0.001, 0.002, 0.003, 0.004, 0.010]))
    assert stats.repeats == 5
    assert stats.median_ms == pytest.approx(3.0)
    assert stats.min_ms == pytest.approx(1.0)
    assert stats.max_ms == pytest.approx(10.0)
    assert stats.p95_ms == pytest.approx(8.8)


def test_time_calls_warms_up_then_times_each_call():
    calls = []
    stats = time_calls(calls.append, warmup=3, repeats=7)
    assert calls == [0, 1, 2, 0, 1, 2, 3, 4, 5, 6]
    assert stats.repeats == 7
    assert 0 <= stats.min_ms <= stats.median_ms <= stats.p95_ms <= stats.max_ms


@given(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=6), st.booleans())
def test_parse_threads_keeps_order_and_drops_duplicates(counts, with_all):
    text = ",".join([str(n) for n in counts] + (["all"] if with_all else []))
    expected = list(dict.fromkeys(counts + ([available_cores()] if with_all else [])))
    assert parse_threads(text) == tuple(expected)


@pytest.mark.parametrize("text", ["0", "-1", "1,two", "", "1,,2"])
def test_parse_threads_refuses_bad_counts(text):
    with pytest.raises(ConfigError, match="invalid thread count"):
        parse_threads(text)


def test_parse_pair():
    assert parse_pair("student = runs/s.pth", "--checkpoint") == ("student", "runs/s.pth")
    with pytest.raises(ConfigError, match=r"invalid --checkpoint 'runs/s.pth'; expected NAME=PATH"):
        parse_pair("runs/s.pth", "--checkpoint")
    result = CliRunner().invoke(app, ["bench", "latency", "--model-file", "runs/s.onnx"])
    assert result.exit_code == 1 and result.stderr.strip() == (
        "error: invalid --model-file 'runs/s.onnx'; expected NAME=PATH, e.g. --model-file student=runs/student.int8.onnx")


def test_cli_bad_threads_is_one_line_and_exit_1(tmp_path):
    result = CliRunner().invoke(app, ["bench", "latency", "--threads", "0", "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("error: invalid thread count '0'")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--window-s", "nan"], "error: need 0 < window_s <= 60, warmup >= 0 and repeats >= 1, got nan, 5, 50"),
    (["--models", "none", "--no-shipped"], "error: nothing was measured: no case to run; check --models, --backends and --model-file"),
])
def test_cli_nothing_to_measure_is_one_line_and_exit_1(tmp_path, args, message):
    result = CliRunner().invoke(app, ["bench", "latency", *args, "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [message]


def test_cli_unreadable_audio_fails_before_any_export(tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio\n")
    result = CliRunner().invoke(app, ["bench", "latency", "--audio", str(notes), "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"error: cannot read '{notes}' as audio")
    assert list(tmp_path.iterdir()) == [notes]


def test_calibration_clips_never_come_from_the_evaluated_fold(tmp_path):
    import csv

    from edge_sed.bench.exports import CALIBRATION_CLIPS_PER_CLASS, calibration_csv

    metadata = tmp_path / "metadata.csv"
    rows = [(f"audio/{fold}-{i}-{label}.flac", label, fold) for fold in (1, 2, 5) for label in ("dog", "rain") for i in range(3)]
    metadata.write_text("filename,label,fold\n" + "".join(f"{name},{label},{fold}\n" for name, label, fold in rows))
    kept = list(csv.DictReader(calibration_csv(metadata, tmp_path / "work", held_out_fold=1).open()))

    assert [row["label"] for row in kept] == ["dog"] * CALIBRATION_CLIPS_PER_CLASS + ["rain"] * CALIBRATION_CLIPS_PER_CLASS
    assert all("/2-" in row["filename"] and row["filename"].startswith(str(tmp_path)) for row in kept)


def test_int8_exports_without_calibration_clips_are_refused_before_any_work(tmp_path):
    from edge_sed.bench.exports import export_precisions

    with pytest.raises(ConfigError, match=r"^onnx-int8, tflite-int8 need calibration clips; give a folder or CSV"):
        export_precisions(tmp_path / "missing.pt", ["onnx-fp32", "onnx-int8", "tflite-int8"], tmp_path / "out", calibration=None)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["latency", "macs-map", "stream"])
def test_cli_results_folder_that_is_a_file_fails_before_the_run(tmp_path, command):
    taken = tmp_path / "results"
    taken.write_text("a file\n")
    result = CliRunner().invoke(app, ["bench", command, "--results", str(taken)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: File exists: '{taken}' (a file stands where a folder is needed)"


def test_a_run_in_which_some_cases_failed_exits_1_after_its_report(tmp_path, capsys):
    """``bench stream --device 99``: the rows measured are printed and kept, and the exit status says not all were."""
    import typer

    from edge_sed.bench.results import BenchResult
    from edge_sed.bench.stream import STREAM_COLUMNS
    from edge_sed.cli._app import handle_errors
    from edge_sed.cli.bench import _report

    rows = [{"mode": "fast", "hop_s": 0.25, "core_share": 0.005}, {"mode": "mic", "hop_s": 0.25, "error": "no input device 99"}]
    with pytest.raises(typer.Exit) as stopped:
        handle_errors(_report)(BenchResult(tmp_path / "stream.json", rows, []), STREAM_COLUMNS)
    assert stopped.value.exit_code == 1
    out, err = capsys.readouterr()
    assert "failed: mic: no input device 99" in out and "fast" in out
    assert err.strip() == f"error: 1 of 2 cases failed (above); the 1 measured are in {tmp_path / 'stream.json'}"
