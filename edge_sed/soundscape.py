"""Synthetic soundscapes with known onsets, built from real recordings.

Event clips (ESC-50 clips, spoken digits, speech and music excerpts) are cut to
their active part by an energy criterion and placed over real background
ambiences at chosen signal-to-noise ratios. Each soundscape is written as FLAC,
with one DCASE-style TSV (``filename onset offset event_label``) for the set.

Which recordings belong to which split is fixed here, so nothing held out
leaks into training or threshold tuning:

- ESC-50: folds 1-3 ``train``, fold 4 ``validation``, fold 5 ``test``
  (:data:`ESC50_FOLD_SPLITS`).
- FSDD digits (label ``speech``): by speaker (:data:`FSDD_SPEAKER_SPLITS`).
- librosa example recordings: by file (:data:`LIBROSA_SPLITS`).
- Backgrounds: by file (:data:`BACKGROUND_SPLITS`; every other file is ``train``).

Everything is deterministic given a seed. Only numpy and soundfile are used.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence, TypeVar

import numpy as np

from edge_sed.audio import read_audio, read_warning_summary, write_audio
from edge_sed.errors import AudioInputError, ConfigError

T = TypeVar("T")

__all__ = [
    "ESC50_HELD_OUT_FOLD",
    "SPLITS",
    "SAMPLE_RATE",
    "ESC50_FOLD_SPLITS",
    "FSDD_SPEAKER_SPLITS",
    "LIBROSA_SPLITS",
    "BACKGROUND_SPLITS",
    "EventSource",
    "Background",
    "Catalog",
    "SoundscapeConfig",
    "PlacedEvent",
    "Soundscape",
    "active_region",
    "load_catalog",
    "compose",
    "synthesize",
    "synthesize_set",
    "write_soundscape_set",
]

log = logging.getLogger(__name__)

Split = Literal["train", "validation", "test"]
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Every recording in the shared data, and every soundscape, is 16 kHz mono.
SAMPLE_RATE = 16000
#: The longest soundscape (an hour: 115 MB of float32 samples).
MAX_SOUNDSCAPE_S = 3600.0
#: The widest event-to-background ratio, either way.
MAX_SNR_DB = 60.0

#: The ESC-50 fold held out from training, calibration and tuning (the project's test fold).
ESC50_HELD_OUT_FOLD = 5
#: ESC-50 official folds -> split.
ESC50_FOLD_SPLITS: dict[int, Split] = {1: "train", 2: "train", 3: "train", 4: "validation", ESC50_HELD_OUT_FOLD: "test"}
#: FSDD speakers -> split (label ``speech``); a speaker never crosses splits.
FSDD_SPEAKER_SPLITS: dict[str, Split] = {
    "george": "train",
    "jackson": "train",
    "lucas": "train",
    "nicolas": "train",
    "theo": "validation",
    "yweweler": "test",
}
#: librosa example recordings used as events: file stem -> (label, split).
#: ``humpback`` and ``pibble`` are not used (no matching class / too little).
LIBROSA_SPLITS: dict[str, tuple[str, Split]] = {
    "libri1": ("speech", "train"),
    "libri2": ("speech", "validation"),
    "libri3": ("speech", "test"),
    "nutcracker": ("music", "train"),
    "fishin": ("music", "train"),
    "pistachio": ("music", "train"),
    "brahms": ("music", "train"),
    "choice": ("music", "validation"),
    "sweetwaltz": ("music", "validation"),
    "trumpet": ("music", "validation"),
    "vibeace": ("music", "test"),
    "robin": ("chirping_birds", "test"),
}
#: Background files (stem) held out of training; all others are ``train``.
BACKGROUND_SPLITS: dict[str, Split] = {
    "megaglest__spring_day": "validation",
    "megaglest__mediterran_night": "validation",
    "megaglest__autumn_rain": "validation",
    "lincity__Green2": "validation",
    "lincity__Harbor2": "validation",
    "lincity__MarketMed1": "validation",
    "lincity__ResidentialMed2": "validation",
    "lincity__School2": "validation",
    "lincity__TraficHigh2": "validation",
    "simutrans__usr_share_games_simutrans_pak_sound_desert": "validation",
    "megaglest__mediterran_desertday": "test",
    "megaglest__fernland_day": "test",
    "megaglest__desert2_night": "test",
    "megaglest__winter_wind": "test",
    "lincity__Green3": "test",
    "lincity__Harbor3": "test",
    "lincity__MarketLow1": "test",
    "lincity__ResidentialHigh3": "test",
    "lincity__School3": "test",
    "lincity__TraficLow3": "test",
    "simutrans__usr_share_games_simutrans_pak_sound_Water": "test",
}
#: Background descriptions naming sounds that are classes of the vocabulary
#: (rain, wind, crickets/insects, birds): such ambiences would hold unlabelled
#: events, so soundscapes leave them out unless asked otherwise.
LABELLED_AMBIENCE_WORDS = ("rain", "wind", "insect", "cricket", "bird", "seagull")

#: Frame length of the energy criterion.
ACTIVITY_FRAME_S = 0.02
#: A frame is active when its level is within this many dB of the loudest frame ...
ACTIVITY_RANGE_DB = 30.0
#: ... and this many dB above the clip's quiet floor (10th percentile), unless
#: the loudest frame is less than ACTIVITY_STATIONARY_DB above that floor
#: (rain, engines, wind: the whole clip is the event).
ACTIVITY_ABOVE_FLOOR_DB = 6.0
ACTIVITY_STATIONARY_DB = 12.0
#: Silences shorter than this are part of the event.
ACTIVITY_MERGE_GAP_S = 0.5
#: Spoken digits joined into one ``speech`` event, and the pause between them.
DIGITS_PER_UTTERANCE = 4
DIGIT_PAUSE_S = 0.12
#: Long recordings (speech, music) are cut into excerpts of this length.
EXCERPT_S = 4.0
_PEAK_LIMIT = 0.98


@dataclass(frozen=True, slots=True)
class EventSource:
    """One event recording: ``paths`` played one after another (with a short
    pause), or the excerpt ``start_s``..``stop_s`` of a single long file."""

    label: str
    paths: tuple[Path, ...]
    split: Split
    start_s: float = 0.0
    stop_s: float | None = None

    @property
    def name(self) -> str:
        """A short name for logs and metadata."""
        stem = "+".join(path.stem for path in self.paths)
        return stem if self.stop_s is None else f"{stem}@{self.start_s:g}-{self.stop_s:g}"

    def load(self) -> np.ndarray:
        """The audio, trimmed to its active region; shape (n,), float32 at 16 kHz (read-only, cached)."""
        return _load_trimmed(self)


@functools.lru_cache(maxsize=256)
def _load_trimmed(source: EventSource) -> np.ndarray:
    pause = np.zeros(round(DIGIT_PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    for path in source.paths:
        samples, _ = read_audio(path, SAMPLE_RATE)
        if source.stop_s is not None:
            samples = samples[round(source.start_s * SAMPLE_RATE) : round(source.stop_s * SAMPLE_RATE)]
        start, stop = active_region(samples, SAMPLE_RATE)
        parts += [samples[start:stop], pause]
    audio = np.concatenate(parts[:-1])
    audio.flags.writeable = False
    return audio


@dataclass(frozen=True, slots=True)
class Background:
    """One background ambience recording."""

    path: Path
    description: str
    split: Split

    @property
    def holds_labelled_sounds(self) -> bool:
        """True when the description names a sound of the vocabulary (rain, birds, ...)."""
        return any(word in self.description.lower() for word in LABELLED_AMBIENCE_WORDS)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every event source and background of the shared data, with its split."""

    events: tuple[EventSource, ...]
    backgrounds: tuple[Background, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The event labels, in order of first appearance."""
        return tuple(dict.fromkeys(source.label for source in self.events))

    def events_in(self, split: str, labels: Iterable[str] | None = None) -> tuple[EventSource, ...]:
        """Event sources of *split*, optionally only those with one of *labels*."""
        _check_split(split)
        wanted = None if labels is None else set(labels)
        return tuple(s for s in self.events if s.split == split and (wanted is None or s.label in wanted))

    def backgrounds_in(self, split: str, *, labelled_ambiences: bool = False) -> tuple[Background, ...]:
        """Backgrounds of *split*; those holding vocabulary sounds only if asked."""
        _check_split(split)
        return tuple(
            b for b in self.backgrounds if b.split == split and (labelled_ambiences or not b.holds_labelled_sounds)
        )


@dataclass(frozen=True, slots=True)
class SoundscapeConfig:
    """How one soundscape is built.

    Events are placed one after another with random gaps (``overlap=False``)
    or at uniformly random onsets (``overlap=True``). Each event's level is
    set so that its active RMS is ``snr_db`` above the background RMS under it.
    """

    duration_s: float = 20.0
    min_events: int = 3
    max_events: int = 6
    snr_db: tuple[float, float] = (0.0, 20.0)
    overlap: bool = False
    min_gap_s: float = 0.5
    max_event_s: float = 5.0
    background_dbfs: float = -40.0
    labelled_ambiences: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= MAX_SOUNDSCAPE_S:
            raise ConfigError(f"duration_s must be between 0 and {MAX_SOUNDSCAPE_S:g} s, got {self.duration_s!r}")
        if not 1 <= self.min_events <= self.max_events:
            raise ConfigError(
                f"need 1 <= min_events <= max_events, got {self.min_events!r}, {self.max_events!r}"
            )
        low, high = self.snr_db
        if not -MAX_SNR_DB <= low <= high <= MAX_SNR_DB:
            raise ConfigError(f"snr_db must be (low, high) with {-MAX_SNR_DB:g} <= low <= high <= {MAX_SNR_DB:g} dB, got {self.snr_db!r}")
        if not (0 <= self.min_gap_s < math.inf and 0 < self.max_event_s < math.inf):
            raise ConfigError(
                f"need min_gap_s >= 0 and max_event_s > 0, got {self.min_gap_s!r}, {self.max_event_s!r}"
            )
        if self.background_dbfs >= 0:
            raise ConfigError(f"background_dbfs must be below 0 dBFS, got {self.background_dbfs!r}")


@dataclass(frozen=True, slots=True)
class PlacedEvent:
    """One event in a soundscape: where it is and what it was made from."""

    label: str
    onset: float
    offset: float
    snr_db: float
    source: str


@dataclass(frozen=True, slots=True)
class Soundscape:
    """A synthesised recording and its ground truth."""

    samples: np.ndarray
    events: tuple[PlacedEvent, ...]
    background: str
    sample_rate: int = SAMPLE_RATE
    extra: dict[str, str] = field(default_factory=dict)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


def _frame_levels_db(samples: np.ndarray, frame: int) -> np.ndarray:
    n_frames = max(1, len(samples) // frame)
    frames = samples[: n_frames * frame].reshape(n_frames, -1) if len(samples) >= frame else samples[None, :]
    return 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def _active_runs(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Starts and stops (in frames) of the merged active runs, and the frame length."""
    frame = max(1, round(ACTIVITY_FRAME_S * sample_rate))
    levels = _frame_levels_db(samples, frame)
    threshold, floor = levels.max() - ACTIVITY_RANGE_DB, np.percentile(levels, 10)
    if levels.max() - floor > ACTIVITY_STATIONARY_DB:  # a clip with quiet parts: stay clear of its floor
        threshold = max(threshold, floor + ACTIVITY_ABOVE_FLOOR_DB)
    active = np.flatnonzero(levels >= threshold)
    if levels.max() <= -100.0 or active.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int), frame
    merge = max(1, round(ACTIVITY_MERGE_GAP_S / ACTIVITY_FRAME_S))
    breaks = np.flatnonzero(np.diff(active) > merge)
    starts = np.concatenate(([active[0]], active[breaks + 1]))
    stops = np.concatenate((active[breaks], [active[-1]])) + 1
    return starts, stops, frame


def active_region(samples: np.ndarray, sample_rate: int, *, whole_span: bool = False) -> tuple[int, int]:
    """The main active part of a clip by an energy criterion.

    Frames of :data:`ACTIVITY_FRAME_S` are active when their level is within
    :data:`ACTIVITY_RANGE_DB` of the loudest frame and, in clips with quiet
    parts, :data:`ACTIVITY_ABOVE_FLOOR_DB` above their floor (silent clips:
    nothing is active). Active runs
    separated by less than :data:`ACTIVITY_MERGE_GAP_S` are joined; the longest
    run is returned, or with *whole_span* everything from the first active
    frame to the last.

    Returns
    -------
    start, stop : int
        Sample indices; ``stop == start`` for a silent clip.
    """
    starts, stops, frame = _active_runs(samples, sample_rate)
    if not starts.size:
        return 0, 0
    if whole_span:
        first, last = int(starts[0]), int(stops[-1])
    else:
        longest = int(np.argmax(stops - starts))
        first, last = int(starts[longest]), int(stops[longest])
    return first * frame, min(len(samples), last * frame)


def _read_metadata(path: Path, *columns: str) -> list[dict[str, str]]:
    """The rows of one shared-data ``metadata.csv``, which must have *columns*, each with a value."""
    if not path.is_file():
        raise AudioInputError(f"metadata file {str(path)!r} does not exist; is the data root right?")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
    except UnicodeDecodeError:
        raise AudioInputError(f"metadata file {str(path)!r} is not UTF-8 text; is the data root right?") from None
    have = list(reader.fieldnames or [])
    missing = [name for name in columns if name not in have]
    if missing:
        raise AudioInputError(f"metadata file {str(path)!r} has no column {missing[0]!r} (columns: {', '.join(have) or 'none'}); "
                              "is the data root right?")
    for line, row in enumerate(rows, start=2):
        empty = [name for name in columns if not row[name]]
        if empty:
            raise AudioInputError(f"metadata file {str(path)!r}, line {line}: no value for {empty[0]!r}")
    return rows


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise ValueError(text)
    return value


def _cell(path: Path, row: dict[str, str], column: str, parse: Callable[[str], T], expected: str) -> T:
    """*row*'s *column* through *parse*; one line naming the file, clip and value when it does not parse."""
    try:
        return parse(row[column])
    except (ValueError, KeyError):
        raise AudioInputError(f"metadata file {str(path)!r}: {column} {row[column]!r} of {row['filename']!r} "
                              f"is not {expected}") from None


def _esc50_sources(root: Path) -> list[EventSource]:
    path = root / "metadata.csv"
    folds = f"a fold of {', '.join(map(str, ESC50_FOLD_SPLITS))}"
    return [
        EventSource(row["label"], (root / row["filename"],), _cell(path, row, "fold", lambda v: ESC50_FOLD_SPLITS[int(v)], folds))
        for row in _read_metadata(path, "filename", "label", "fold")
    ]


def _fsdd_sources(root: Path) -> list[EventSource]:
    """Spoken digits of one speaker and take, joined into short utterances."""
    path = root / "metadata.csv"
    rows = _read_metadata(path, "filename", "speaker", "index", "digit")
    speakers = f"a speaker of {', '.join(FSDD_SPEAKER_SPLITS)}"
    splits = {row["speaker"]: _cell(path, row, "speaker", FSDD_SPEAKER_SPLITS.__getitem__, speakers) for row in rows}
    rows.sort(key=lambda r: (r["speaker"], _cell(path, r, "index", int, "a whole number"), r["digit"]))
    by_speaker_take: dict[tuple[str, str], list[Path]] = {}
    for row in rows:
        by_speaker_take.setdefault((row["speaker"], row["index"]), []).append(root / row["filename"])
    sources = []
    for (speaker, _), paths in by_speaker_take.items():
        for first in range(0, len(paths) - DIGITS_PER_UTTERANCE + 1, DIGITS_PER_UTTERANCE):
            group = tuple(paths[first : first + DIGITS_PER_UTTERANCE])
            sources.append(EventSource("speech", group, splits[speaker]))
    return sources


def _librosa_sources(root: Path) -> list[EventSource]:
    """Speech and music recordings cut into :data:`EXCERPT_S` excerpts; short ones whole."""
    sources = []
    metadata = root / "metadata.csv"
    for row in _read_metadata(metadata, "filename", "duration_s"):
        path = root / row["filename"]
        if path.stem not in LIBROSA_SPLITS:
            continue
        label, split = LIBROSA_SPLITS[path.stem]
        duration = _cell(metadata, row, "duration_s", _positive, "a positive number of seconds")
        if duration < 2 * EXCERPT_S:
            sources.append(EventSource(label, (path,), split))
            continue
        for start in np.arange(0.0, duration - EXCERPT_S + 1e-9, EXCERPT_S):
            sources.append(EventSource(label, (path,), split, float(start), float(start + EXCERPT_S)))
    return sources


def _backgrounds(root: Path) -> list[Background]:
    return [
        Background(root / row["filename"], row["description"], BACKGROUND_SPLITS.get(Path(row["filename"]).stem, "train"))
        for row in _read_metadata(root / "metadata.csv", "filename", "description")
    ]


def load_catalog(data_root: str | Path) -> Catalog:
    """Every event source and background under *data_root* (``/work/shared/data``'s layout)."""
    root = Path(data_root)
    events = _esc50_sources(root / "esc50-subset") + _fsdd_sources(root / "fsdd") + _librosa_sources(
        root / "librosa-examples"
    )
    return Catalog(tuple(events), tuple(_backgrounds(root / "backgrounds")))


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)) + 1e-20))


def _background_bed(background: Background, n_samples: int, offset_s: float, dbfs: float) -> np.ndarray:
    """*background* from *offset_s* on, looped with short crossfades to *n_samples*
    samples, at an RMS of *dbfs*."""
    samples, _ = read_audio(background.path, SAMPLE_RATE)
    fade = min(len(samples) // 4, SAMPLE_RATE // 10)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    bed = np.roll(samples, -(round(offset_s * SAMPLE_RATE) % len(samples)))
    while len(bed) < n_samples:
        bed = np.concatenate((bed[:-fade], bed[-fade:] * ramp[::-1] + samples[:fade] * ramp, samples[fade:]))
    bed = bed[:n_samples]
    return bed * np.float32(10 ** (dbfs / 20) / _rms(bed))


def _onsets(lengths: Sequence[int], config: SoundscapeConfig, n_samples: int, rng: np.random.Generator) -> list[int]:
    """Onsets (samples) for events of *lengths*, overlapping or one after another."""
    if config.overlap:
        return [int(rng.integers(0, max(1, n_samples - length))) for length in lengths]
    gap = round(config.min_gap_s * SAMPLE_RATE)
    slack = n_samples - sum(lengths) - gap * (len(lengths) + 1)
    cuts = np.sort(rng.uniform(0, max(0, slack), size=len(lengths)))
    extra = np.diff(np.concatenate(([0.0], cuts))).astype(int)
    onsets, position = [], gap
    for length, more in zip(lengths, extra):
        position += int(more)
        onsets.append(position)
        position += length + gap
    return onsets


def compose(
    arrangement: Sequence[tuple[EventSource, float, float]],
    background: Background,
    config: SoundscapeConfig,
    *,
    background_offset_s: float = 0.0,
) -> Soundscape:
    """A soundscape with the events of *arrangement*, ``(source, onset_s, snr_db)``,
    over *background*; events are cut at ``config.max_event_s`` and at the end.

    Each event's gain makes its RMS ``snr_db`` above the background RMS under
    it; if the mix would clip, all of it is scaled down together.
    """
    n_samples = round(config.duration_s * SAMPLE_RATE)
    bed = _background_bed(background, n_samples, background_offset_s, config.background_dbfs)
    mix = bed.copy()
    placed = []
    for source, onset_s, snr_db in arrangement:
        onset = round(onset_s * SAMPLE_RATE)
        clip = source.load()[: min(round(config.max_event_s * SAMPLE_RATE), n_samples - onset)]
        if len(clip) == 0:
            raise ConfigError(f"event {source.name!r} at {onset_s!r} s is silent or outside the soundscape")
        gain = _rms(bed[onset : onset + len(clip)]) * 10 ** (snr_db / 20) / _rms(clip)
        mix[onset : onset + len(clip)] += clip * np.float32(gain)
        placed.append(PlacedEvent(source.label, onset / SAMPLE_RATE, (onset + len(clip)) / SAMPLE_RATE, snr_db, source.name))
    peak = float(np.max(np.abs(mix)))
    if peak > _PEAK_LIMIT:
        mix *= np.float32(_PEAK_LIMIT / peak)
    placed.sort(key=lambda event: event.onset)
    return Soundscape(mix, tuple(placed), background.path.stem)


def synthesize(
    config: SoundscapeConfig,
    sources: Sequence[EventSource],
    backgrounds: Sequence[Background],
    rng: np.random.Generator,
) -> Soundscape:
    """One soundscape: random events from *sources* over one of *backgrounds*.

    Labels are drawn uniformly (each at most once per soundscape), then one
    recording of each, placed by :func:`compose`. Without overlap, events that
    do not fit are dropped.
    """
    if not sources or not backgrounds:
        raise ConfigError("need at least one event source and one background to synthesise a soundscape")
    n_samples = round(config.duration_s * SAMPLE_RATE)
    background = backgrounds[int(rng.integers(len(backgrounds)))]
    background_offset_s = float(rng.uniform(0.0, 60.0))
    by_label: dict[str, list[EventSource]] = {}
    for source in sources:
        by_label.setdefault(source.label, []).append(source)
    n_events = min(len(by_label), int(rng.integers(config.min_events, config.max_events + 1)))
    labels = rng.choice(sorted(by_label), size=n_events, replace=False)
    picked = [by_label[label][int(rng.integers(len(by_label[label])))] for label in labels]
    lengths = [min(len(source.load()), round(config.max_event_s * SAMPLE_RATE)) for source in picked]
    kept = [(source, length) for source, length in zip(picked, lengths) if length >= SAMPLE_RATE // 10]
    if not config.overlap:
        gap = round(config.min_gap_s * SAMPLE_RATE)
        while kept and sum(length + gap for _, length in kept) > n_samples - gap:
            kept.pop()
    onsets = _onsets([length for _, length in kept], config, n_samples, rng)
    arrangement = [
        (source, onset / SAMPLE_RATE, float(rng.uniform(*config.snr_db))) for (source, _), onset in zip(kept, onsets)
    ]
    return compose(arrangement, background, config, background_offset_s=background_offset_s)


@read_warning_summary("source recordings")
def synthesize_set(
    catalog: Catalog,
    split: str,
    count: int,
    config: SoundscapeConfig,
    *,
    seed: int = 0,
    labels: Iterable[str] | None = None,
) -> list[Soundscape]:
    """*count* soundscapes from the recordings of *split* only; the same seed gives the same set."""
    sources = catalog.events_in(split, labels)
    backgrounds = catalog.backgrounds_in(split, labelled_ambiences=config.labelled_ambiences)
    if not sources:
        raise ConfigError(f"no event recordings of split {split!r} with labels {sorted(labels or [])!r}")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    return [synthesize(config, sources, backgrounds, rng) for _ in range(count)]


def write_soundscape_set(soundscapes: Sequence[Soundscape], out_dir: str | Path, *, prefix: str = "soundscape") -> Path:
    """Write ``<prefix>_NNN.flac`` files and one ``annotations.tsv``; returns the TSV's path.

    The TSV is DCASE-style (:func:`edge_sed.evaluation.write_tsv`: header
    ``filename onset offset event_label``, times in seconds), file names
    relative to *out_dir*.
    """
    from edge_sed.evaluation import write_tsv
    from edge_sed.events import Event

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events = []
    for index, soundscape in enumerate(soundscapes):
        name = f"{prefix}_{index:03d}.flac"
        write_audio(out / name, soundscape.samples, soundscape.sample_rate)
        events += [Event(e.label, e.onset, e.offset, 1.0, file=name) for e in soundscape.events]
    tsv = out / "annotations.tsv"
    write_tsv(events, tsv)
    log.info("wrote %d soundscapes (%d events) to %s", len(soundscapes), len(events), out)
    return tsv
