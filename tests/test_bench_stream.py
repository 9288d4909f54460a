"""bench stream: the stream measurement runs through the library on a real tiny
bundle and real audio, and its rows and goal are consistent (no speed asserted)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edge_sed.bench.inputs import shared_data_dir
from edge_sed.bench.results import read_results
from edge_sed.bench.stream import StreamBenchConfig, read_onsets, run_stream_benchmark
from edge_sed.cli import app


def test_stream_benchmark_rows_goal_and_file(tmp_path, test_bundle):
    if not (shared_data_dir() / "esc50-subset" / "audio").is_dir():
        pytest.skip(f"needs the shared data at {shared_data_dir()} (EDGE_SED_DATA)")
    from bundles import write_scene

    scene = write_scene(tmp_path / "scene.wav", [("dog", 1.0, 1.5)], 4.0)
    config = StreamBenchConfig(model=str(test_bundle), latency_recording=str(scene), placements=(("dog", 1.0, 1.5),),
                               hops_s=(0.25,), long_s=5.0, paced_s=1.0, startup_s=0.5,
                               results_dir=str(tmp_path / "results"))
    result = run_stream_benchmark(config)

    fast, paced, view, latency = result.rows
    assert [row["mode"] for row in result.rows] == ["fast", "paced", "view", "latency"]
    assert all("error" not in row and row["hop_s"] == 0.25 for row in result.rows)
    assert fast["audio_s"] == pytest.approx(5.0, abs=0.01)
    assert paced["audio_s"] == pytest.approx(1.0, abs=0.01) and view["audio_s"] == pytest.approx(1.0, abs=0.01)
    for row in result.rows:  # the whole run, and the running share after the first half second of audio
        assert row["cpu_s"] > 0 and row["core_share_whole"] == pytest.approx(row["cpu_s"] / row["audio_s"])
        assert 0.5 <= row["startup_s"] < 0.5 + 4096 / 16000 and 0 < row["startup_cpu_s"] < row["cpu_s"]
        running = (row["cpu_s"] - row["startup_cpu_s"]) / (row["audio_s"] - row["startup_s"])
        assert row["core_share"] == pytest.approx(running)
    assert all(0 < row["rss_before_run_mib"] <= row["peak_rss_mib"] for row in result.rows)
    assert latency["detected"] == "1/1" and latency["median_latency_s"] > 0
    (goal,) = result.goals
    assert goal.measured == view["core_share"] and goal.target == 0.01  # listen as a user sees it: with its view
    assert "terminal view drawn" in goal.goal
    assert read_results(result.path)["goals"] == [goal.to_dict()]


def test_read_onsets_from_a_dcase_tsv(tmp_path):
    tsv = tmp_path / "truth.tsv"
    tsv.write_text("filename\tonset\toffset\tevent_label\nrec.wav\t0.800\t2.480\tdog\nrec.wav\t3.5\t7.5\tspeech\n")
    assert read_onsets(tsv) == [("dog", 0.8, pytest.approx(1.68)), ("speech", 3.5, 4.0)]


def test_cli_recording_without_onsets_is_one_line(tmp_path, test_bundle, dog_clip):
    result = CliRunner().invoke(app, ["bench", "stream", "--model", str(test_bundle), "--latency-recording",
                                      str(dog_clip), "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {str(dog_clip)!r} needs its known onsets: give --onsets TSV (onset, offset, event_label)"
    ]
