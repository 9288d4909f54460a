"""Inference backends: one small interface over ONNX Runtime, LiteRT/TFLite and
torch checkpoints. The run time imports a runtime only inside the backend that
needs it, and never imports torch unless a torch checkpoint is given.

A backend is a callable: ``backend(features) -> scores`` where ``features`` is
one window as the bundle's ``input`` says (log-mel, shape (frames, n_mels), or
waveform, shape (n_samples,)) and ``scores`` has shape (classes,), float32 in
[0, 1]. ``backend.score(windows)`` does the same for a stack of windows in one
call where the runtime allows it (the pipeline scores the hops of one wake-up
so). ``backend.bundle`` is the model's :class:`~edge_sed.bundle.ModelBundle`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_sed.bundle import ModelBundle, bundle_from_onnx_session, open_onnx_session, read_bundle
from edge_sed.errors import MissingDependencyError, ModelError, require, require_file

__all__ = [
    "Backend",
    "OnnxBackend",
    "TFLiteBackend",
    "TorchBackend",
    "load_backend",
    "check_graph",
    "BACKEND_SUFFIXES",
]


class Backend(Protocol):
    """What every backend offers the pipeline."""

    bundle: ModelBundle

    def __call__(self, features: np.ndarray) -> np.ndarray: ...

    def score(self, windows: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


class _StatelessBackend(ABC):
    """What the backends share: one window scored as a stack of one; nothing kept between windows."""

    @abstractmethod
    def score(self, windows: np.ndarray) -> np.ndarray:
        """Scores of a stack of windows, shape (n, classes)."""

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return self.score(np.asarray(features, dtype=np.float32)[None])[0]

    def reset(self) -> None:
        """Stateless model: nothing to reset."""


class OnnxBackend(_StatelessBackend):
    """ONNX Runtime on the CPU (fp32 or int8 QDQ models); *exact*: graph optimizations off
    (:func:`~edge_sed.bundle.open_onnx_session`)."""

    def __init__(self, path: str | Path, *, threads: int = 1, exact: bool = False) -> None:
        self.path = Path(path)
        self.session = open_onnx_session(self.path, threads, exact=exact)
        self.bundle = bundle_from_onnx_session(self.session, str(self.path))
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        names = [out.name for out in outputs]
        if "scores" not in names:
            raise ModelError(f"{str(self.path)!r} has no 'scores' output (outputs: {', '.join(names)})")
        self._input = inputs[0].name
        self._one_per_run = inputs[0].shape[0] == 1  # a graph exported with a fixed batch of one
        check_graph(
            self.bundle,
            str(self.path),
            input_name=self._input,
            input_shape=tuple(inputs[0].shape),
            n_scores=outputs[names.index("scores")].shape[-1],
        )

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Scores of a stack of windows, shape (n, classes): one run, or one per window where the batch is fixed."""
        windows = np.asarray(windows, dtype=np.float32)
        if self._one_per_run and len(windows) != 1:
            return np.concatenate([self.score(window[None]) for window in windows])
        return self.session.run(["scores"], {self._input: windows})[0]


def _window_shape(bundle: ModelBundle) -> tuple[int, ...]:
    """One window as the bundle says the graph takes it (no batch axis)."""
    if bundle.input == "waveform":
        return (bundle.window_samples,)
    return (bundle.window_frames, bundle.frontend.n_mels)


def check_graph(
    bundle: ModelBundle,
    source: str,
    *,
    input_shape: tuple[object, ...],
    n_scores: object,
    input_name: str | None = None,
) -> None:
    """Refuse a model whose graph contradicts its metadata, naming both values.

    Checks the input kind (by name when the graph keeps names, and by rank),
    the window shape of fixed dimensions, and the number of scores against the
    labels. Symbolic dimensions (``"batch"``, None) are not compared.
    """
    expected = _window_shape(bundle)
    if input_name in ("logmel", "waveform") and input_name != bundle.input:
        raise ModelError(f"{source!r}: graph input is {input_name!r} but its metadata says input {bundle.input!r}")
    given = input_shape[1:]
    if len(given) != len(expected):
        kind = {2: "waveform", 3: "logmel"}.get(len(input_shape), f"rank {len(input_shape)}")
        raise ModelError(
            f"{source!r}: graph input has shape {list(input_shape)} ({kind}) but its metadata says input {bundle.input!r}"
        )
    for axis, (got, want) in enumerate(zip(given, expected), start=1):
        if isinstance(got, int) and got > 0 and got != want:
            what = "n_samples" if bundle.input == "waveform" else ("frames", "n_mels")[axis - 1]
            raise ModelError(
                f"{source!r}: graph input has {got} {what} but its metadata implies {want} "
                f"(window {bundle.stream.window_s:g} s at {bundle.frontend.sample_rate} Hz, "
                f"n_mels {bundle.frontend.n_mels}); re-export the model"
            )
    if isinstance(n_scores, int) and n_scores > 0 and n_scores != len(bundle.labels):
        raise ModelError(f"{source!r} outputs {n_scores} scores but its metadata lists {len(bundle.labels)} labels")


def _tflite_interpreter_class() -> type:
    """LiteRT's ``Interpreter``, else tflite-runtime's; never a silent switch to ONNX."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise MissingDependencyError(
                "TFLite model given but neither ai-edge-litert nor tflite-runtime is installed; running it",
                "tflite",
            ) from None
    return Interpreter


class TFLiteBackend(_StatelessBackend):
    """LiteRT (ai-edge-litert, or tflite-runtime) on the CPU; metadata in the sidecar JSON.

    Full-int8 models with int8 input/output tensors are fed and read through
    their quantization parameters, so the call contract is the same float one.
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = Path(path)
        self.bundle = read_bundle(self.path)
        interpreter_class = _tflite_interpreter_class()
        try:
            self.interpreter = interpreter_class(model_path=str(self.path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load {str(self.path)!r} as a TFLite model ({exc})") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"{str(self.path)!r} has {len(inputs)} inputs and {len(outputs)} outputs; edge-sed models have one each"
            )
        self._input, self._output = inputs[0], outputs[0]
        check_graph(
            self.bundle,
            str(self.path),
            input_shape=tuple(int(d) for d in self._input["shape"]),
            n_scores=int(self._output["shape"][-1]),
        )

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Scores of a stack of windows, shape (n, classes): one invoke per window (the graph's batch is one)."""
        return np.concatenate([self._invoke(window[None]) for window in np.asarray(windows, dtype=np.float32)])

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input["index"], _quantize(batch, self._input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)


def _quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return values
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if values.dtype == np.float32:
        return values
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


class TorchBackend(_StatelessBackend):
    """A torch checkpoint (official PANNs or edge-sed), for parity checks and development.

    Needs the ``[train]`` extra; torch is imported here only. The bundle comes
    from the checkpoint (labels, front end, its ``info``), input ``logmel``.
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        torch = require("torch", what="running a torch checkpoint", extra="train")
        from edge_sed.models.checkpoint import load_checkpoint
        from quantize.export import checkpoint_bundle

        self.path = Path(path)
        torch.set_num_threads(threads)
        loaded = load_checkpoint(self.path)
        self.model = loaded.model.eval()
        self.bundle = checkpoint_bundle(loaded, self.path)
        self._torch = torch

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Scores of a stack of windows, shape (n, classes), in one forward."""
        batch = self._torch.from_numpy(np.asarray(windows, dtype=np.float32))
        with self._torch.no_grad():
            return self.model.forward_logmel(batch)["clipwise_output"].numpy()


#: File suffix -> backend, for the error message and :func:`load_backend`.
BACKEND_SUFFIXES = {".onnx": "ONNX Runtime", ".tflite": "LiteRT/TFLite", ".pth": "torch", ".pt": "torch"}
_BACKEND_CLASSES: dict[str, type] = {
    ".onnx": OnnxBackend,
    ".tflite": TFLiteBackend,
    ".pth": TorchBackend,
    ".pt": TorchBackend,
}


def load_backend(path: str | Path, *, threads: int = 1) -> Backend:
    """Open a model file with the backend its suffix names."""
    path = Path(path)
    require_file(path, "model file", ModelError)
    backend_class = _BACKEND_CLASSES.get(path.suffix)
    if backend_class is not None:
        return backend_class(path, threads=threads)
    known = ", ".join(f"{suffix} ({name})" for suffix, name in BACKEND_SUFFIXES.items())
    raise ModelError(f"cannot run {str(path)!r}: unknown model suffix {path.suffix!r}; known: {known}")
