"""Inference backends: one small interface over ONNX Runtime, LiteRT/TFLite and
torch checkpoints. The run time imports a runtime only inside the backend that
needs it, and never imports torch unless a torch checkpoint is given.

A backend is a callable: ``backend(features) -> scores`` where ``features`` is
one window as the bundle's ``input`` says (log-mel, shape (frames, n_mels), or
waveform, shape (n_samples,)) and ``scores`` has shape (classes,), float32 in
[0, 1]. ``backend.bundle`` is the model's :class:`~edge_sed.bundle.ModelBundle`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from edge_sed.bundle import ModelBundle, bundle_from_onnx_session, open_onnx_session
from edge_sed.errors import ModelError

__all__ = ["Backend", "OnnxBackend", "load_backend", "BACKEND_SUFFIXES"]


class Backend(Protocol):
    """What every backend offers the pipeline."""

    bundle: ModelBundle

    def __call__(self, features: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


class OnnxBackend:
    """ONNX Runtime on the CPU (fp32 or int8 QDQ models)."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = Path(path)
        self.session = open_onnx_session(self.path, threads)
        self.bundle = bundle_from_onnx_session(self.session, str(self.path))
        self._input = self.session.get_inputs()[0].name
        outputs = [out.name for out in self.session.get_outputs()]
        if "scores" not in outputs:
            raise ModelError(f"{str(self.path)!r} has no 'scores' output (outputs: {', '.join(outputs)})")
        probe = np.zeros((1, *self._window_shape()), dtype=np.float32)
        n_out = self.session.run(["scores"], {self._input: probe})[0].shape[-1]
        if n_out != len(self.bundle.labels):
            raise ModelError(
                f"{str(self.path)!r} outputs {n_out} scores but its metadata lists {len(self.bundle.labels)} labels"
            )

    def _window_shape(self) -> tuple[int, ...]:
        if self.bundle.input == "waveform":
            return (self.bundle.window_samples,)
        return (self.bundle.window_frames, self.bundle.frontend.n_mels)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        batch = np.asarray(features, dtype=np.float32)[None]
        return self.session.run(["scores"], {self._input: batch})[0][0]

    def reset(self) -> None:
        """Stateless model: nothing to reset."""


#: File suffix -> backend, for the error message and :func:`load_backend`.
BACKEND_SUFFIXES = {".onnx": "ONNX Runtime", ".tflite": "LiteRT/TFLite", ".pth": "torch", ".pt": "torch"}


def load_backend(path: str | Path, *, threads: int = 1) -> Backend:
    """Open a model file with the backend its suffix names."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} does not exist")
    if path.suffix == ".onnx":
        return OnnxBackend(path, threads=threads)
    known = ", ".join(f"{suffix} ({name})" for suffix, name in BACKEND_SUFFIXES.items())
    raise ModelError(f"cannot run {str(path)!r}: unknown model suffix {path.suffix!r}; known: {known}")
