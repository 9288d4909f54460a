"""Config objects and the model bundle metadata."""

from __future__ import annotations

import pytest

from edge_sed.bundle import ModelBundle, read_bundle
from edge_sed.config import (
    PANNS_16K,
    ClassRule,
    FrontendConfig,
    StreamConfig,
    TrackerConfig,
    from_mapping,
    resolve,
)
from edge_sed.errors import ConfigError, ModelError


def test_unknown_key_is_refused_with_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'hop_lenght'.*did you mean 'hop_length'"):
        from_mapping(FrontendConfig, {"hop_lenght": 160})


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="hop_s must be between 0.1 s"):
        StreamConfig(window_s=1.0, hop_s=0.05)
    with pytest.raises(ConfigError, match="off_threshold <= on_threshold"):
        ClassRule(on_threshold=0.3, off_threshold=0.5)
    with pytest.raises(ConfigError, match="fmax"):
        FrontendConfig(sample_rate=16000, fmax=14000.0)


def test_resolve_precedence_bundle_then_file_then_cli() -> None:
    base = StreamConfig(window_s=2.0, hop_s=0.5)
    out = resolve(base, {"hop_s": 0.25}, {"hop_s": None, "window_s": 1.0})
    assert out == StreamConfig(window_s=1.0, hop_s=0.25)


def _bundle() -> ModelBundle:
    return ModelBundle(
        name="test",
        labels=("dog", "rain"),
        frontend=PANNS_16K,
        tracker=TrackerConfig(per_class=(("dog", ClassRule(on_threshold=0.7, off_threshold=0.4)),)),
    )


def test_bundle_json_round_trip() -> None:
    bundle = _bundle()
    again = ModelBundle.from_json(bundle.to_json())
    assert again == bundle
    assert again.tracker.rule("dog").on_threshold == 0.7
    assert again.tracker.rule("rain") == ClassRule()
    assert bundle.window_frames == 101


def test_bundle_refuses_other_versions_and_missing_keys() -> None:
    with pytest.raises(ModelError, match="format version 99 is not supported"):
        ModelBundle.from_json('{"format_version": 99}')
    with pytest.raises(ModelError, match="lacks labels"):
        ModelBundle.from_json('{"format_version": 1, "name": "x", "frontend": {}}')


def test_read_bundle_refuses_onnx_without_metadata(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["scores"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelError, match="without edge-sed metadata"):
        read_bundle(path)
    with pytest.raises(ModelError, match="does not exist"):
        read_bundle(tmp_path / "missing.onnx")


def test_read_bundle_names_a_file_that_is_no_bundle(tmp_path) -> None:
    """Any suffix but .onnx and .tflite is named, not taken for a TFLite file lacking its sidecar."""
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    with pytest.raises(ModelError, match=r"'.*notes.txt' is not a model bundle \(suffix '.txt'\); give an .onnx file"):
        read_bundle(text)
    (tmp_path / "model.tflite").write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match=r"expected 'model.tflite.json' beside it"):
        read_bundle(tmp_path / "model.tflite")
