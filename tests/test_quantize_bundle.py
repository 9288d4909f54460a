"""Model files with missing or contradictory metadata are refused with one clear line.

The models here are tiny torch-free ONNX graphs (mean over frames -> linear ->
sigmoid) made with ``onnx.helper``, run by the real ONNX Runtime.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from edge_sed.backends import OnnxBackend, TFLiteBackend, load_backend
from edge_sed.bundle import ModelBundle, sidecar_path
from edge_sed.cli import app
from edge_sed.config import PANNS_16K
from edge_sed.errors import MissingDependencyError, ModelError
from quantize.export import write_onnx_bundle

LABELS = ("dog", "rain", "siren")
BUNDLE = ModelBundle(name="tiny", labels=LABELS, frontend=PANNS_16K)  # 1 s window: 101 frames x 64 mels


def _graph(input_name: str = "logmel", input_shape: tuple = ("batch", 101, 64), n_scores: int = 3) -> onnx.ModelProto:
    weights = np.random.default_rng(0).normal(scale=0.01, size=(input_shape[-1], n_scores)).astype(np.float32)
    axes = [1] if len(input_shape) == 3 else []
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["pooled"], axes=axes, keepdims=0) if axes
        else helper.make_node("Identity", [input_name], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "W"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", n_scores])],
        [numpy_helper.from_array(weights, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _write(tmp_path: Path, bundle: ModelBundle | None, **graph: object) -> Path:
    path = tmp_path / "model.onnx"
    proto = _graph(**graph)  # type: ignore[arg-type]
    if bundle is None:
        onnx.save_model(proto, str(path))
    else:
        write_onnx_bundle(proto, bundle, path)
    return path


def _cli_error(path: Path) -> str:
    """Run ``edge-sed quantize`` on *path*: exit 1, one ``error:`` line, no traceback."""
    result = CliRunner().invoke(app, ["quantize", str(path), "-o", str(path.with_suffix(".int8.onnx")), "--calibration", str(path.parent)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_consistent_bundle_runs(tmp_path: Path) -> None:
    backend = load_backend(_write(tmp_path, BUNDLE))
    scores = backend(np.full((101, 64), -20.0, dtype=np.float32))
    assert backend.bundle == BUNDLE
    assert scores.shape == (3,) and np.all((scores > 0) & (scores < 1))


def test_missing_metadata_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, None)
    line = _cli_error(path)
    assert line == f"error: {str(path)!r} is an ONNX model without edge-sed metadata; export it with 'edge-sed export'"


def test_more_labels_than_scores_refused(tmp_path: Path) -> None:
    bundle = dataclasses.replace(BUNDLE, labels=(*LABELS, "bell"))
    with pytest.raises(ModelError, match=r"outputs 3 scores but its metadata lists 4 labels"):
        OnnxBackend(_write(tmp_path, bundle))


def test_mel_bins_contradiction_names_both_values(tmp_path: Path) -> None:
    bundle = dataclasses.replace(BUNDLE, frontend=dataclasses.replace(PANNS_16K, n_mels=32))
    path = _write(tmp_path, bundle)
    with pytest.raises(ModelError) as error:
        OnnxBackend(path)
    assert str(error.value) == (
        f"{str(path)!r}: graph input has 64 n_mels but its metadata implies 32 "
        "(window 1 s at 16000 Hz, n_mels 32); re-export the model"
    )
    assert _cli_error(path) == f"error: {error.value}"


def test_window_contradiction_refused(tmp_path: Path) -> None:
    bundle = dataclasses.replace(BUNDLE, stream=dataclasses.replace(BUNDLE.stream, window_s=2.0))
    with pytest.raises(ModelError, match=r"graph input has 101 frames but its metadata implies 201"):
        OnnxBackend(_write(tmp_path, bundle))


def test_input_kind_contradiction_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, BUNDLE, input_name="waveform", input_shape=("batch", 16000))
    with pytest.raises(ModelError, match=r"graph input is 'waveform' but its metadata says input 'logmel'"):
        OnnxBackend(path)


def test_already_int8_refused_by_quantize(tmp_path: Path) -> None:
    path = _write(tmp_path, dataclasses.replace(BUNDLE, precision="int8"))
    assert _cli_error(path) == f"error: {str(path)!r} is already int8; quantize the fp32 export"


def test_tflite_without_sidecar_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"TFL3")
    with pytest.raises(ModelError, match=r"has no edge-sed metadata \(expected 'model.tflite.json' beside it\); "
                                         r"make it with 'edge-sed quantize \.\.\. --tflite'$"):
        load_backend(path)


def test_tflite_without_runtime_names_the_extra(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"TFL3")
    sidecar_path(path).write_text(BUNDLE.to_json(), encoding="utf-8")
    with mock.patch.dict(sys.modules, {"ai_edge_litert": None, "ai_edge_litert.interpreter": None,
                                       "tflite_runtime": None, "tflite_runtime.interpreter": None}):
        with pytest.raises(MissingDependencyError) as error:
            TFLiteBackend(path)
    assert str(error.value) == (
        "TFLite model given but neither ai-edge-litert nor tflite-runtime is installed; "
        "running it needs the [tflite] extra: pip install 'edge-sed[tflite]'"
    )


def test_unknown_suffix_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match=r"unknown model suffix '.bin'; known: .onnx \(ONNX Runtime\), .tflite"):
        load_backend(path)


def test_tflite_needs_the_checkpoint(tmp_path: Path) -> None:
    path = _write(tmp_path, BUNDLE)
    result = CliRunner().invoke(app, ["quantize", str(path), "-o", str(tmp_path / "x.int8.onnx"), "--calibration", str(tmp_path), "--tflite"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == "error: --tflite converts from the torch checkpoint: add --checkpoint CHECKPOINT.pth"


def test_every_input_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    path = _write(tmp_path, BUNDLE)
    output = tmp_path / "out" / "x.int8.onnx"
    base = ["quantize", str(path), "-o", str(output), "--calibration", str(Path(__file__).parent / "data")]
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("filename,label,fold\na.wav,dog,1\nb.wav,dog,2\n")
    for args, message in [
        (["--max-windows", "0"], "error: need at least 1 calibration window, got 0"),
        (["--tflite", "--checkpoint", str(tmp_path / "nope.pt")], f"error: checkpoint '{tmp_path / 'nope.pt'}' does not exist"),
        (["--report", "--labelled", str(tmp_path / "nope.csv")],
         f"error: clip source '{tmp_path / 'nope.csv'}' does not exist; give a folder of audio or a .csv of clips"),
        (["--report", "--labelled", str(labelled), "--fold", "9"], f"error: '{labelled}' has no clips in fold 9; its folds: 1, 2"),
    ]:
        result = CliRunner().invoke(app, [*base, *args])
        assert result.exit_code == 1 and result.output.strip() == message, result.output
        assert not output.exists()
