"""ONNX fp32 bundle -> static int8 QDQ bundle with ONNX Runtime's quantizer.

Weights are int8 per output channel, activations uint8 per tensor (U8S8), calibrated
(min/max) on windows of real audio. In a waveform-input graph the front-end
nodes (STFT, mel, log) stay in float. The bundle is carried over with
``precision="int8"``.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import numpy as np

from edge_sed.backends import OnnxBackend
from edge_sed.bundle import ModelBundle
from edge_sed.errors import ModelError
from quantize.export import FRONTEND_SCOPE, write_onnx_bundle

__all__ = ["fp32_bundle", "quantize_onnx"]

log = logging.getLogger(__name__)


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


def quantize_onnx(model: str | Path, output: str | Path, windows: np.ndarray) -> ModelBundle:
    """Write a static int8 QDQ copy of an ONNX bundle.

    Parameters
    ----------
    model : the fp32 ``.onnx`` bundle (from :func:`quantize.export.export_onnx`)
    output : the int8 ``.onnx`` to write
    windows : ndarray, shape (n, ...) float32: calibration inputs as the graph
        takes them (see :func:`quantize.clips.calibration_windows`)

    Returns the int8 bundle written into *output*.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model, output = Path(model), Path(output)
    bundle = fp32_bundle(model)
    graph = onnx.load(str(model)).graph
    frontend_nodes = [node.name for node in graph.node if node.name.startswith(FRONTEND_SCOPE)]
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
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=frontend_nodes,
        )
    int8 = dataclasses.replace(bundle, precision="int8")
    write_onnx_bundle(onnx.load(str(output)), int8, output)
    log.info("int8 %s: %d calibration windows, %d front-end nodes kept in float", output, len(windows), len(frontend_nodes))
    return int8
