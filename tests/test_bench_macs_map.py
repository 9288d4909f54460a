"""bench macs-map: costs from the zoo's MAC accounting; mAP and accuracy of a real
checkpoint on real labelled clips, the same for torch and its ONNX export."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from edge_sed.bench.macs_map import MacsMapConfig, run_macs_map
from edge_sed.bench.results import read_results
from edge_sed.cli import app
from edge_sed.errors import ConfigError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fixture_csv(tmp_path_factory, data_dir):
    """The ESC-50 fixture clips as a labelled CSV (label from the file name)."""
    path = tmp_path_factory.mktemp("labelled") / "clips.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "label"])
        for clip in sorted(data_dir.glob("esc50_*.flac")):
            writer.writerow([str(clip), clip.name.removeprefix("esc50_").rsplit("_", 1)[0]])
    return path


def test_missing_data_is_one_line_and_exit_1(tmp_path):
    result = CliRunner().invoke(app, ["bench", "macs-map", "--data", str(tmp_path / "nowhere"), "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: labelled data not found: {str(tmp_path / 'nowhere')!r} does not exist; give --data DIR "
        "(a folder with metadata.csv of filename,label,fold such as shared/data/esc50-subset, or such a CSV)"
    ]
    assert not (tmp_path / "macs_map.json").exists()


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="unknown precision 'onnx-fp16'; known: torch-fp32, onnx-fp32, onnx-int8, tflite-int8"):
        MacsMapConfig(precisions=("onnx-fp16",))


def test_costs_and_scores_of_a_checkpoint_in_two_precisions(tmp_path, fixture_csv):
    import torch

    from edge_sed.models.checkpoint import save_checkpoint
    from edge_sed.models.macs import model_cost
    from edge_sed.models.registry import build_model

    labels = [row["label"] for row in csv.DictReader(fixture_csv.open())]
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "tiny.pth", build_model("mobilenet_v2", num_classes=len(labels)), labels=labels)
    config = MacsMapConfig(
        data=str(fixture_csv), fold=0, models=("mobilenet_v2",), precisions=("torch-fp32", "onnx-fp32"),
        checkpoints=(("tiny", str(checkpoint)),), include_shipped=False, results_dir=str(tmp_path / "results"),
    )
    result = run_macs_map(config)

    zoo, torch_row, onnx_row = result.rows
    cost = model_cost("mobilenet_v2", seconds=10.0)
    assert (zoo["model"], zoo["precision"], zoo["params"], zoo["panns_multiply_adds"]) == (
        "mobilenet_v2", "", cost.params, cost.panns_multiply_adds)
    assert "mAP" not in zoo  # untrained: no accuracy is claimed
    assert [torch_row["precision"], onnx_row["precision"]] == ["torch-fp32", "onnx-fp32"]
    assert torch_row["eval_clips"] == onnx_row["eval_clips"] == len(labels)
    assert torch_row["eval_fold"] == 0 and torch_row["evaluated_on"] == f"{fixture_csv.parent.name} ({len(labels)} clips)"
    assert torch_row["macs_network"] == model_cost("mobilenet_v2", num_classes=len(labels)).macs_network
    assert 0.0 < torch_row["mAP"] <= 1.0 and 0.0 <= torch_row["accuracy"] <= 1.0
    assert onnx_row["mAP"] == pytest.approx(torch_row["mAP"], abs=1e-3)
    assert onnx_row["accuracy"] == torch_row["accuracy"]

    document = read_results(result.path)
    assert document["rows"] == result.rows
    assert document["settings"]["dataset"] == str(fixture_csv)
    assert (tmp_path / "results" / "macs_map.png").read_bytes()[:8] == PNG_SIGNATURE


def test_each_checkpoint_is_scored_on_the_fold_its_training_held_out(fixture_csv):
    from edge_sed.bench.macs_map import _held_out_fold

    data = str(fixture_csv)  # a labelled clip list, not an AudioSet segment list; no shared data needed
    trained_on_1_to_4 = {"train_config": {"data": {"kind": "esc50", "val_fold": 5}}}
    trained_on_2_to_5 = {"train_config": {"data": {"kind": "esc50", "val_fold": 1}}}
    other_table = {"train_config": {"data": {"kind": "csv", "val_fold": 4}}}  # its folds are not ESC-50's
    assert _held_out_fold(MacsMapConfig(data=data), trained_on_2_to_5) == 1
    assert _held_out_fold(MacsMapConfig(data=data), trained_on_1_to_4) == 5
    assert _held_out_fold(MacsMapConfig(data=data), other_table) == 5
    assert _held_out_fold(MacsMapConfig(data=data), {}) == 5  # e.g. an official PANNs checkpoint
    assert _held_out_fold(MacsMapConfig(data=data, fold=3), trained_on_2_to_5) == 3  # --fold wins


def test_an_audioset_segment_list_is_scored_whole_whatever_the_held_out_fold(tmp_path, data_dir):
    import shutil

    from bundles import build_audioset_bundle
    from test_quantize_audioset import write_segments

    from edge_sed.bench.macs_map import _held_out_fold, _scored_rows

    shutil.copy(next(data_dir.glob("esc50_dog_*.flac")), tmp_path / "Ydog_4gqARaE.wav")
    shutil.copy(next(data_dir.glob("esc50_siren_*.flac")), tmp_path / "siren0RWZTm.flac")
    segments = write_segments(tmp_path / "eval_segments.csv", [
        ("dog_4gqARaE", 0.0, ["/m/0bt9lr", "/m/068hy"]), ("siren0RWZTm", 0.0, ["/m/03kmc9"]), ("gone0000000", 0.0, ["/m/09x0r"])])
    config = MacsMapConfig(data=str(segments), include_shipped=False)
    fold = _held_out_fold(config, {"train_config": {"data": {"kind": "esc50", "val_fold": 1}}})
    assert fold == 0
    bundle = build_audioset_bundle(tmp_path / "tagger.onnx")
    (row,) = _scored_rows("tagger", {}, {"onnx-fp32": bundle}, config, fold)
    assert (row["eval_fold"], row["eval_clips"], row["evaluated_on"]) == (0, 2, "AudioSet eval_segments.csv (2 clips)")
    assert 0.0 <= row["mAP"] <= 1.0 and row["accuracy"] == 1.0


def test_a_fold_of_an_audioset_segment_list_is_refused_up_front(tmp_path):
    from test_quantize_audioset import write_segments

    segments = write_segments(tmp_path / "eval_segments.csv", [("dog_4gqARaE", 0.0, ["/m/0bt9lr"])])
    result = CliRunner().invoke(app, ["bench", "macs-map", "--data", str(segments), "--fold", "2", "--results", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: --fold 2 given but the AudioSet segment list {str(segments)!r} has no folds; leave --fold out (or give 0)"
    ]
