"""AudioSet segment lists (``eval_segments.csv``, ...) as labelled clips.

The official format: comment lines starting with ``#``, the last of them
``# YTID, start_seconds, end_seconds, positive_labels``, then one row per
10 s segment, ``--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"``.
Labels are AudioSet mids, mapped to the display names that AudioSet-trained
models carry (:func:`edge_sed.labels.audioset_ontology`).

A segment's audio is the first file found, in the CSV's folder and then in its
``audio/`` subfolder, named (in this order) ``Y{YTID}.wav`` (PANNs' download),
then ``{YTID}.{ext}``, then ``{YTID}_{start in integer ms}.{ext}`` (AudioSet's
segment id), ``ext`` one of wav, flac, ogg, opus. Names must match exactly.
Segments without audio are skipped and counted (YouTube videos go missing).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_sed.errors import ConfigError
from edge_sed.labels import audioset_ontology
from quantize.clips import Clip

__all__ = ["SEGMENTS_HEADER", "Segment", "is_segments_csv", "read_segments", "segment_audio_names", "audioset_clips"]

log = logging.getLogger(__name__)

#: The last comment line of an AudioSet segment list (spaces after commas ignored).
SEGMENTS_HEADER = "# YTID, start_seconds, end_seconds, positive_labels"
#: Audio suffixes tried for ``{YTID}`` and ``{YTID}_{start_ms}``, in order.
_SUFFIXES = (".wav", ".flac", ".ogg", ".opus")


@dataclass(frozen=True, slots=True)
class Segment:
    """One row of a segment list: a 10 s piece of a YouTube video and its AudioSet mids."""

    ytid: str
    start_s: float
    end_s: float
    mids: tuple[str, ...]


def _squeeze(line: str) -> str:
    return ",".join(part.strip() for part in line.strip().split(","))


def is_segments_csv(path: str | Path) -> bool:
    """Whether *path* starts like an AudioSet segment list (comment lines ending in :data:`SEGMENTS_HEADER`)."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                return False
            if _squeeze(line) == _squeeze(SEGMENTS_HEADER):
                return True
    return False


def read_segments(lines: Iterable[str], source: str = "segments") -> list[Segment]:
    """Parse the rows of a segment list (comment and blank lines skipped).

    Parameters
    ----------
    lines : the file's lines (an open file will do)
    source : the file's name for error messages
    """
    segments = []
    rows = csv.reader((line for line in lines if line.strip() and not line.startswith("#")), skipinitialspace=True)
    for row in rows:
        try:
            ytid, start, end, mids = (value.strip() for value in row)
            segments.append(Segment(ytid, float(start), float(end), tuple(mid.strip() for mid in mids.split(",") if mid.strip())))
        except ValueError:
            raise ConfigError(f"{source!r} row {len(segments) + 1}: expected YTID, start_seconds, end_seconds, \"labels\", "
                              f"got {row!r}; give an AudioSet segment list such as eval_segments.csv") from None
    return segments


def segment_audio_names(segment: Segment) -> list[str]:
    """The file names tried for *segment*'s audio, in order (see the module docstring)."""
    start_ms = round(segment.start_s * 1000)
    return [f"Y{segment.ytid}.wav"] + [f"{stem}{suffix}" for stem in (segment.ytid, f"{segment.ytid}_{start_ms}") for suffix in _SUFFIXES]


def _audio_files(folders: Iterable[Path]) -> dict[str, Path]:
    """Every file name in *folders* (not recursive), the first folder winning."""
    files: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                files.setdefault(path.name, path)
    return files


def audioset_clips(path: str | Path) -> list[Clip]:
    """The segments of an AudioSet segment list that have audio, as clips labelled with display names.

    Raises :class:`ConfigError` for an unknown mid or when no segment's audio is found.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        segments = read_segments(fh, str(path))
    mids, names = audioset_ontology()
    name_of = dict(zip(mids, names))
    unknown = sorted({mid for segment in segments for mid in segment.mids if mid not in name_of})
    if unknown:
        raise ConfigError(f"{str(path)!r} has mids that are not AudioSet classes: {', '.join(map(repr, unknown))}; "
                          "check the file is an AudioSet segment list of the 527-class ontology")
    folders = (path.parent, path.parent / "audio")
    files = _audio_files(folders)
    clips = []
    for segment in segments:
        found = next((files[name] for name in segment_audio_names(segment) if name in files), None)
        if found is not None:
            clips.append(Clip(found, tuple(name_of[mid] for mid in segment.mids)))
    if not clips:
        raise ConfigError(f"no audio found for the {len(segments)} segments of {str(path)!r} in {', '.join(map(str, folders))}; "
                          "put Y{YTID}.wav, {YTID}.wav/.flac/.ogg/.opus or {YTID}_{start_ms}.<ext> there")
    if len(clips) < len(segments):
        log.warning("%s: %d of %d segments have no audio; skipped", path, len(segments) - len(clips), len(segments))
    return sorted(clips, key=lambda clip: clip.path)
