"""Training tables for ``edge-sed train``: the fixed splits of :mod:`edge_sed.soundscape`
as a clip folder plus CSV files (``filename,label,fold``).

``metadata.csv`` holds the train split (folds 1-3) and the validation split
(fold :data:`VALIDATION_FOLD`), so a recipe with ``val_fold = 4`` trains on the
one and validates on the other. The held-out test split goes only to the
separate folder ``test/`` (its own ``metadata.csv``, fold :data:`TEST_FOLD`),
for ``edge-sed evaluate``; no recipe that reads the main table can see it. ``backgrounds/`` links the train-split ambiences that hold no
vocabulary sounds, for background mixing.

Every event clip is written cut to its active span (energy criterion), so a
random training crop lands on the sound rather than on silence; the test
split's ESC-50 rows point at the original, uncut 5 s clips.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from edge_sed.audio import read_audio, read_warning_summary, write_audio
from edge_sed.soundscape import SAMPLE_RATE, Catalog, EventSource, active_region

__all__ = ["VALIDATION_FOLD", "TEST_FOLD", "write_training_table"]

log = logging.getLogger(__name__)

#: The first line of the table's SOURCES.md, which training copies into checkpoints' provenance.
SOURCES_NOTE = (
    "edge-sed training table from shared/data, splits of edge_sed.soundscape (test split held out): "
    "ESC-50 (CC BY-NC 3.0; ESC-10 subset CC BY 3.0), FSDD speech (CC BY-SA 4.0), "
    "librosa examples: LibriSpeech speech (CC BY 4.0) and music (CC BY 3.0, public domain, CC BY-NC)"
)
#: Folds of the written tables (train sources keep ESC-50's folds 1-3, others are spread over them).
TRAIN_FOLDS = (1, 2, 3)
VALIDATION_FOLD = 4
TEST_FOLD = 5


def _clip_audio(source: EventSource) -> np.ndarray:
    """A single file's whole active span; joined utterances and excerpts as the soundscapes use them."""
    if len(source.paths) == 1 and source.stop_s is None:
        samples, _ = read_audio(source.paths[0], SAMPLE_RATE)
        start, stop = active_region(samples, SAMPLE_RATE, whole_span=True)
        return samples[start:stop]
    return np.asarray(source.load())


def _fold(source: EventSource, index: int) -> int:
    if source.split == "validation":
        return VALIDATION_FOLD
    if source.split == "test":
        return TEST_FOLD
    stem = source.paths[0].stem
    esc50_fold = int(stem.split("-")[0]) if stem[:1].isdigit() and "-" in stem else 0
    return esc50_fold if esc50_fold in TRAIN_FOLDS else TRAIN_FOLDS[index % len(TRAIN_FOLDS)]


def _write_csv(path: Path, rows: list[tuple[str, str, int]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("filename", "label", "fold"))
        writer.writerows(rows)


@read_warning_summary("source recordings")
def write_training_table(catalog: Catalog, out_dir: str | Path) -> Path:
    """Write ``clips/`` and ``metadata.csv`` (train + validation), ``test/``, ``backgrounds/`` and ``SOURCES.md``.

    Returns the path of ``metadata.csv``.
    """
    out = Path(out_dir)
    trainval: list[tuple[str, str, int]] = []
    test: list[tuple[str, str, int]] = []
    for index, source in enumerate(catalog.events):
        if source.split == "test" and len(source.paths) == 1 and source.stop_s is None:
            test.append((str(source.paths[0].resolve()), source.label, TEST_FOLD))  # ESC-50 test clips stay whole
            continue
        audio = _clip_audio(source)
        if len(audio) < SAMPLE_RATE // 10:
            log.warning("skipping %s: under 0.1 s of activity", source.name)
            continue
        folder, rows = (out / "test", test) if source.split == "test" else (out, trainval)
        name = f"clips/{source.label}/{source.name.replace('@', '_').replace('+', '_')}.flac"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_audio(folder / name, audio, SAMPLE_RATE)
        rows.append((name, source.label, _fold(source, index)))
    (out / "test").mkdir(parents=True, exist_ok=True)
    (out / "SOURCES.md").write_text(SOURCES_NOTE + "\n", encoding="utf-8")
    _write_csv(out / "metadata.csv", trainval)
    _write_csv(out / "test" / "metadata.csv", test)
    beds = out / "backgrounds"
    beds.mkdir(exist_ok=True)
    for background in catalog.backgrounds_in("train"):
        link, target = beds / background.path.name, background.path.resolve()
        if link.is_symlink() and link.readlink() != target:  # a dangling or stale link from an earlier run
            link.unlink()
        if not link.exists():
            link.symlink_to(target)
    log.info("training table: %d train/validation clips, %d test clips in %s", len(trainval), len(test), out)
    return out / "metadata.csv"
