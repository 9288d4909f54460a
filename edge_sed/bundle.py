"""The model bundle: one deployable model file that carries its own metadata.

An ONNX bundle stores the metadata as JSON under the ``edge_sed`` key of the
model's ``metadata_props``; a TFLite bundle stores it in a sidecar
``<model>.tflite.json``. The metadata holds everything the run time needs:
labels, the front end, window and hop, per-class tracking rules, and the
model's provenance and metrics. A model file without it, or whose metadata
contradicts itself, is refused with one clear line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_sed.config import FrontendConfig, StreamConfig, TrackerConfig, from_mapping
from edge_sed.errors import ConfigError, ModelError, require_file

__all__ = [
    "BUNDLE_FORMAT_VERSION",
    "METADATA_KEY",
    "ModelBundle",
    "read_bundle",
    "bundle_from_onnx_session",
    "open_onnx_session",
    "sidecar_path",
    "file_sha256",
]

BUNDLE_FORMAT_VERSION = 1
METADATA_KEY = "edge_sed"

InputKind = Literal["logmel", "waveform"]


@dataclass(frozen=True, slots=True)
class ModelBundle:
    """What a deployable model needs besides its weights.

    ``input`` says what the graph takes: ``"logmel"`` (the default; shape
    (batch, frames, n_mels), computed on the host) or ``"waveform"`` (shape
    (batch, n_samples), front end in the graph). The graph's output is
    ``scores``, shape (batch, classes), probabilities in [0, 1].
    """

    name: str
    labels: tuple[str, ...]
    frontend: FrontendConfig
    stream: StreamConfig = StreamConfig()
    tracker: TrackerConfig = TrackerConfig()
    input: InputKind = "logmel"
    precision: str = "fp32"
    architecture: str = ""
    source_sha256: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = BUNDLE_FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.labels:
            raise ModelError(f"model bundle {self.name!r} has no labels")
        if len(set(self.labels)) != len(self.labels):
            raise ModelError(f"model bundle {self.name!r} has duplicate labels")
        if self.input not in ("logmel", "waveform"):
            raise ModelError(f"model bundle {self.name!r}: input must be 'logmel' or 'waveform', got {self.input!r}")

    @property
    def window_samples(self) -> int:
        """Samples in one analysis window at the model's rate."""
        return round(self.stream.window_s * self.frontend.sample_rate)

    @property
    def window_frames(self) -> int:
        """Log-mel frames in one analysis window (as the graph expects them)."""
        return self.frontend.n_frames(self.window_samples)

    def to_json(self) -> str:
        """The metadata as one JSON string (what goes into the model file)."""
        data = {
            "format_version": self.format_version,
            "name": self.name,
            "labels": list(self.labels),
            "frontend": dataclasses.asdict(self.frontend),
            "stream": dataclasses.asdict(self.stream),
            "tracker": self.tracker.to_dict(),
            "input": self.input,
            "precision": self.precision,
            "architecture": self.architecture,
            "source_sha256": self.source_sha256,
            "metrics": self.metrics,
            "provenance": self.provenance,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str = "model") -> ModelBundle:
        """Parse metadata written by :meth:`to_json`; refuse anything else clearly."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: edge-sed metadata is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ModelError(f"{source}: edge-sed metadata must be a JSON object")
        version = data.get("format_version")
        if version != BUNDLE_FORMAT_VERSION:
            raise ModelError(
                f"{source}: bundle format version {version!r} is not supported "
                f"(this edge-sed reads version {BUNDLE_FORMAT_VERSION}); re-export the model"
            )
        missing = [key for key in ("name", "labels", "frontend") if key not in data]
        if missing:
            raise ModelError(f"{source}: edge-sed metadata lacks {', '.join(missing)}; re-export the model")
        try:
            return cls(
                name=str(data["name"]),
                labels=tuple(str(label) for label in data["labels"]),
                frontend=from_mapping(FrontendConfig, data["frontend"], where="frontend"),
                stream=from_mapping(StreamConfig, data.get("stream", {}), where="stream"),
                tracker=TrackerConfig.from_dict(data.get("tracker", {})),
                input=data.get("input", "logmel"),
                precision=str(data.get("precision", "fp32")),
                architecture=str(data.get("architecture", "")),
                source_sha256=str(data.get("source_sha256", "")),
                metrics=dict(data.get("metrics", {})),
                provenance=dict(data.get("provenance", {})),
                format_version=version,
            )
        except ConfigError as exc:
            raise ModelError(f"{source}: invalid edge-sed metadata: {exc}") from None


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (how a bundle names its source checkpoint)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    """Where a non-ONNX model keeps its metadata: ``<model>.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def read_bundle(path: str | Path) -> ModelBundle:
    """Read a model file's edge-sed metadata (ONNX metadata_props or sidecar JSON)."""
    path = Path(path)
    require_file(path, "model file", ModelError)
    if path.suffix == ".onnx":
        return bundle_from_onnx_session(open_onnx_session(path), str(path))
    if path.suffix != ".tflite":
        raise ModelError(
            f"{str(path)!r} is not a model bundle (suffix {path.suffix!r}); give an .onnx file, "
            "or a .tflite with its .tflite.json beside it, as 'edge-sed export' and 'edge-sed quantize' write them"
        )
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise ModelError(
            f"{str(path)!r} has no edge-sed metadata (expected {sidecar.name!r} beside it); "
            "make it with 'edge-sed quantize ... --tflite'"
        )
    return ModelBundle.from_json(sidecar.read_text(encoding="utf-8"), source=str(path))


def bundle_from_onnx_session(session: Any, source: str) -> ModelBundle:
    """The bundle stored in an open ``onnxruntime.InferenceSession``."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ModelError(f"{source!r} is an ONNX model without edge-sed metadata; export it with 'edge-sed export'")
    return ModelBundle.from_json(text, source=source)


def open_onnx_session(path: str | Path, threads: int = 1, *, exact: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU with *threads* intra-op threads.

    *exact* turns graph optimizations off, so the graph runs as written: an int8
    QDQ graph then computes in float between its QuantizeLinear and
    DequantizeLinear nodes, the reference its fused int8 kernels are checked against.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if exact:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelError(f"cannot load {str(path)!r} as an ONNX model ({exc})") from None
