"""Real audio for calibration, verification and evaluation: clip lists and model windows.

A clip source is a folder (every audio file in it, unlabelled) or a CSV with a
``filename`` column (paths relative to the CSV) and, optionally, ``label`` (or
``category``) and ``fold`` columns, as ``esc50-subset/metadata.csv`` has, or an
AudioSet segment list (``eval_segments.csv``, multi-label; see :mod:`quantize.audioset`),
told apart by its header.
Windows are cut the way the run time cuts them: the log-mel of the whole clip
(:class:`edge_sed.frontend.LogMel`) sliced into ``window_frames`` frames every
hop, or raw samples for models with the front end in the graph.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_sed.audio import read_audio, read_warning_summary
from edge_sed.bundle import ModelBundle
from edge_sed.errors import ConfigError
from edge_sed.frontend import LogMel

__all__ = ["ACTIVATION_RANGES", "AUDIO_SUFFIXES", "CALIBRATION_WINDOWS", "Clip", "list_clips", "model_windows", "clip_windows", "calibration_windows"]

#: File suffixes taken from a clip folder.
AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".opus")
#: Calibration windows drawn by default. With 256, the LiteRT int8 mAP of the shipped model's
#: checkpoint moved by 1.2 % from calibration draw alone; with 1024 neither int8 model lost any.
CALIBRATION_WINDOWS = 1024
#: How both int8 runtimes set each activation's range from the calibration windows (recorded in
#: the int8 bundle's provenance): the same statistic, so that their int8 models agree.
ACTIVATION_RANGES = "min/max over the calibration windows"


@dataclass(frozen=True, slots=True)
class Clip:
    """One audio file, with its labels when the source has them (one per ESC-50 clip,
    several per AudioSet clip). ``Clip(path, "dog")`` is ``Clip(path, ("dog",))``."""

    path: Path
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.labels, str):
            object.__setattr__(self, "labels", (self.labels,))


def list_clips(source: str | Path, *, fold: int | None = None) -> list[Clip]:
    """The clips of a folder or a CSV, sorted by path.

    Parameters
    ----------
    source : folder, ``.csv`` file or AudioSet segment list
    fold : keep only the CSV rows of this ``fold`` (e.g. ESC-50's held-out fold);
        AudioSet segment lists have no folds
    """
    from quantize.audioset import audioset_clips, is_segments_csv

    source = Path(source)
    if not source.exists():
        raise ConfigError(f"clip source {str(source)!r} does not exist; give a folder of audio or a .csv of clips")
    if source.is_dir():
        if fold is not None:
            raise ConfigError(f"fold={fold!r} needs a CSV with a 'fold' column, got the folder {str(source)!r}")
        clips = [Clip(path) for path in sorted(source.rglob("*")) if path.suffix.lower() in AUDIO_SUFFIXES]
    elif source.is_file() and source.suffix.lower() == ".csv" and is_segments_csv(source):
        if fold is not None:
            raise ConfigError(f"fold={fold!r} given but the AudioSet segment list {str(source)!r} has no folds; leave the fold out (or 0)")
        clips = audioset_clips(source)
    elif source.is_file() and source.suffix.lower() == ".csv":
        clips = _clips_from_csv(source, fold)
    else:
        raise ConfigError(f"clip source {str(source)!r} is neither a folder nor a .csv file")
    if not clips:
        raise ConfigError(f"clip source {str(source)!r} holds no audio ({', '.join(AUDIO_SUFFIXES)})")
    return clips


def _clips_from_csv(path: Path, fold: int | None) -> list[Clip]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    columns = set(rows[0]) if rows else set()
    if "filename" not in columns:
        raise ConfigError(f"{str(path)!r} has no 'filename' column (columns: {', '.join(sorted(columns)) or 'none'})")
    if fold is not None:
        if "fold" not in columns:
            raise ConfigError(f"fold={fold!r} given but {str(path)!r} has no 'fold' column")
        folds = sorted({int(row["fold"]) for row in rows})
        if fold not in folds:
            raise ConfigError(f"{str(path)!r} has no clips in fold {fold}; its folds: {', '.join(map(str, folds))}")
    label_column = next((name for name in ("label", "category") if name in columns), None)
    return sorted(
        (
            Clip(path.parent / row["filename"], (row[label_column],) if label_column else ())
            for row in rows
            if fold is None or int(row["fold"]) == fold
        ),
        key=lambda clip: clip.path,
    )


def model_windows(samples: np.ndarray, bundle: ModelBundle, logmel: LogMel | None = None) -> np.ndarray:
    """Cut one clip into model inputs, one window every hop.

    Parameters
    ----------
    samples : ndarray, shape (n_samples,), at ``bundle.frontend.sample_rate``
    bundle : what the model takes (``input``, window, hop, front end)
    logmel : a :class:`LogMel` for ``bundle.frontend`` to reuse (made if None)

    Returns
    -------
    ndarray, shape (n_windows, window_frames, n_mels) or (n_windows, window_samples), float32
        A clip shorter than one window is zero-padded to one window.
    """
    n_window = bundle.window_samples
    hop_samples = round(bundle.stream.hop_s * bundle.frontend.sample_rate)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size < n_window:
        samples = np.pad(samples, (0, n_window - samples.size))
    starts = range(0, samples.size - n_window + 1, hop_samples)
    if bundle.input == "waveform":
        return np.stack([samples[start : start + n_window] for start in starts])
    features = (logmel or LogMel(bundle.frontend))(samples)
    hop_length = bundle.frontend.hop_length
    return np.stack([features[start // hop_length : start // hop_length + bundle.window_frames] for start in starts])


def clip_windows(clip: Clip | Path, bundle: ModelBundle, logmel: LogMel | None = None) -> np.ndarray:
    """Read a clip at the model's rate and cut it with :func:`model_windows`."""
    path = clip.path if isinstance(clip, Clip) else Path(clip)
    samples, _ = read_audio(path, bundle.frontend.sample_rate)
    return model_windows(samples, bundle, logmel)


@read_warning_summary("calibration clips")
def calibration_windows(clips: list[Clip], bundle: ModelBundle, *, max_windows: int = CALIBRATION_WINDOWS, seed: int = 0) -> np.ndarray:
    """Up to *max_windows* model inputs drawn evenly from *clips* (a fixed random pick).

    Returns
    -------
    ndarray, shape (n, ...) float32, the model input shape without the batch axis.
    """
    logmel = LogMel(bundle.frontend)
    windows = np.concatenate([clip_windows(clip, bundle, logmel) for clip in clips])
    if len(windows) > max_windows:
        keep = np.sort(np.random.default_rng(seed).choice(len(windows), max_windows, replace=False))
        windows = windows[keep]
    return windows
