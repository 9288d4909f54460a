"""Training data: clip tables over audio folders, CSV lists and PANNs HDF5 files.

A :class:`ClipTable` is the one shape every dataset takes: clip keys, labels,
a target matrix, a fold per clip and a reader that returns a clip's audio at
any rate. :func:`read_dataset` builds one from a :class:`DataConfig`:

``esc50``, ``fsdd``, ``librosa``
    Presets of ``csv`` for the folders under ``shared/data`` (ESC-50 by its
    ``fold`` column; FSDD as "speech" with the speaker as fold; the librosa
    examples cut into windows of ``window_s``).
``csv``
    A folder with a CSV of ``filename`` plus a label column (several labels
    joined by ``label_separator`` make it multi-label) and an optional fold column.
``audioset_hdf5``
    PANNs' packed layout: int16 ``waveform`` (clips, samples), bool ``target``
    (clips, 527), ``audio_name``.
``audioset_csv``
    AudioSet segment lists (``YTID, start_seconds, end_seconds, positive_labels``)
    over a folder of downloaded segments named ``Y<YTID>.*`` or ``<YTID>.*``.

Decoded audio is cached as one int16 ``.npy`` per file and rate under
``cache_dir``, so resampling runs once. :class:`ClipDataset` turns a table into
torch samples: random crops of ``crop_s`` seconds for training, whole clips for
evaluation.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import soundfile as sf

from edge_sed.audio import read_audio, resample
from edge_sed.errors import ConfigError
from edge_sed.labels import audioset_ontology

__all__ = [
    "DataConfig",
    "ClipTable",
    "AudioCache",
    "read_dataset",
    "read_csv_dataset",
    "read_audioset_hdf5",
    "read_audioset_segments",
    "ClipDataset",
    "collate_clips",
    "crop_offsets",
]

log = logging.getLogger(__name__)

#: PANNs packs AudioSet at this rate.
AUDIOSET_HDF5_RATE = 32000
INT16_SCALE = 32767.0
DATASET_KINDS = ("esc50", "fsdd", "librosa", "csv", "audioset_hdf5", "audioset_csv")

#: Keyword presets of :func:`read_csv_dataset` for the folders in ``shared/data``.
_PRESETS: dict[str, dict[str, Any]] = {
    "esc50": {"label_column": "label", "fold_column": "fold"},
    "fsdd": {"fixed_label": "speech", "fold_column": "speaker"},
    "librosa": {"label_column": "label", "fold_column": "", "window_s": 5.0},
}


@dataclass(frozen=True, slots=True)
class DataConfig:
    """Where the clips come from and how they are cut.

    ``val_fold`` picks the validation fold (the rest trains); 0 means "no
    fold": train and validate on every clip (smoke runs only). ``classes``
    keeps only those labels (e.g. ESC-10), ``limit_per_class`` keeps the first
    N clips of each class (both for CPU-sized runs).
    """

    kind: str = "esc50"
    root: str = ""
    csv: str = "metadata.csv"
    label_column: str = "label"
    fold_column: str = "fold"
    label_separator: str = ";"
    fixed_label: str = ""
    window_s: float = 0.0
    audio_dir: str = ""
    hdf5_sample_rate: int = AUDIOSET_HDF5_RATE
    cache_dir: str = ""
    val_fold: int = 1
    crop_s: float = 2.0
    classes: tuple[str, ...] = ()
    limit_per_class: int = 0

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise ConfigError(f"unknown dataset kind {self.kind!r}; known: {', '.join(DATASET_KINDS)}")
        if not self.root:
            raise ConfigError(f"needs root (the {self.kind} folder or file)")
        if self.crop_s <= 0 or self.window_s < 0:
            raise ConfigError(f"crop_s must be > 0 and window_s >= 0, got {self.crop_s!r}, {self.window_s!r}")
        if self.val_fold < 0 or self.limit_per_class < 0:
            raise ConfigError("val_fold and limit_per_class must be >= 0")
        object.__setattr__(self, "classes", tuple(self.classes))


_DATA_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DataConfig)}


class ClipReader(Protocol):
    def read(self, row: int, sample_rate: int) -> np.ndarray:
        """Audio of clip *row*, shape (n,), float32 at *sample_rate*."""


class AudioCache:
    """Decoded audio kept as one int16 ``.npy`` per (file, rate) under *cache_dir*.

    Without a *cache_dir* every call decodes the file again. The cache key is
    the resolved path, size and modification time, so an edited file is
    decoded afresh.
    """

    def __init__(self, cache_dir: str | Path | None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None

    def _cache_path(self, path: Path, sample_rate: int) -> Path:
        stat = path.stat()
        digest = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
        return self.cache_dir / f"{path.stem}-{digest}-{sample_rate}.npy"  # type: ignore[operator]

    def load(self, path: str | Path, sample_rate: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` of the file (default: all), shape (n,), float32 at *sample_rate*."""
        path = Path(path)
        if self.cache_dir is None:
            return read_audio(path, sample_rate)[0][start:stop]
        cached = self._cache_path(path, sample_rate)
        if not cached.exists():
            samples = read_audio(path, sample_rate)[0]
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, _to_int16(samples))
            os.replace(tmp, cached)
        return np.load(cached, mmap_mode="r")[start:stop].astype(np.float32) / INT16_SCALE


def _to_int16(samples: np.ndarray) -> np.ndarray:
    return np.round(np.clip(samples, -1.0, 1.0) * INT16_SCALE).astype(np.int16)


@dataclass(frozen=True, slots=True)
class _FileClips:
    """Clips that are files, or windows ``[start_s, end_s)`` of files."""

    paths: tuple[Path, ...]
    starts_s: np.ndarray
    ends_s: np.ndarray  # 0 = to the end of the file
    cache: AudioCache

    def read(self, row: int, sample_rate: int) -> np.ndarray:
        start = round(self.starts_s[row] * sample_rate)
        stop = round(self.ends_s[row] * sample_rate) if self.ends_s[row] > 0 else None
        return self.cache.load(self.paths[row], sample_rate, start, stop)


class _Hdf5Clips:
    """Clips of a PANNs-packed HDF5 file, opened lazily in each worker process."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self._file: Any = None
        self._pid = -1

    def read(self, row: int, sample_rate: int) -> np.ndarray:
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        samples = self._file["waveform"][row].astype(np.float32) / INT16_SCALE
        return resample(samples, self.sample_rate, sample_rate)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "sample_rate": self.sample_rate, "_file": None, "_pid": -1}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


@dataclass(frozen=True, slots=True)
class ClipTable:
    """Clips with their labels.

    Attributes
    ----------
    keys : tuple of str, one per clip (unique; the teacher-logit cache is keyed by them)
    labels : tuple of str, the class names (columns of ``targets``)
    targets : ndarray, shape (clips, classes), float32 0/1
    folds : ndarray, shape (clips,), int (0 when the data has no folds)
    multi_label : bool
    reader : reads clip ``rows[i]``
    rows : ndarray, shape (clips,), int, the clips' rows in ``reader``
    provenance : dict, where the data comes from and its license
    """

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    targets: np.ndarray
    folds: np.ndarray
    multi_label: bool
    reader: ClipReader
    rows: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, index: int, sample_rate: int) -> np.ndarray:
        """Audio of clip *index*, shape (n,), float32 at *sample_rate*."""
        return self.reader.read(int(self.rows[index]), sample_rate)

    def select(self, mask: np.ndarray) -> ClipTable:
        """The clips where *mask* (bool, shape (clips,)) holds."""
        picked = np.flatnonzero(mask)
        return dataclasses.replace(
            self,
            keys=tuple(self.keys[i] for i in picked),
            targets=self.targets[picked],
            folds=self.folds[picked],
            rows=self.rows[picked],
        )

    def with_labels(self, labels: tuple[str, ...]) -> ClipTable:
        """The same clips with target columns in the order of *labels* (a superset of ours)."""
        missing = [label for label in self.labels if label not in labels]
        if missing:
            raise ConfigError(f"the model has no class for the data's labels {missing[:5]!r}; model labels: {labels[:10]!r}...")
        targets = np.zeros((len(self), len(labels)), dtype=np.float32)
        targets[:, [labels.index(label) for label in self.labels]] = self.targets
        return dataclasses.replace(self, labels=tuple(labels), targets=targets)

    def split(self, val_fold: int) -> tuple[ClipTable, ClipTable]:
        """(train, validation): validation is fold *val_fold*; 0 gives every clip to both."""
        if val_fold == 0:
            return self, self
        present = sorted(set(self.folds.tolist()))
        if val_fold not in present:
            raise ConfigError(f"val_fold {val_fold!r} is not in the data; folds present: {present}")
        return self.select(self.folds != val_fold), self.select(self.folds == val_fold)


def _fold_numbers(values: list[str]) -> np.ndarray:
    """Integer folds from a column: integers stay, other values are numbered 1.. in sorted order."""
    if all(value.strip().lstrip("-").isdigit() for value in values):
        return np.array([int(value) for value in values], dtype=np.int64)
    numbering = {value: k + 1 for k, value in enumerate(sorted(set(values)))}
    return np.array([numbering[value] for value in values], dtype=np.int64)


def _targets(clip_labels: list[list[str]], labels: tuple[str, ...] | None) -> tuple[tuple[str, ...], np.ndarray]:
    labels = labels or tuple(sorted({label for row in clip_labels for label in row}))
    column = {label: k for k, label in enumerate(labels)}
    targets = np.zeros((len(clip_labels), len(labels)), dtype=np.float32)
    for i, row in enumerate(clip_labels):
        for label in row:
            if label in column:
                targets[i, column[label]] = 1.0
    return labels, targets


def read_csv_dataset(
    root: str | Path,
    *,
    csv_name: str = "metadata.csv",
    label_column: str = "label",
    fold_column: str = "fold",
    label_separator: str = ";",
    fixed_label: str = "",
    window_s: float = 0.0,
    cache_dir: str | Path | None = None,
) -> ClipTable:
    """A folder of audio files listed in a CSV with a ``filename`` column.

    Parameters
    ----------
    label_column : the labels of each file; several joined by *label_separator* make the data multi-label
    fold_column : folds (integers, or any values numbered in sorted order); "" for none
    fixed_label : give every file this one label instead (e.g. FSDD's "speech")
    window_s : cut files longer than this into windows of this length (0: whole files)
    """
    root = Path(root)
    csv_path = root / csv_name
    if not csv_path.is_file():
        raise ConfigError(f"dataset CSV {str(csv_path)!r} does not exist; the data root (a recipe's [data] root, "
                          "evaluate's DATA) must be the folder that holds it")
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    needed = ["filename"] + ([fold_column] if fold_column else []) + ([] if fixed_label else [label_column])
    columns = list(rows[0]) if rows else []
    missing = [name for name in needed if name not in columns]
    if missing:
        raise ConfigError(f"{str(csv_path)!r} has no column {missing[0]!r}; columns: {', '.join(columns)}")
    clip_labels, keys, paths, starts, ends, folds = [], [], [], [], [], []
    for row in rows:
        path = root / row["filename"]
        labels = [fixed_label] if fixed_label else [x.strip() for x in row[label_column].split(label_separator) if x.strip()]
        fold = row[fold_column] if fold_column else "0"
        windows = [(0.0, 0.0)]
        if window_s:
            duration = sf.info(str(path)).duration
            n_windows = max(1, int(duration // window_s))
            windows = [(k * window_s, (k + 1) * window_s if n_windows > 1 else 0.0) for k in range(n_windows)]
        for start, end in windows:
            keys.append(row["filename"] if not window_s else f"{row['filename']}@{start:g}")
            paths.append(path)
            starts.append(start)
            ends.append(end)
            clip_labels.append(labels)
            folds.append(fold)
    labels, targets = _targets(clip_labels, None)
    return ClipTable(
        keys=tuple(keys),
        labels=labels,
        targets=targets,
        folds=_fold_numbers(folds) if fold_column else np.zeros(len(keys), dtype=np.int64),
        multi_label=bool((targets.sum(axis=1) > 1).any()),
        reader=_FileClips(tuple(paths), np.array(starts), np.array(ends), AudioCache(cache_dir)),
        rows=np.arange(len(keys)),
        provenance={"root": str(root), "csv": csv_name, "sources": _read_sources_note(root)},
    )


def _read_sources_note(root: Path) -> str:
    """The title and license lines of the folder's SOURCES.md/README (its provenance note), if any."""
    for name in ("SOURCES.md", "README.md"):
        note = root / name
        if note.is_file():
            lines = note.read_text(encoding="utf-8").splitlines()
            licenses = [line.strip() for line in lines if "license" in line.lower() and line.lstrip().startswith("**")]
            return " ".join([lines[0].lstrip("# ").strip(), *licenses[:1]])
    return ""


def read_audioset_hdf5(path: str | Path, *, sample_rate: int = AUDIOSET_HDF5_RATE) -> ClipTable:
    """AudioSet packed as PANNs does: ``audio_name``, int16 ``waveform``, bool ``target`` (527 classes)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"HDF5 file {str(path)!r} does not exist")
    if not h5py.is_hdf5(path):
        raise ConfigError(f"{str(path)!r} is not an HDF5 file; give AudioSet packed as PANNs does (audio_name, waveform, target)")
    with h5py.File(path, "r") as h5:
        missing = [name for name in ("audio_name", "waveform", "target") if name not in h5]
        if missing:
            raise ConfigError(f"{str(path)!r} is not in PANNs' packed layout: no dataset {missing[0]!r}")
        names = tuple(name.decode() if isinstance(name, bytes) else str(name) for name in h5["audio_name"][:])
        targets = h5["target"][:].astype(np.float32)
    _, display = audioset_ontology()
    if targets.shape[1] != len(display):
        raise ConfigError(f"{str(path)!r}: target has {targets.shape[1]} classes, AudioSet has {len(display)}")
    return ClipTable(
        keys=names,
        labels=display,
        targets=targets,
        folds=np.zeros(len(names), dtype=np.int64),
        multi_label=True,
        reader=_Hdf5Clips(path, sample_rate),
        rows=np.arange(len(names)),
        provenance={"hdf5": str(path), "sources": "AudioSet (Google, CC BY 4.0 labels; audio from YouTube)"},
    )


def read_audioset_segments(csv_path: str | Path, audio_dir: str | Path, *, cache_dir: str | Path | None = None) -> ClipTable:
    """AudioSet segment list (``YTID, start_seconds, end_seconds, positive_labels``) over downloaded segments.

    Each segment is a file ``Y<YTID>.*`` or ``<YTID>.*`` in *audio_dir* (already
    cut to the segment, as PANNs downloads them). Segments without a file are
    skipped and counted in the log, as AudioSet always has missing videos.
    """
    csv_path, audio_dir = Path(csv_path), Path(audio_dir)
    if not csv_path.is_file():
        raise ConfigError(f"segment list {str(csv_path)!r} does not exist")
    files = {}
    for path in sorted(audio_dir.iterdir()) if audio_dir.is_dir() else []:
        files.setdefault(path.stem.removeprefix("Y"), path)
    mids, display = audioset_ontology()
    mid_to_label = dict(zip(mids, display))
    keys, paths, clip_labels, missing = [], [], [], 0
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(line for line in fh if not line.startswith("#")):
            if len(row) < 4:
                continue
            ytid = row[0].strip()
            if ytid not in files:
                missing += 1
                continue
            keys.append(ytid)
            paths.append(files[ytid])
            labels_field = ",".join(row[3:]).strip().strip('"')
            clip_labels.append([mid_to_label[mid.strip()] for mid in labels_field.split(",") if mid.strip() in mid_to_label])
    if missing:
        log.warning("%s: %d segments have no audio file in %s and were skipped", csv_path, missing, audio_dir)
    if not keys:
        raise ConfigError(f"no segment of {str(csv_path)!r} has an audio file in {str(audio_dir)!r}")
    labels, targets = _targets(clip_labels, display)
    zeros = np.zeros(len(keys))
    return ClipTable(
        keys=tuple(keys),
        labels=labels,
        targets=targets,
        folds=np.zeros(len(keys), dtype=np.int64),
        multi_label=True,
        reader=_FileClips(tuple(paths), zeros, zeros, AudioCache(cache_dir)),
        rows=np.arange(len(keys)),
        provenance={"segments": str(csv_path), "audio_dir": str(audio_dir), "sources": "AudioSet segments"},
    )


def read_dataset(config: DataConfig) -> ClipTable:
    """The clip table that *config* describes, with its class and per-class filters applied."""
    cache_dir = config.cache_dir or None
    if config.kind == "audioset_hdf5":
        table = read_audioset_hdf5(config.root, sample_rate=config.hdf5_sample_rate)
    elif config.kind == "audioset_csv":
        table = read_audioset_segments(config.root, config.audio_dir, cache_dir=cache_dir)
    else:
        # a preset fills the options the config leaves at their defaults
        options = {
            name: value if value != _DATA_DEFAULTS.get(name) else _PRESETS.get(config.kind, {}).get(name, value)
            for name, value in (
                ("label_column", config.label_column),
                ("fold_column", config.fold_column),
                ("fixed_label", config.fixed_label),
                ("window_s", config.window_s),
            )
        }
        table = read_csv_dataset(
            config.root, csv_name=config.csv, label_separator=config.label_separator, cache_dir=cache_dir, **options
        )
    if config.classes:
        unknown = [label for label in config.classes if label not in table.labels]
        if unknown:
            raise ConfigError(f"[data] classes: {unknown[0]!r} is not a label of {config.root!r}; labels: {', '.join(table.labels[:20])}")
        columns = [table.labels.index(label) for label in config.classes]
        table = table.select(table.targets[:, columns].any(axis=1))
        table = dataclasses.replace(table, labels=tuple(config.classes), targets=table.targets[:, columns])
    if config.limit_per_class:
        seen = np.zeros(len(table.labels), dtype=np.int64)
        keep = np.zeros(len(table), dtype=bool)
        for i, target in enumerate(table.targets):
            classes = np.flatnonzero(target)
            if (seen[classes] < config.limit_per_class).any():
                keep[i] = True
                seen[classes] += 1
        table = table.select(keep)
    return table


def crop_offsets(n_samples: int, crop_samples: int, hop_samples: int) -> np.ndarray:
    """Start samples of the fixed crop grid over a clip: 0, hop, 2*hop, ... while a crop fits (at least one)."""
    return np.arange(0, max(n_samples - crop_samples, 0) + 1, hop_samples)


def _fit(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad (at the end) or cut *samples* to exactly *n_samples*."""
    if len(samples) >= n_samples:
        return samples[:n_samples]
    return np.pad(samples, (0, n_samples - len(samples)))


class ClipDataset:
    """Torch-style dataset over a :class:`ClipTable`.

    Parameters
    ----------
    table : ClipTable
    sample_rate : the model's rate
    crop_s : random crops of this length (training); None gives whole clips (evaluation)
    crop_grid_s : if given, crops start only on this grid (the grid the teacher
        logits were cached on) and each sample carries its grid position ``crop``
    augment : callable(waveform, rng) -> waveform, applied to training crops only
    seed : base seed; each (epoch, index) gets its own random stream

    Each item is a dict: ``waveform`` float32 (n_samples,), ``target`` float32
    (classes,), ``index`` int, ``crop`` int.
    """

    def __init__(
        self,
        table: ClipTable,
        sample_rate: int,
        *,
        crop_s: float | None = None,
        crop_grid_s: float | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        seed: int = 0,
    ) -> None:
        self.table = table
        self.sample_rate = sample_rate
        self.crop_samples = round(crop_s * sample_rate) if crop_s else None
        self.grid_samples = round(crop_grid_s * sample_rate) if crop_grid_s else None
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops and augmentations for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict[str, Any]:
        samples = self.table.load(index, self.sample_rate)
        crop = 0
        if self.crop_samples is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            if self.grid_samples:
                offsets = crop_offsets(len(samples), self.crop_samples, self.grid_samples)
                crop = int(rng.integers(len(offsets)))
                start = int(offsets[crop])
            else:
                start = int(rng.integers(max(len(samples) - self.crop_samples, 0) + 1))
            samples = _fit(samples[start:], self.crop_samples)
            if self.augment is not None:
                samples = self.augment(samples, rng)
        return {
            "waveform": np.ascontiguousarray(samples, dtype=np.float32),
            "target": self.table.targets[index],
            "index": index,
            "crop": crop,
        }


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch dataset items; clips of different lengths are zero-padded to the longest."""
    import torch

    n_samples = max(len(item["waveform"]) for item in items)
    return {
        "waveform": torch.from_numpy(np.stack([_fit(item["waveform"], n_samples) for item in items])),
        "target": torch.from_numpy(np.stack([item["target"] for item in items]).astype(np.float32)),
        "index": torch.tensor([item["index"] for item in items]),
        "crop": torch.tensor([item["crop"] for item in items]),
    }
