"""Checkpoint -> ONNX fp32 -> int8 (ONNX Runtime, TFLite) on a small model fitted to real clips.

The session fixture fits a 16 kHz strided MobileNetV2 with four classes for a
few seconds on windows of four ESC-50 clips, saves it with ``save_checkpoint``,
and runs ``edge-sed export`` and ``edge-sed quantize`` on it, so the scores
compared here are not the flat 0.5 of an untrained net.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edge_sed.backends import OnnxBackend, load_backend
from edge_sed.bundle import read_bundle
from edge_sed.cli import app
from edge_sed.config import FrontendConfig, StreamConfig
from edge_sed.frontend import LogMel
from quantize.clips import Clip, clip_windows, list_clips

torch = pytest.importorskip("torch", reason="export needs torch (the [train] extra)")

DATA = Path(__file__).parent / "data"
CLASSES = ("dog", "rain", "siren", "church_bells")
FRONTEND_16K = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=7500.0)
STREAM = StreamConfig(window_s=1.0, hop_s=0.25)
FIT_STEPS = 25


def _class_clip(label: str) -> Path:
    return next(DATA.glob(f"esc50_{label}_*.flac"))


def _fit_model(tmp: Path) -> Path:
    from edge_sed.bundle import ModelBundle
    from edge_sed.models.checkpoint import save_checkpoint
    from edge_sed.models.registry import build_model

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights whatever the machine's core count
    model = build_model("mobilenet_v2_strided", num_classes=len(CLASSES), frontend=FRONTEND_16K)
    shape = ModelBundle(name="fit", labels=CLASSES, frontend=FRONTEND_16K, stream=STREAM)
    logmel = LogMel(FRONTEND_16K)
    windows = [clip_windows(_class_clip(label), shape, logmel) for label in CLASSES]
    x = torch.from_numpy(np.concatenate(windows))
    y = torch.from_numpy(np.concatenate([np.full(len(w), i) for i, w in enumerate(windows)]))
    targets = torch.nn.functional.one_hot(y, len(CLASSES)).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(FIT_STEPS):
        batch = torch.randint(len(x), (16,), generator=generator)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.forward_logmel(x[batch])["logits"], targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for module in model.modules():  # population statistics for eval mode, not 25 steps of momentum
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        model.forward_logmel(x)
    torch.set_num_threads(threads)
    return save_checkpoint(
        tmp / "fitted.pth",
        model.eval(),
        labels=list(CLASSES),
        stream={"window_s": 1.0, "hop_s": 0.5},
        tracker={"default": {"on_threshold": 0.6, "off_threshold": 0.4}, "per_class": {"siren": {"median_s": 1.0}}},
        metrics={"fit_steps": FIT_STEPS},
        provenance={"data": "tests/data ESC-50 clips"},
    )


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _window_scores(model: Path, windows: np.ndarray) -> np.ndarray:
    """Scores of each window, from one backend opened on *model*."""
    backend = load_backend(model)
    return np.stack([backend(window) for window in windows])


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("quantize")
    checkpoint = _fit_model(tmp)
    fp32, int8 = tmp / "fitted.onnx", tmp / "fitted.int8.onnx"
    _invoke("export", str(checkpoint), "-o", str(fp32), "--hop", "0.25")
    _invoke("quantize", str(fp32), "-o", str(int8), "--calibration", str(DATA), "--max-windows", "64")
    return {"checkpoint": checkpoint, "fp32": fp32, "int8": int8, "tmp": tmp}


def test_export_carries_the_checkpoint_metadata(models: dict[str, Path]) -> None:
    from edge_sed.bundle import file_sha256

    bundle = read_bundle(models["fp32"])
    assert bundle.labels == CLASSES
    assert bundle.frontend == FRONTEND_16K
    assert (bundle.stream.window_s, bundle.stream.hop_s) == (1.0, 0.25)  # --hop overrides the checkpoint's 0.5
    assert bundle.tracker.default.on_threshold == 0.6
    assert bundle.tracker.rule("siren").median_s == 1.0
    assert bundle.source_sha256 == file_sha256(models["checkpoint"])
    assert bundle.metrics == {"fit_steps": FIT_STEPS}
    assert bundle.provenance == {"data": "tests/data ESC-50 clips"}
    assert (bundle.precision, bundle.input, bundle.architecture) == ("fp32", "logmel", "mobilenet_v2_strided")
    graph = onnx.load(str(models["fp32"])).graph
    assert [tuple(d.dim_value for d in i.type.tensor_type.shape.dim)[1:] for i in graph.input] == [(101, 64)]
    ops = [node.op_type for node in graph.node]
    # bn0 is a per-mel Mul/Add on the input, every backbone BN is folded into its conv: no BN, no transposes
    assert "BatchNormalization" not in ops and "Transpose" not in ops


def test_int8_bundle_is_small_and_marked_int8(models: dict[str, Path]) -> None:
    fp32, int8 = read_bundle(models["fp32"]), read_bundle(models["int8"])
    assert int8.precision == "int8"
    assert (int8.labels, int8.stream, int8.tracker, int8.source_sha256) == (fp32.labels, fp32.stream, fp32.tracker, fp32.source_sha256)
    assert models["int8"].stat().st_size <= 0.30 * models["fp32"].stat().st_size
    graph = onnx.load(str(models["int8"])).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    scores = next(node for node in graph.node if node.output[0] == "scores")
    assert scores.op_type == "Sigmoid"  # scores leave in float, not on int8's 1/256 grid


def test_int8_weights_fit_7_bits_so_no_cpu_saturates_them(models: dict[str, Path]) -> None:
    from onnx import numpy_helper

    from quantize.onnx_int8 import WEIGHT_GRID

    graph = onnx.load(str(models["int8"])).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) > 1]
    assert len(weights) > 10
    # x86 without VNNI adds pairs of uint8 x int8 products in int16: 2 * 255 * 64 fits, 2 * 255 * 127 does not
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    assert read_bundle(models["int8"]).provenance["int8"]["weights"] == WEIGHT_GRID


def test_int8_kernels_on_this_cpu_match_the_graphs_exact_arithmetic(models: dict[str, Path]) -> None:
    """ONNX Runtime's fused int8 kernels against its unfused QDQ reference (float ops between
    QuantizeLinear/DequantizeLinear): equal up to rounding on any CPU. With 8-bit weights an
    AVX2 CPU without VNNI saturated: mean difference 0.13, one clip's mean score off by 0.76."""
    bundle = read_bundle(models["int8"])
    clips = [clip_windows(clip, bundle) for clip in list_clips(DATA)]
    kernels, exact = OnnxBackend(models["int8"]), OnnxBackend(models["int8"], exact=True)
    fused, reference = [kernels.score(windows) for windows in clips], [exact.score(windows) for windows in clips]
    differences = [np.abs(f - r) for f, r in zip(fused, reference)]
    assert np.mean(np.concatenate(differences)) < 0.02  # rounding alone: 0.002 here
    assert max(np.abs(f.mean(axis=0) - r.mean(axis=0)).max() for f, r in zip(fused, reference)) < 0.05  # 0.019


def test_int8_scores_close_to_fp32_on_real_clips(models: dict[str, Path]) -> None:
    from quantize.report import compare_models

    clips = [clip for clip in list_clips(DATA)]
    report = compare_models([models["fp32"], models["int8"]], clips, latency_runs=5)
    fp32_row, int8_row = report.models
    agreement = report.agreements[0]
    assert (report.n_clips, fp32_row.precision, int8_row.precision) == (len(clips), "fp32", "int8")
    assert agreement.mean_abs_diff < 0.02
    assert agreement.max_abs_diff < 0.15  # one clip of a barely fitted model can move by ~0.1
    assert agreement.top1_agreement >= 10 / 11
    assert agreement.decided_clips >= 4 and agreement.top1_agreement_decided == 1.0  # near-ties aside, int8 agrees
    siren = clip_windows(_class_clip("siren"), read_bundle(models["fp32"]))
    torch_scores = _window_scores(models["checkpoint"], siren)
    onnx_scores = _window_scores(models["fp32"], siren)
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-4)
    assert CLASSES[int(np.argmax(onnx_scores.mean(axis=0)))] == "siren"


def test_each_backend_scores_a_stack_of_windows_as_each_window_alone(models: dict[str, Path]) -> None:
    windows = clip_windows(_class_clip("siren"), read_bundle(models["fp32"]))
    assert len(windows) > 1
    for name in ("checkpoint", "fp32", "int8"):  # torch, ONNX Runtime fp32 and int8: one call for the stack
        backend = load_backend(models[name])
        np.testing.assert_allclose(backend.score(windows), _window_scores(models[name], windows), atol=1e-5, err_msg=name)


def test_quantize_report_json_on_a_labelled_csv(models: dict[str, Path]) -> None:
    labelled = models["tmp"] / "labelled.csv"
    labelled.write_text(
        "filename,label\n" + "".join(f"{_class_clip(label).resolve()},{label}\n" for label in CLASSES), encoding="utf-8"
    )
    output = _invoke(
        "quantize", str(models["fp32"]), "-o", str(models["tmp"] / "again.int8.onnx"),
        "--calibration", str(DATA), "--max-windows", "32", "--json", "--labelled", str(labelled),
    )
    report = json.loads(output)
    assert report["n_clips"] == len(CLASSES) and report["labelled"] is True
    # calibrated on the very clips it scores: the report says so
    assert report["note"].startswith(f"{len(CLASSES)} of the {len(CLASSES)} clips scored are calibration clips too; ")
    assert [row["precision"] for row in report["models"]] == ["fp32", "int8"]
    assert report["models"][0]["accuracy"] == 1.0  # the four clips it was fitted on
    assert 0.0 <= report["agreements"][0]["accuracy_drop_relative"] <= 0.25
    agreement, (fp32_row, int8_row) = report["agreements"][0], report["models"]
    net_lost = agreement["clips_lost"] - agreement["clips_gained"]
    assert net_lost == round((fp32_row["accuracy"] - int8_row["accuracy"]) * report["n_clips"])
    assert 0.0 < agreement["mcnemar_p"] <= 1.0
    assert report["models"][1]["latency_ms"] > 0 and report["agreements"][0]["size_ratio"] <= 0.30


def test_in_graph_frontend_stays_float(models: dict[str, Path]) -> None:
    tmp = models["tmp"]
    fp32, int8 = tmp / "wave.onnx", tmp / "wave.int8.onnx"
    _invoke("export", str(models["checkpoint"]), "-o", str(fp32), "--hop", "0.25", "--in-graph-frontend")
    _invoke("quantize", str(fp32), "-o", str(int8), "--calibration", str(DATA), "--max-windows", "32")
    assert read_bundle(int8).input == "waveform"
    graph = onnx.load(str(int8)).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    frontend = [node for node in graph.node if node.name.startswith("/frontend/")]
    compute = [node for node in frontend if node.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    assert {"Conv", "MatMul", "Log"} <= {node.op_type for node in compute}
    assert not any(set(node.input) & dequantized for node in compute)  # the front end computes in float
    # only its output, the backbone's input, is quantized
    assert {node.input[0] for node in frontend if node.op_type == "QuantizeLinear"} == {compute[-1].output[0]}
    windows = clip_windows(_class_clip("dog"), read_bundle(fp32))
    assert windows.shape == (17, 16000)
    fp32_scores = _window_scores(fp32, windows).mean(axis=0)
    int8_scores = _window_scores(int8, windows).mean(axis=0)
    assert np.abs(int8_scores - fp32_scores).max() < 0.1
    assert CLASSES[int(np.argmax(fp32_scores))] == CLASSES[int(np.argmax(int8_scores))] == "dog"


def test_kept_modules_stay_float_in_the_int8_graph(models: dict[str, Path]) -> None:
    int8 = models["tmp"] / "stem_float.int8.onnx"
    _invoke(
        "quantize", str(models["fp32"]), "-o", str(int8), "--calibration", str(DATA), "--max-windows", "32",
        "--keep-float", "features.0", "--keep-float", "features.1",
    )
    assert read_bundle(int8).provenance["int8"]["float_modules"] == ["features.0", "features.1"]
    graph = onnx.load(str(int8)).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    kept = [node for node in convs if node.name.startswith(("/features/features.0/", "/features/features.1/"))]
    assert len(kept) == 3  # the stem; block 1's depthwise and projection (expansion 1: no expanding conv)
    assert not any(set(node.input) & dequantized for node in kept)
    assert all(set(node.input) & dequantized for node in convs if node not in kept)
    windows = clip_windows(_class_clip("dog"), read_bundle(int8))
    fp32_scores = _window_scores(models["fp32"], windows).mean(axis=0)
    int8_scores = _window_scores(int8, windows).mean(axis=0)
    assert np.abs(int8_scores - fp32_scores).max() < 0.1


def test_keep_float_names_a_module_of_the_graph(models: dict[str, Path]) -> None:
    result = CliRunner().invoke(
        app,
        ["quantize", str(models["fp32"]), "-o", str(models["tmp"] / "nope.int8.onnx"), "--calibration", str(DATA),
         "--max-windows", "8", "--keep-float", "features.99"],
    )
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        "error: the graph has no nodes of module 'features.99' (scope /features/features.99/); "
        "give module paths like 'features.0'"
    )
    assert not (models["tmp"] / "nope.int8.onnx").exists()


def _input_scale(int8_onnx: Path) -> float:
    """The quantization scale of the first int8 activation (the normalised log-mel) of an int8 ONNX model."""
    graph = onnx.load(str(int8_onnx)).graph
    quantize = next(node for node in graph.node if node.op_type == "QuantizeLinear")
    scale = next(init for init in graph.initializer if init.name == quantize.input[1])
    return float(onnx.numpy_helper.to_array(scale))


def test_tflite_int8_agrees_with_onnx_int8(models: dict[str, Path]) -> None:
    pytest.importorskip("litert_torch", reason="TFLite export needs litert-torch: pip install 'edge-sed[tflite-export]'")
    pytest.importorskip("ai_edge_litert", reason="TFLite run time needs ai-edge-litert: pip install 'edge-sed[tflite]'")
    from quantize.report import compare_models

    tmp = models["tmp"]
    int8 = tmp / "lite.int8.onnx"
    _invoke(
        "quantize", str(models["fp32"]), "-o", str(int8), "--calibration", str(DATA), "--max-windows", "64",
        "--tflite", "--checkpoint", str(models["checkpoint"]),
    )
    tflite = int8.with_suffix(".tflite")
    assert read_bundle(tflite).precision == "int8"
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(tflite))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    float_ops = [op["op_name"] for op in ops if tensors[op["outputs"][0]]["dtype"] == np.float32]
    # the mel normalisation in float (as in ONNX Runtime's int8 model), int8 from the stem to the logits
    # (the residual adds too), then the sigmoid in float
    assert float_ops == ["MUL", "ADD", "DEQUANTIZE", "LOGISTIC"], float_ops
    # MobileNetV2's depthwise convs and its one-channel stem (depthwise in TFLite) end in ReLU6:
    # their int8 outputs span 0..6, not the convs' pre-activation range
    depthwise = [op for op in ops if op["op_name"] == "DEPTHWISE_CONV_2D"]
    assert len(depthwise) == 18
    for op in depthwise:
        scale, zero_point = tensors[op["outputs"][0]]["quantization"]
        assert zero_point == -128 and 5.0 < 255 * scale <= 6.0 + scale, (scale, zero_point)
    # both runtimes quantize activations over the min..max seen in calibration (litert-torch's
    # histogram fit gave the log-mel a 4 % narrower range): the same scale for the same input
    first = next(op for op in ops if op["op_name"] == "QUANTIZE")
    tflite_scale, _ = tensors[first["outputs"][0]]["quantization"]
    assert tflite_scale == pytest.approx(_input_scale(int8), rel=1e-5)
    ranges = {read_bundle(path).provenance["int8"]["activation_ranges"] for path in (int8, tflite)}
    assert ranges == {"min/max over the calibration windows"}
    windows = clip_windows(_class_clip("siren"), read_bundle(tflite))
    np.testing.assert_array_equal(load_backend(tflite).score(windows), _window_scores(tflite, windows))  # one invoke each
    known = [Clip(_class_clip(label), label) for label in CLASSES]
    report = compare_models([int8, tflite], known, latency_runs=5)
    assert report.models[1].runtime == "TFLite"
    assert report.agreements[0].top1_agreement == 1.0  # every clip of the model's own classes
    # all clips, also those of classes the model never saw, whose top-1 is a near-tie of low scores
    everything = compare_models([int8, tflite], list_clips(DATA), latency_runs=1).agreements[0]
    assert everything.mean_abs_diff < 0.02 and everything.max_abs_diff < 0.15


def test_panns_layout_mobilenet_exports_strided_with_bn_folded(tmp_path: Path, randomise_batchnorm) -> None:
    from edge_sed.models.registry import build_model

    torch.manual_seed(0)
    model = randomise_batchnorm(build_model("mobilenet_v1", num_classes=10)).eval()  # PANNs' 32 kHz front end
    checkpoint = tmp_path / "MobileNetV1_panns.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, checkpoint)  # the official file layout
    output = tmp_path / "panns.onnx"
    printed = _invoke("export", str(checkpoint), "-o", str(output), "--model", "mobilenet_v1")
    assert "max |onnx - torch|" in printed
    graph = onnx.load(str(output)).graph
    ops = [node.op_type for node in graph.node]
    assert not {"BatchNormalization", "AveragePool", "Transpose"} & set(ops)  # every BN folded; no stride-1 conv + pool
    weights = {tensor.name: tensor.dims for tensor in graph.initializer}
    dense_convs = [node for node in graph.node if node.op_type == "Conv" and not any(a.name == "group" and a.i > 1 for a in node.attribute)]
    assert weights[dense_convs[0].input[1]][1:] == [4, 2, 2]  # the stem runs on the log-mel's 2x2 phases
    assert all(weights[node.input[1]][1] > 1 for node in dense_convs)
    bundle = read_bundle(output)
    assert (bundle.architecture, bundle.labels[:2]) == ("mobilenet_v1", ("class 0", "class 1"))
    windows = clip_windows(_class_clip("rain"), bundle)
    with torch.no_grad():
        expected = model.forward_logmel(torch.from_numpy(windows))["clipwise_output"].numpy()
    got = _window_scores(output, windows)
    assert np.ptp(expected) > 0.01  # scores that vary, so the comparison means something
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_export_creates_the_output_folder_and_refuses_other_suffixes(models: dict[str, Path]) -> None:
    nested = models["tmp"] / "new" / "folder" / "model.onnx"
    _invoke("export", str(models["checkpoint"]), "-o", str(nested))
    assert read_bundle(nested).labels == CLASSES
    result = CliRunner().invoke(app, ["export", str(models["checkpoint"]), "-o", str(nested.with_suffix(".tflite"))])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: ONNX output must end in '.onnx', got {str(nested.with_suffix('.tflite'))!r}"
    for args, message in [(["--window", "1e9"], "error: window_s must be between 0 and 60 s, got 1000000000.0"),
                          (["--opset", "3"], f"error: opset 3 is not one torch {torch.__version__} exports; the default 17 works")]:
        result = CliRunner().invoke(app, ["export", str(models["checkpoint"]), "-o", str(nested), *args])
        assert result.exit_code == 1 and result.stderr.strip() == message, result.output


def _recipe_over_fixture_clips(tmp: Path) -> Path:
    """A training recipe over the fixture clips of the model's four classes (QAT's data)."""
    rows = [f"{_class_clip(label)},{label},1" for label in CLASSES]
    (tmp / "metadata.csv").write_text("filename,label,fold\n" + "\n".join(rows) + "\n", encoding="utf-8")
    recipe = tmp / "qat.toml"
    recipe.write_text(
        f"""
[model]
architecture = "mobilenet_v2_strided"
[data]
kind = "csv"
root = "{tmp}"
cache_dir = "{tmp / 'cache'}"
val_fold = 0
[augment]
mixup_alpha = 0.2
[train]
batch_size = 4
threads = 1
""",
        encoding="utf-8",
    )
    return recipe


def test_quantization_aware_tflite_keeps_the_fp32_decisions(models: dict[str, Path]) -> None:
    pytest.importorskip("litert_torch", reason="TFLite export needs litert-torch: pip install 'edge-sed[tflite-export]'")
    pytest.importorskip("ai_edge_litert", reason="TFLite run time needs ai-edge-litert: pip install 'edge-sed[tflite]'")
    from quantize.report import compare_models

    tmp = models["tmp"] / "qat"
    tmp.mkdir()
    int8 = tmp / "fitted.int8.onnx"
    _invoke(
        "quantize", str(models["fp32"]), "-o", str(int8), "--calibration", str(DATA), "--max-windows", "64",
        "--tflite", "--checkpoint", str(models["checkpoint"]), "--qat-epochs", "2", "--recipe", str(_recipe_over_fixture_clips(tmp)),
    )
    tflite = int8.with_suffix(".tflite")
    how = read_bundle(tflite).provenance["int8"]
    assert how["method"] == "quantization-aware fine-tuning" and how["epochs"] == 2
    assert len(how["train_loss"]) == 2 and all(np.isfinite(how["train_loss"]))
    known = [Clip(_class_clip(label), label) for label in CLASSES]
    report = compare_models([models["fp32"], tflite], known, latency_runs=1)
    assert report.models[1].runtime == "TFLite" and report.models[1].accuracy == 1.0
    assert report.agreements[0].top1_agreement == 1.0
    assert report.agreements[0].mean_abs_diff < 0.05


def test_quantization_aware_tflite_needs_a_recipe(models: dict[str, Path]) -> None:
    base = ["quantize", str(models["fp32"]), "-o", str(models["tmp"] / "norecipe.int8.onnx"), "--calibration", str(DATA)]
    result = CliRunner().invoke(app, [*base, "--qat-epochs", "1"])
    assert result.exit_code != 0
    assert result.stderr.strip() == "error: --qat-epochs fine-tunes the TFLite model: add --tflite --checkpoint CHECKPOINT.pth"
    result = CliRunner().invoke(app, [*base, "--tflite", "--checkpoint", str(models["checkpoint"]), "--qat-epochs", "1"])
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        f"error: checkpoint {str(models['checkpoint'])!r} carries no training recipe; "
        "give the data to fine-tune on with --recipe RECIPE.toml"
    )


def test_paired_accuracy_is_an_exact_mcnemar_test() -> None:
    from quantize.report import _paired_accuracy

    target = np.eye(3, dtype=bool)[[0, 1, 2, 0, 1, 2, 0, 1]]  # eight clips of three classes
    reference = target.astype(float)  # right on all eight
    candidate = reference.copy()
    candidate[:5] = np.roll(target[:5], 1, axis=1)  # wrong on the first five
    paired = _paired_accuracy(reference, candidate, target)
    assert (paired["clips_lost"], paired["clips_gained"]) == (5, 0)
    assert paired["mcnemar_p"] == pytest.approx(2 / 2**5)  # all five discordant clips one way: 2 * 0.5**5
    swapped = _paired_accuracy(candidate, reference, target)
    assert swapped == {"clips_lost": 0, "clips_gained": 5, "mcnemar_p": paired["mcnemar_p"]}
    reference[7] = np.roll(target[7], 1)  # the reference wrong on the last clip, the candidate right
    paired = _paired_accuracy(reference, candidate, target)
    assert (paired["clips_lost"], paired["clips_gained"]) == (5, 1)
    assert paired["mcnemar_p"] == pytest.approx(2 * (1 + 6) / 2**6)  # 2 * P(X <= 1), X ~ Binomial(6, 1/2)
    assert _paired_accuracy(reference, reference, target)["mcnemar_p"] == 1.0
