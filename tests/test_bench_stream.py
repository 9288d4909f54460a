"""bench stream: the stream measurement runs through the library on a real tiny
bundle and real audio, and its rows and goal are consistent (no speed asserted)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner
from conftest import STREAM_BENCH_DATA, need_shared_data

from edge_sed.bench.results import read_results
from edge_sed.bench.stream import (SET_MODE, StreamBenchConfig, _audio_latencies, _Heard, _latencies, measure_run,
                                   read_onsets, run_stream_benchmark)
from edge_sed.errors import ConfigError
from edge_sed.events import Event
from edge_sed.cli import app


def test_stream_benchmark_rows_goal_and_file(tmp_path, test_bundle):
    need_shared_data(*STREAM_BENCH_DATA)
    from bundles import write_scene

    scene = write_scene(tmp_path / "scene.wav", [("dog", 1.0, 1.5)], 4.0)
    (tmp_path / "set.tsv").write_text("scene.wav\t1.0\t2.5\tdog\n")
    config = StreamBenchConfig(model=str(test_bundle), latency_recording=str(scene), placements=(("dog", 1.0, 1.5),),
                               latency_set=str(tmp_path / "set.tsv"), hops_s=(0.25,), blocks_s=(0.25, 0.5), long_s=5.0,
                               paced_s=1.0, startup_s=0.5, results_dir=str(tmp_path / "results"))
    result = run_stream_benchmark(config)

    fast, paced, view, latency, in_set, *one_hop = result.rows
    assert [(row["mode"], row["block_s"]) for row in result.rows] == [  # 0.5 s is the default: run once
        ("fast", 0.5), ("paced", 0.5), ("view", 0.5), ("latency", 0.5), ("latency-set", 0.5),  # two hops per wake-up
        ("paced", 0.25), ("view", 0.25), ("latency", 0.25), ("latency-set", 0.25)]
    assert all("error" not in row and row["hop_s"] == 0.25 for row in result.rows)
    assert fast["audio_s"] == pytest.approx(5.0, abs=0.01)
    assert paced["audio_s"] == pytest.approx(1.0, abs=0.01) and view["audio_s"] == pytest.approx(1.0, abs=0.01)
    assert in_set["detected"] == one_hop[3]["detected"] == "1/1" and in_set["recordings"] == 1
    assert 0 < one_hop[3]["median_latency_s"] <= in_set["median_latency_s"]  # a block ends with its last hop or later
    one_hop = one_hop[:3]
    for row in result.rows[:4] + one_hop:  # the whole run, and the running share after the first half second of audio
        assert row["cpu_s"] > 0 and row["core_share_whole"] == pytest.approx(row["cpu_s"] / row["audio_s"])
        assert 0.5 <= row["startup_s"] < 0.5 + row["block_s"] and 0 < row["startup_cpu_s"] < row["cpu_s"]
        running = (row["cpu_s"] - row["startup_cpu_s"]) / (row["audio_s"] - row["startup_s"])
        assert row["core_share"] == pytest.approx(running)
    assert all(0 < row["rss_before_run_mib"] <= row["peak_rss_mib"] for row in result.rows)
    assert latency["detected"] == one_hop[2]["detected"] == "1/1" and latency["median_latency_s"] > 0
    goal, goal_in_blocks = result.goals
    assert goal.measured == view["core_share"] and goal.target == 0.01  # listen as a user sees it: with its view
    assert "terminal view drawn, 0.5 s per wake-up (as by default)" in goal.goal
    assert goal_in_blocks.measured == one_hop[1]["core_share"] and "one hop per wake-up (--block 0.25)" in goal_in_blocks.goal
    assert read_results(result.path)["goals"] == [goal.to_dict(), goal_in_blocks.to_dict()]


def test_onset_latency_counts_from_the_onset_sample_s_arrival():
    fed = [(4000, 10.0), (8000, 10.25)]  # (samples fed so far, wall time): a block released as its last sample arrives
    onsets = [_Heard(None, "dog", 0.375, 10.9, 8000), _Heard(None, "dog", 9.0, 11.0, 8000)]  # the second is too far off
    (dog, rain) = _latencies(fed, onsets, 16000, [("dog", 0.3, 1.0), ("rain", 0.1, 1.0)])
    assert dog["detected"] and dog["latency_s"] == pytest.approx(10.9 - (10.25 - 3200 / 16000))
    assert not rain["detected"]


def test_read_onsets_from_a_dcase_tsv(tmp_path):
    tsv = tmp_path / "truth.tsv"
    tsv.write_text("filename\tonset\toffset\tevent_label\nrec.wav\t0.800\t2.480\tdog\nrec.wav\t3.5\t7.5\tspeech\n")
    assert read_onsets(tsv) == [("dog", 0.8, pytest.approx(1.68)), ("speech", 3.5, 4.0)]
    tsv.write_text("not a table of events\n")
    with pytest.raises(ConfigError, match=r"lists no events; give a TSV with onset, offset and event_label columns$"):
        read_onsets(tsv)


def test_cli_recording_without_onsets_is_one_line(tmp_path, test_bundle, dog_clip):
    result = CliRunner().invoke(app, ["bench", "stream", "--model", str(test_bundle), "--latency-recording",
                                      str(dog_clip), "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {str(dog_clip)!r} needs its known onsets: give --onsets TSV (onset, offset, event_label)"
    ]


def test_latency_over_a_set_is_audio_time_to_the_block_that_emitted_the_onset():
    onsets = [_Heard("/set/a.wav", "dog", 1.25, 0.0, 48000), _Heard("/set/b.wav", "dog", 0.5, 0.0, 16000),
              _Heard("/set/b.wav", "rain", 3.0, 0.0, 64000)]
    truth = [Event("dog", 1.0, 2.5, 1.0, file="a.wav"), Event("dog", 0.25, 1.0, 1.0, file="b.wav"),
             Event("rain", 0.5, 4.0, 1.0, file="b.wav"), Event("siren", 1.0, 2.0, 1.0, file="a.wav")]
    names = {"/set/a.wav": "a.wav", "/set/b.wav": "b.wav"}
    # dog in a: fed 3 s when its onset came, 2 s after the truth; dog in b: 0.75 s; rain's onset is 2.5 s off; no siren
    assert _audio_latencies(onsets, truth, names, 16000) == pytest.approx([2.0, 0.75])


def test_latency_set_run_over_real_recordings(tmp_path, test_bundle):
    from bundles import write_scene

    write_scene(tmp_path / "a.wav", [("dog", 1.0, 1.5)], 4.0)
    write_scene(tmp_path / "b.wav", [("siren", 0.5, 3.0)], 4.0)
    tsv = tmp_path / "annotations.tsv"
    tsv.write_text("filename\tonset\toffset\tevent_label\n"
                   "a.wav\t1.0\t2.5\tdog\nb.wav\t0.5\t3.5\tsiren\nb.wav\t0.5\t3.5\tnot_a_class_of_the_model\n")
    row = measure_run(str(test_bundle), str(tsv), SET_MODE, 0.25)
    assert row["recordings"] == 2 and row["audio_s"] == pytest.approx(8.0, abs=0.01) and row["windows"] > 0
    assert row["detected"] == "2/2"  # the unknown class is not counted
    assert all(0 < latency < 4.0 for latency in row["latencies_s"])
    assert row["median_latency_s"] == pytest.approx(float(np.median(row["latencies_s"])))
    assert row["median_latency_s"] <= row["p90_latency_s"]


def test_cli_latency_set_with_missing_recordings_is_one_line(tmp_path, test_bundle):
    tsv = tmp_path / "annotations.tsv"
    tsv.write_text("a.wav\t1.0\t2.5\tdog\nb.wav\t0.5\t3.5\tsiren\n")
    result = CliRunner().invoke(app, ["bench", "stream", "--model", str(test_bundle), "--latency-set", str(tsv),
                                      "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {str(tsv)!r} lists 'a.wav' and 1 more, not found beside it; keep the recordings in the TSV's folder "
        "(as edge-sed synth writes them)"
    ]
