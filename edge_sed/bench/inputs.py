"""Where benchmarks find their audio: the shared ESC-50 folder and real 1 s windows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_sed.audio import read_audio
from edge_sed.errors import AudioInputError
from edge_sed.soundscape import ESC50_HELD_OUT_FOLD

__all__ = [
    "DATA_ENV",
    "ESC50_HELD_OUT_FOLD",
    "DEMO_AUDIO",
    "SHIPPED_MODEL",
    "shared_data_dir",
    "default_esc50_dir",
    "default_audio",
    "real_windows",
]

#: Environment variable naming the shared data folder (default: ``../shared/data`` beside the checkout).
DATA_ENV = "EDGE_SED_DATA"
ESC50_FOLDER = "esc50-subset"
#: The demo recording shipped with the package, the default audio of speed measurements.
DEMO_AUDIO = Path(__file__).resolve().parents[1] / "assets" / "demo.flac"
#: The shipped default model (int8 ONNX bundle), benchmarked beside the zoo when present.
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "assets" / "default.onnx"


def shared_data_dir() -> Path:
    """``$EDGE_SED_DATA``, else the ``shared/data`` folder beside the repository checkout."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def default_esc50_dir() -> Path:
    """The ESC-50 folder benchmarks evaluate on unless told otherwise."""
    return shared_data_dir() / ESC50_FOLDER


def default_audio() -> Path:
    """The shipped demo recording, else the first clip of ESC-50's held-out fold."""
    if DEMO_AUDIO.is_file():
        return DEMO_AUDIO
    clips = sorted((default_esc50_dir() / "audio").glob(f"{ESC50_HELD_OUT_FOLD}-*.flac"))
    if clips:
        return clips[0]
    raise AudioInputError(
        f"no default audio: neither {str(DEMO_AUDIO)!r} nor ESC-50 under {str(default_esc50_dir())!r}; "
        f"give --audio FILE or set {DATA_ENV}"
    )


def real_windows(path: str | Path, *, sample_rate: int, window_s: float, count: int) -> np.ndarray:
    """Up to *count* consecutive windows of a real recording (repeated if it is short).

    Returns
    -------
    ndarray, shape (count, round(window_s * sample_rate)), float32
    """
    samples, _ = read_audio(path, sample_rate)
    n_window = round(window_s * sample_rate)
    needed = n_window * count
    tiled = np.resize(samples, max(needed, samples.size))  # repeats a short recording
    return np.ascontiguousarray(tiled[:needed].reshape(count, n_window), dtype=np.float32)
