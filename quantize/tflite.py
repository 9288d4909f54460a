"""Torch checkpoint -> int8 TFLite bundle through litert-torch (PT2E).

The model is captured with ``torch.export``, observed on calibration windows
of real audio with litert-torch's symmetric PT2E quantizer (int8 weights per
channel, int8 activations), or fine-tuned with fake quantization
(:mod:`quantize.qat`), converted, and written as ``.tflite`` with its bundle
in the sidecar ``<model>.tflite.json``. Input is host-computed log-mel; the
int8 graph runs from the stem to the logits, the mel normalisation before it
and the sigmoid after it in float (scores keep their resolution).
litert-torch is heavy (it pulls jax and transformers), so it is its own extra,
``[tflite-export]``; running the result only needs ``[tflite]``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sed.bundle import ModelBundle, file_sha256, sidecar_path
from edge_sed.errors import ModelError, require, require_file
from quantize.clips import ACTIVATION_RANGES
from quantize.export import FRONTEND_MODULE, deployable_model, scores_module

if TYPE_CHECKING:
    from quantize.qat import QatJob

__all__ = ["export_tflite", "check_tflite_source", "litert_quantizer"]

log = logging.getLogger(__name__)


def export_tflite(
    checkpoint: str | Path,
    output: str | Path,
    bundle: ModelBundle,
    windows: np.ndarray,
    *,
    qat: QatJob | None = None,
) -> ModelBundle:
    """Write an int8 ``.tflite`` of *checkpoint* (float log-mel in, int8 from the stem to the logits, float scores) and its sidecar bundle.

    Parameters
    ----------
    checkpoint : the torch checkpoint the ONNX bundle was exported from
    output : the ``.tflite`` file to write
    bundle : the fp32 ONNX bundle (labels, window, hop, rules); its
        ``source_sha256`` must match *checkpoint*
    windows : ndarray, shape (n, frames, n_mels) float32, calibration log-mel windows
    qat : fine-tune with fake quantization on this recipe's training data
        (:mod:`quantize.qat`) instead of post-training calibration alone

    Returns the int8 bundle written beside *output*; its provenance says how it was quantized.
    """
    litert_torch = require("litert_torch", what="TFLite export", extra="tflite-export")
    import torch
    from litert_torch.quantize.quant_config import QuantConfig

    from edge_sed.models.checkpoint import load_checkpoint

    output = Path(output)
    if output.suffix != ".tflite":
        raise ModelError(f"TFLite output must end in '.tflite', got {str(output)!r}")
    check_tflite_source(checkpoint, bundle)
    loaded = load_checkpoint(checkpoint)
    if qat is None:
        quantizer, quantized = _calibrated(loaded, windows)
        how = {"method": "post-training calibration", "calibration_windows": len(windows), "activation_ranges": ACTIVATION_RANGES}
    else:
        from quantize.qat import finetune_qat, qat_provenance

        quantizer = litert_quantizer(qat=True)
        quantized, history = finetune_qat(loaded, quantizer, windows, qat)
        how = qat_provenance(qat, history, len(windows))
    example = (torch.from_numpy(windows[:1]),)
    edge_model = litert_torch.convert(_with_sigmoid(quantized), example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    edge_model.export(str(output))
    int8 = dataclasses.replace(bundle, precision="int8", provenance={**bundle.provenance, "int8": how})
    sidecar_path(output).write_text(int8.to_json(), encoding="utf-8")
    log.info("TFLite int8 %s: %s", output, how["method"])
    return int8


def check_tflite_source(checkpoint: str | Path, bundle: ModelBundle) -> None:
    """:class:`ModelError` unless *checkpoint* is a file and the one *bundle* (host log-mel input) was exported from."""
    checkpoint = Path(checkpoint)
    require_file(checkpoint, "checkpoint", ModelError)
    if bundle.input != "logmel":
        raise ModelError("TFLite export takes host-computed log-mel; export the ONNX model without --in-graph-frontend")
    digest = file_sha256(checkpoint)
    if bundle.source_sha256 and digest != bundle.source_sha256:
        raise ModelError(
            f"checkpoint {str(checkpoint)!r} (sha256 {digest[:12]}...) is not the one the model was exported from "
            f"(sha256 {bundle.source_sha256[:12]}...)"
        )


def _calibrated(loaded: Any, windows: np.ndarray) -> tuple[Any, Any]:
    """(quantizer, int8 logits graph): post-training int8, activation ranges observed on *windows*."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    module = scores_module(deployable_model(loaded.model), "logmel", output="logits")
    quantizer = litert_quantizer()
    with torch.no_grad():
        observed = prepare_pt2e(torch.export.export(module, (torch.from_numpy(windows[:1]),)).module(), quantizer)
        for window in windows:
            observed(torch.from_numpy(window[None]))
        return quantizer, convert_pt2e(observed, fold_quantize=False)


def litert_quantizer(*, qat: bool = False) -> Any:
    """litert-torch's symmetric int8 quantizer (per-channel weights), with four changes.

    - Activation ranges are the minimum and maximum seen in calibration
      (:data:`quantize.clips.ACTIVATION_RANGES`), as in ONNX Runtime's int8
      model, not litert-torch's histogram-fitted ranges, so the two int8
      models quantize the same ranges. On ESC-50's validation fold this
      halved the mean score difference between them (0.00043 -> 0.00023 for
      the default recipe's MobileNetV2, 0.00096 -> 0.00041 for a MobileNetV1)
      and cost no accuracy against fp32 (README). QAT keeps its own
      moving-average ranges.
    - conv + ReLU6 is one pattern, quantized at the ReLU6 output, as conv +
      ReLU is. litert-torch lets ReLU6 (``hardtanh``) share its conv's
      quantization, so MobileNetV2's activations were quantized over the
      conv's whole pre-activation range (-7.5 to 13.5 for one depthwise conv
      of the shipped model) and the fused RELU6 kept under a third of the
      int8 steps; ONNX Runtime quantizes the clipped output (0 to 6).
    - Residual adds are quantized. Its add annotator finds adds by source
      partition, which ``torch.export`` no longer records for a Python
      ``x + y``, so MobileNetV2's residual adds stayed in float (DEQUANTIZE,
      ADD, QUANTIZE in the ``.tflite``).
    - The front end (:data:`quantize.export.FRONTEND_MODULE`, the per-mel
      normalisation) stays in float, as in ONNX Runtime's int8 model. In int8
      it quantized the raw log-mel and ran as an int8 MUL and ADD that cost
      a sixth of the model's time (0.12 of 0.72 ms per 1 s window).

    With *qat*, fake quantization for fine-tuning; its conv+BatchNorm patterns
    are left out, since :func:`quantize.qat.finetune_qat` folds every BatchNorm
    first (and litert-torch's annotator for them fails on torchao 0.18).
    """
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.observer import MinMaxObserver

    class _Quantizer(PT2EQuantizer):
        STATIC_QAT_ONLY_OPS: list[str] = []

        def annotate(self, model: Any) -> Any:
            _annotate_conv_relu6(model, self.global_config)
            model = super().annotate(model)
            _annotate_activation_adds(model, self.global_config.input_activation)
            _leave_in_float(model, FRONTEND_MODULE)
            return model

    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    if not qat:  # QAT's fake quantizers already track moving min/max
        activation = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
        config = dataclasses.replace(config, input_activation=activation, output_activation=activation)
    return _Quantizer().set_global(config)


def _annotate_conv_relu6(model: Any, config: Any) -> None:
    """Annotate every conv whose only user is a ReLU6 as one partition: conv inputs, ReLU6 output.

    Runs before litert-torch's own annotators, which then pass these convs by.
    """
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    convs = (torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default)
    for node in model.graph.nodes:
        if node.target not in (torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default):
            continue
        conv = node.args[0]
        if tuple(node.args[1:3]) != (0.0, 6.0) or not isinstance(conv, torch.fx.Node) or conv.target not in convs:
            continue
        if len(conv.users) != 1 or "quantization_annotation" in conv.meta:
            continue
        activation, weight, bias = (list(conv.args) + [None])[:3]
        inputs = {activation: config.input_activation, weight: config.weight}
        if isinstance(bias, torch.fx.Node):
            inputs[bias] = config.bias
        conv.meta["quantization_annotation"] = QuantizationAnnotation(input_qspec_map=inputs, _annotated=True)
        node.meta["quantization_annotation"] = QuantizationAnnotation(output_qspec=config.output_activation, _annotated=True)


def _annotate_activation_adds(model: Any, spec: Any) -> None:
    """Quantize inputs and output of every still unannotated add of two activations in *model*'s graph."""
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    for node in model.graph.nodes:
        if node.target != torch.ops.aten.add.Tensor or "quantization_annotation" in node.meta:
            continue
        inputs = node.args[:2]
        if all(isinstance(arg, torch.fx.Node) and arg.op != "get_attr" for arg in inputs):
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map=dict.fromkeys(inputs, spec), output_qspec=spec, _annotated=True
            )


def _leave_in_float(model: Any, module: str) -> None:
    """Drop the annotations of the nodes of *module* (a submodule path): they run in float.

    litert-torch takes no ``None`` config per module, so they are annotated
    first; the nodes after them still quantize their inputs at the boundary.
    """
    for node in model.graph.nodes:
        paths = [path for path, _ in node.meta.get("nn_module_stack", {}).values()]
        if any(path == module or path.startswith(module + ".") for path in paths):
            node.meta.pop("quantization_annotation", None)


def _with_sigmoid(logits: Any) -> Any:
    """The int8 *logits* graph followed by a float sigmoid: scores at full resolution.

    Quantized, the sigmoid's output would have LiteRT's fixed int8 grid, steps
    of 1/256, coarser than the per-class thresholds tuned on the scores.
    """
    import torch

    class _Scores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logits = logits

        def forward(self, logmel: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.logits(logmel))

    scores = _Scores()
    scores.training = False  # eval mode for this wrapper; the exported graph inside refuses .eval()
    return scores
