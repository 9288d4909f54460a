"""Reading, converting and writing audio: one place that turns files into float32
mono at the model's rate, refuses what cannot be used with one clear line, and
writes files whole or not at all."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from edge_sed.errors import AudioInputError, require_file
from edge_sed.files import replaced_whole

__all__ = ["read_audio", "open_sound_file", "write_audio", "read_warning_summary", "narrow_band_note", "to_mono", "resample", "check_finite", "CLIP_LEVEL", "RESAMPLE_QUALITY", "INT16_FULL_SCALE"]

log = logging.getLogger(__name__)

#: Samples at or above this magnitude count as clipped.
CLIP_LEVEL = 0.999
#: The int16 sample value that maps to 1.0 (raw PCM on stdin, PCM frames from an MCU).
INT16_FULL_SCALE = 32768.0
#: soxr quality of every resampling in edge-sed (files here, streams in the sources), so all paths agree.
RESAMPLE_QUALITY = "HQ"


@dataclass(slots=True)
class _ReadTally:
    pid: int = field(default_factory=os.getpid)  # a forked worker (DataLoader) warns for itself
    files: set[str] = field(default_factory=set)
    clipped: dict[str, int] = field(default_factory=dict)  # path -> clipped samples
    narrow: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (its rate, the rate it is read at)


_tally: contextvars.ContextVar[_ReadTally | None] = contextvars.ContextVar("read_tally", default=None)


def _active_tally() -> _ReadTally | None:
    tally = _tally.get()
    return tally if tally is not None and tally.pid == os.getpid() else None


def narrow_band_note(rate: int, target_rate: int) -> str:
    """What a warning says of audio sampled at *rate*, below the *target_rate* it is used at:
    resampling up adds no sound above ``rate / 2``."""
    return f"it has no sound above {rate / 2000:g} kHz, and scores may suffer; record at {target_rate} Hz or more where you can"


@contextlib.contextmanager
def read_warning_summary(what: str = "audio files") -> Iterator[None]:
    """Inside the block, :func:`read_audio` counts clipped files, and files sampled below the
    rate they are read at, instead of warning for each; at the end one warning for each kind
    says how many of *what* it holds (the worst one named).

    For loops over many files (calibration, evaluation, soundscape synthesis), where one
    line per file would bury everything else. Nested blocks report once, in the outermost.
    """
    if _active_tally() is not None:
        yield
        return
    tally = _ReadTally()
    token = _tally.set(tally)
    try:
        yield
    finally:
        _tally.reset(token)
        if tally.clipped:
            worst = max(tally.clipped, key=tally.clipped.__getitem__)
            log.warning(
                "%d of %d %s have clipped samples (|x| >= %.3f; most: %s, %d samples); detection may suffer",
                len(tally.clipped), len(tally.files), what, CLIP_LEVEL, worst, tally.clipped[worst],
            )
        if tally.narrow:
            narrowest = min(tally.narrow, key=tally.narrow.__getitem__)
            rate, target_rate = tally.narrow[narrowest]
            log.warning(
                "%d of %d %s are sampled below the rate they are read at (lowest: %s, %d Hz, read at %d Hz): "
                "they have no sound above half their rate, and scores may suffer (a model trained on them may "
                "take the empty band for a cue)",
                len(tally.narrow), len(tally.files), what, narrowest, rate, target_rate,
            )


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Down-mix shape (n,) or (n, channels) to (n,) float32 by averaging channels."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return samples
    return samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample mono float32 audio with soxr (the same resampler the streaming sources use)."""
    if orig_rate == target_rate:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(np.asarray(samples, dtype=np.float32), orig_rate, target_rate, quality=RESAMPLE_QUALITY)


def check_finite(samples: np.ndarray, source: str) -> None:
    """Raise :class:`AudioInputError` if *samples* holds NaN or Inf."""
    if not np.isfinite(samples).all():
        bad = int(np.size(samples) - np.count_nonzero(np.isfinite(samples)))
        raise AudioInputError(f"{source!r} contains {bad} NaN/Inf samples; re-export it as finite PCM or float audio")


def open_sound_file(path: str | Path) -> sf.SoundFile:
    """An open :class:`soundfile.SoundFile` with at least one frame, or one clear :class:`AudioInputError`.

    A pipe (``cat x.flac | edge-sed tag /dev/stdin ...``) cannot seek, which libsndfile
    needs for FLAC and OGG: its bytes are read into memory first.
    """
    path = Path(path)
    require_file(path, "audio file", AudioInputError)
    try:
        handle = sf.SoundFile(str(path) if path.is_file() else io.BytesIO(path.read_bytes()))
    except PermissionError:
        raise AudioInputError(f"cannot read {str(path)!r}: permission denied") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioInputError(f"cannot read {str(path)!r} as audio ({_reason(exc)}); use WAV, FLAC or OGG/Opus") from None
    if handle.frames == 0:
        handle.close()
        raise AudioInputError(f"audio file {str(path)!r} is empty (0 samples)")
    return handle


def _reason(exc: Exception) -> str:
    """libsndfile's reason, without soundfile's "Error opening <file>: " before it."""
    return re.sub(r"^Error opening .*?: (Error : )?", "", str(exc))


def read_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 mono, resampled to *sample_rate* if given.

    Returns
    -------
    samples : ndarray, shape (n,), float32
    sample_rate : int
        The rate of ``samples`` (the file's own when *sample_rate* is None).

    Raises :class:`AudioInputError` for missing, unreadable, corrupt, empty or
    non-finite audio. Clipping, and a rate below *sample_rate* (resampling up adds no
    sound above half the file's rate), are logged, not refused (summed up under
    :func:`read_warning_summary`).
    """
    with open_sound_file(path) as handle:
        try:
            data, rate = handle.read(dtype="float32", always_2d=True), handle.samplerate
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioInputError(f"cannot read {str(path)!r} as audio ({_reason(exc)})") from None
    if data.shape[0] == 0:  # a header that promised more than the file holds
        raise AudioInputError(f"audio file {str(path)!r} is empty (0 samples)")
    check_finite(data, str(path))
    clipped = int(np.count_nonzero(np.abs(data) >= CLIP_LEVEL))
    narrow = sample_rate is not None and rate < sample_rate
    tally = _active_tally()
    if tally is not None:
        tally.files.add(str(path))
        if clipped:
            tally.clipped[str(path)] = clipped
        if narrow:
            tally.narrow[str(path)] = (rate, sample_rate)
    else:
        if clipped:
            log.warning("%s: %d clipped samples (|x| >= %.3f); detection may suffer", path, clipped, CLIP_LEVEL)
        if narrow:
            log.warning("%s is sampled at %d Hz, below the %d Hz it is read at: %s",
                        path, rate, sample_rate, narrow_band_note(rate, sample_rate))
    samples = to_mono(data)
    if sample_rate is not None and rate != sample_rate:
        samples, rate = resample(samples, rate, sample_rate), sample_rate
    return samples, rate


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM audio, format from the suffix (``.flac``, ``.wav``), whole or not at all.

    It goes to a hidden file beside *path*, moved over *path* once complete
    (:func:`edge_sed.files.replaced_whole`). When the disk is full (libsndfile says only
    "System error.") :class:`OSError` names *path*, and no partial file is left.
    """
    path = Path(path)
    with replaced_whole(path) as (partial,):
        try:
            sf.write(partial, samples, sample_rate, subtype="PCM_16", format=path.suffix[1:].upper())
        except RuntimeError as exc:  # soundfile's LibsndfileError
            raise OSError(errno.EIO, f"cannot write audio ({exc} Is the disk full?)", str(path)) from None
