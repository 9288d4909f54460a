"""ONNX fp32 bundle -> static int8 QDQ bundle with ONNX Runtime's quantizer.

Weights are int8 per output channel on a 7-bit grid (-64..64), activations uint8
per tensor (U8S8), calibrated (min/max) on windows of real audio. The 7-bit
weights keep the int8 kernels exact on every CPU: on x86 without VNNI (AVX2 only:
AMD Zen 3, Intel before Cascade Lake and Ice Lake) ONNX Runtime's U8S8 kernels
add pairs of uint8 x int8 products in int16 (``VPMADDUBSW``), which saturates
with 8-bit weights (2 * 255 * 127 > 32767) but not with 7-bit ones
(2 * 255 * 64 <= 32767). The output sigmoid stays in float (int8
would round scores to steps of 1/256, coarser than the thresholds tuned on
them); so do the front-end nodes (STFT, mel, log) of a waveform-input graph
and the modules named in ``keep_float``. The bundle is carried over with
``precision="int8"`` and says how it was quantized (``provenance["int8"]``).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_sed.backends import OnnxBackend
from edge_sed.bundle import ModelBundle
from edge_sed.errors import ConfigError, ModelError
from quantize.clips import ACTIVATION_RANGES
from quantize.export import FRONTEND_SCOPE, write_onnx_bundle

__all__ = ["WEIGHT_GRID", "fp32_bundle", "module_scope", "quantize_onnx"]

log = logging.getLogger(__name__)

#: How the weights are quantized, as the bundle's provenance records it.
WEIGHT_GRID = "int8 per output channel, 7-bit range -64..64 (reduce_range)"


class _WindowReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over in-memory windows."""

    def __init__(self, input_name: str, windows: np.ndarray) -> None:
        self._feeds = iter([{input_name: window[None]} for window in windows])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def fp32_bundle(model: str | Path) -> ModelBundle:
    """The bundle of an fp32 ONNX model whose metadata agrees with its graph; else :class:`ModelError`."""
    bundle = OnnxBackend(model).bundle
    if bundle.precision != "fp32":
        raise ModelError(f"{str(model)!r} is already {bundle.precision}; quantize the fp32 export")
    return bundle


def module_scope(module: str) -> str:
    """The ONNX node-name scope of a torch module path: ``features.1`` -> ``/features/features.1/``."""
    parts = module.split(".")
    return "/" + "/".join(".".join(parts[: i + 1]) for i in range(len(parts))) + "/"


def quantize_onnx(model: str | Path, output: str | Path, windows: np.ndarray, *, keep_float: Sequence[str] = ()) -> ModelBundle:
    """Write a static int8 QDQ copy of an ONNX bundle.

    Parameters
    ----------
    model : the fp32 ``.onnx`` bundle (from :func:`quantize.export.export_onnx`)
    output : the int8 ``.onnx`` to write
    windows : ndarray, shape (n, ...) float32: calibration inputs as the graph
        takes them (see :func:`quantize.clips.calibration_windows`)
    keep_float : torch module paths (``features.0``) whose nodes stay in float.
        Keeping a MobileNet's stem and first block (``features.0``,
        ``features.1``) in float made the shipped model faster, when its stem
        still took the one-channel log-mel; exports with the stem on the
        log-mel's phases run fastest all in int8 (README).

    Returns the int8 bundle written into *output*.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model, output = Path(model), Path(output)
    bundle = fp32_bundle(model)
    graph = onnx.load(str(model)).graph
    frontend_nodes = [node.name for node in graph.node if node.name.startswith(FRONTEND_SCOPE)]
    graph_outputs = {value.name for value in graph.output}
    score_nodes = [node.name for node in graph.node if node.op_type == "Sigmoid" and node.output[0] in graph_outputs]
    float_nodes = []
    for module in keep_float:
        scope = module_scope(module)
        found = [node.name for node in graph.node if node.name.startswith(scope)]
        if not found:
            raise ConfigError(f"the graph has no nodes of module {module!r} (scope {scope}); give module paths like 'features.0'")
        float_nodes += found
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(output),
            _WindowReader(bundle.input, windows),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,  # U8S8: ONNX Runtime's fast int8 kernels on x86 and ARM
            weight_type=QuantType.QInt8,
            reduce_range=True,  # 7-bit weights: no int16 saturation on x86 without VNNI (module docstring)
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=frontend_nodes + score_nodes + float_nodes,
        )
    how = {
        "method": "post-training calibration",
        "weights": WEIGHT_GRID,
        "calibration_windows": len(windows),
        "activation_ranges": ACTIVATION_RANGES,
        "float_modules": list(keep_float),
    }
    int8 = dataclasses.replace(bundle, precision="int8", provenance={**bundle.provenance, "int8": how})
    write_onnx_bundle(onnx.load(str(output)), int8, output)
    log.info("int8 %s: %d calibration windows, %d front-end and %d other nodes kept in float", output, len(windows), len(frontend_nodes), len(float_nodes))
    return int8
