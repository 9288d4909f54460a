"""Torch checkpoint -> ONNX fp32 model bundle (one file, metadata inside).

The graph takes one fixed-length window: ``logmel`` (batch, frames, n_mels),
computed on the host by :class:`edge_sed.frontend.LogMel` (the default), or
``waveform`` (batch, n_samples) with the front end in the graph. Its output is
``scores`` (batch, classes), sigmoid probabilities. PANNs-layout MobileNets are
re-parameterised to the exact strided layout first, so BatchNorm folds, and a
stem on the one-channel log-mel becomes a conv on its 2x2 phases, which int8
kernels run faster (:class:`edge_sed.models.reparam.SpaceToDepthConv`). The
export is checked against torch on real audio before it is kept.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sed.bundle import METADATA_KEY, ModelBundle, file_sha256
from edge_sed.config import StreamConfig, TrackerConfig, from_mapping, resolve
from edge_sed.errors import ConfigError, ModelError
from quantize.clips import clip_windows

__all__ = [
    "onnx_output",
    "DEFAULT_OPSET",
    "VERIFY_AUDIO",
    "EXPORT_TOLERANCE",
    "FRONTEND_MODULE",
    "FRONTEND_SCOPE",
    "ExportResult",
    "checkpoint_bundle",
    "deployable_model",
    "scores_module",
    "export_onnx",
    "write_onnx_bundle",
]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
#: Real audio the export is checked on when no other is given (CC BY 3.0, see assets/SOURCES.md).
VERIFY_AUDIO = Path(__file__).parent / "assets" / "verify_robin.flac"
#: Largest |onnx - torch| score difference an fp32 export may show.
EXPORT_TOLERANCE = 1e-4
#: The scores module's front end (the mel normalisation, after the log-mel for waveform input):
#: it stays in float in every int8 model. FRONTEND_SCOPE is its nodes' name scope in ONNX.
FRONTEND_MODULE = "frontend"
FRONTEND_SCOPE = f"/{FRONTEND_MODULE}/"


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_onnx` wrote and how close it is to torch."""

    path: Path
    bundle: ModelBundle
    max_abs_diff: float
    n_windows: int


def _as_mapping(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.to_dict() if isinstance(value, TrackerConfig) else dataclasses.asdict(value)
    return dict(value or {})


def checkpoint_bundle(
    loaded: Any,
    source: str | Path,
    *,
    stream_overrides: Mapping[str, float | None] | None = None,
    input_kind: str = "logmel",
    precision: str = "fp32",
    name: str | None = None,
) -> ModelBundle:
    """The bundle of a loaded checkpoint (``edge_sed.models.checkpoint.LoadedCheckpoint``).

    Stream, tracking rules, metrics and provenance come from the checkpoint's
    ``info`` when present (``stream``, ``tracker``, ``metrics``,
    ``provenance``); *stream_overrides* (``window_s``, ``hop_s``; None = keep)
    override the checkpoint's window and hop. *name* defaults to the checkpoint's file stem.
    """
    info: Mapping[str, Any] = loaded.info or {}
    stream = from_mapping(StreamConfig, _as_mapping(info.get("stream")), where="checkpoint stream")
    stream = resolve(stream, stream_overrides)
    return ModelBundle(
        name=name or Path(source).stem,
        labels=tuple(loaded.labels),
        frontend=loaded.frontend,
        stream=stream,
        tracker=TrackerConfig.from_dict(_as_mapping(info.get("tracker"))),
        input=input_kind,  # type: ignore[arg-type]
        precision=precision,
        architecture=loaded.architecture,
        source_sha256=file_sha256(source),
        metrics=_as_mapping(info.get("metrics")),
        provenance=_as_mapping(info.get("provenance")),
    )


def deployable_model(model: Any) -> Any:
    """*model* in eval mode, PANNs-layout MobileNets re-parameterised to the strided layout.

    The stride-1 conv + average pool of PANNs' MobileNets blocks BatchNorm
    folding; :func:`edge_sed.models.reparam.to_strided` gives the same outputs
    (within 1e-5) with stride-2 convs that fold.
    """
    model = model.eval()
    if getattr(model, "architecture", "").startswith("mobilenet") and not getattr(model, "strided", True):
        from edge_sed.models.reparam import to_strided

        log.info("re-parameterising %s to the strided layout", model.architecture)
        model = to_strided(model).eval()
    return model


def scores_module(model: Any, input_kind: str, output: str = "clipwise_output") -> Any:
    """A ``torch.nn.Module`` mapping one input tensor to ``scores`` (clip-level sigmoid).

    *output* picks another entry of the model's output dict (``"logits"`` for
    quantization-aware fine-tuning, whose loss wants them).

    ``bn0`` becomes a per-mel affine map (:func:`edge_sed.models.reparam.bn0_affine`),
    so the graph has no BatchNorm and no transposes before the first conv. It
    runs as the submodule :data:`FRONTEND_MODULE`, with the log-mel front end
    for ``input_kind="waveform"``, so quantization leaves it in float.
    """
    import torch

    from edge_sed.models.reparam import bn0_affine

    class _MelNorm(torch.nn.Module):
        """(batch, frames, n_mels) -> bn0's output, (batch, 1, frames, n_mels)."""

        def __init__(self) -> None:
            super().__init__()
            scale, shift = bn0_affine(model)
            self.register_buffer("scale", scale)
            self.register_buffer("shift", shift)

        def forward(self, logmel: torch.Tensor) -> torch.Tensor:
            return (logmel * self.scale + self.shift).unsqueeze(1)

    class _ConvPowerSpectrogram(torch.nn.Module):
        """The power spectrogram with PANNs' DFT-kernel convolutions (ONNX has no complex STFT)."""

        def __init__(self, extractor: Any) -> None:
            super().__init__()
            self.extractor = extractor

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            pad = self.extractor.n_fft // 2
            x = torch.nn.functional.pad(waveform[:, None, :], (pad, pad), mode="reflect")
            hop = self.extractor.hop_length
            real = torch.nn.functional.conv1d(x, self.extractor.stft.conv_real.weight, stride=hop)
            imag = torch.nn.functional.conv1d(x, self.extractor.stft.conv_imag.weight, stride=hop)
            return (real**2 + imag**2).transpose(1, 2)

    class _Scores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            if input_kind == "waveform":
                self.frontend = torch.nn.Sequential(
                    _ConvPowerSpectrogram(model.spectrogram_extractor), model.logmel_extractor, _MelNorm()
                )
            else:
                self.frontend = _MelNorm()

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return self.model.forward_normalised(self.frontend(features))[output]

    return _Scores().eval()


def write_onnx_bundle(model_proto: Any, bundle: ModelBundle, path: str | Path) -> None:
    """Store *bundle* under ``metadata_props['edge_sed']`` and save as one file."""
    import onnx

    kept = [prop for prop in model_proto.metadata_props if prop.key != METADATA_KEY]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(kept)
    model_proto.metadata_props.add(key=METADATA_KEY, value=bundle.to_json())
    onnx.save_model(model_proto, str(path), save_as_external_data=False)


def export_onnx(
    checkpoint: str | Path,
    output: str | Path,
    *,
    stream_overrides: Mapping[str, float | None] | None = None,
    in_graph_frontend: bool = False,
    opset: int = DEFAULT_OPSET,
    verify_audio: Sequence[str | Path] = (VERIFY_AUDIO,),
    architecture: str | None = None,
) -> ExportResult:
    """Export a checkpoint to an ONNX fp32 bundle and check it against torch.

    Parameters
    ----------
    checkpoint : official PANNs or edge-sed checkpoint (``.pth``/``.pt``)
    output : the ``.onnx`` file to write
    stream_overrides : ``window_s`` / ``hop_s`` over the checkpoint's (else ``StreamConfig()``'s)
    in_graph_frontend : take ``waveform`` instead of host-computed ``logmel``
    opset : ONNX opset
    verify_audio : real recordings whose windows both runtimes score
    architecture : registry name (default: the checkpoint's, or inferred for PANNs files)

    Raises :class:`ModelError` when ONNX Runtime and torch disagree by more than
    :data:`EXPORT_TOLERANCE`.
    """
    from edge_sed.models.checkpoint import load_checkpoint

    output = onnx_output(output, "ONNX output")
    loaded = load_checkpoint(checkpoint, architecture=architecture)
    return export_loaded(
        loaded, checkpoint, output, stream_overrides=stream_overrides, in_graph_frontend=in_graph_frontend, opset=opset, verify_audio=verify_audio
    )


def onnx_output(path: str | Path, what: str) -> Path:
    """Check that *path* names an ``.onnx`` file and create its folder."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise ConfigError(f"{what} must end in '.onnx', got {str(path)!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder for {str(path)!r} ({exc.strerror})") from None
    return path


def export_loaded(
    loaded: Any,
    checkpoint: str | Path,
    output: Path,
    *,
    stream_overrides: Mapping[str, float | None] | None,
    in_graph_frontend: bool,
    opset: int,
    verify_audio: Sequence[str | Path],
) -> ExportResult:
    """:func:`export_onnx` for a checkpoint already loaded from *checkpoint*."""
    import torch

    from edge_sed.backends import OnnxBackend
    from edge_sed.models.reparam import space_to_depth_stems

    bundle = checkpoint_bundle(
        loaded, checkpoint, stream_overrides=stream_overrides, input_kind="waveform" if in_graph_frontend else "logmel", name=output.stem
    )
    deployable = deployable_model(loaded.model)
    reference = scores_module(deployable, bundle.input)  # what the graph must compute
    stem_input = (bundle.window_frames, bundle.frontend.n_mels)  # ONNX only: LiteRT ran the phased stem 13 % slower
    module = scores_module(space_to_depth_stems(deployable, stem_input), bundle.input)
    windows = np.concatenate([clip_windows(Path(path), bundle) for path in verify_audio])
    example = torch.from_numpy(windows[:1])
    tmp = output.with_name(output.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter warns about constant folding it does anyway; the graph is checked against torch below
        warnings.simplefilter("ignore", UserWarning)
        try:
            torch.onnx.export(
                module,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[bundle.input],
                output_names=["scores"],
                dynamic_axes={bundle.input: {0: "batch"}, "scores": {0: "batch"}},
            )
        except (RuntimeError, ValueError) as exc:
            if "opset" not in str(exc).lower():
                raise
            raise ModelError(f"opset {opset} is not one torch {torch.__version__} exports; the default {DEFAULT_OPSET} works") from None
        expected = reference(torch.from_numpy(windows)).numpy()
    model_proto = _folded(tmp)
    write_onnx_bundle(model_proto, bundle, output)
    backend = OnnxBackend(output)
    got = np.stack([backend(window) for window in windows])
    max_abs_diff = float(np.abs(got - expected).max())
    log.info("export %s: max |onnx - torch| = %.2e over %d windows", output, max_abs_diff, len(windows))
    if not max_abs_diff <= EXPORT_TOLERANCE:
        output.unlink()
        raise ModelError(
            f"ONNX export of {str(checkpoint)!r} differs from torch by {max_abs_diff:.3g} "
            f"(tolerance {EXPORT_TOLERANCE:g}); try another --opset"
        )
    return ExportResult(output, bundle, max_abs_diff, len(windows))


def _folded(path: Path) -> Any:
    """The exported graph at *path* (deleted) with its constant subgraphs folded.

    The TorchScript exporter leaves some constants as chains of ops (``F.pad``
    builds its pads with ConstantOfShape, Slice, Transpose, ...). ONNX Runtime's
    basic optimizations fold them; they are hardware-independent and keep to
    standard ONNX ops.
    """
    import onnx
    import onnxruntime as ort

    folded = path.with_name(path.name + ".folded")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return onnx.load(str(folded))
    finally:
        path.unlink()
        folded.unlink(missing_ok=True)
