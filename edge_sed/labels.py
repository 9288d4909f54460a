"""Class label lists shipped with edge-sed (no torch)."""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

__all__ = ["audioset_labels", "audioset_ontology", "AUDIOSET_LABELS_FILE"]

#: AudioSet's ontology subset used by PANNs: ``index,mid,display_name``; row order is output index.
AUDIOSET_LABELS_FILE = "class_labels_indices.csv"


@functools.cache
def audioset_ontology() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """AudioSet's 527 (mids, display names), in PANNs' output order."""
    text = (resources.files("edge_sed") / "assets" / AUDIOSET_LABELS_FILE).read_text(encoding="utf-8")
    rows = sorted(csv.DictReader(io.StringIO(text)), key=lambda row: int(row["index"]))
    return tuple(row["mid"] for row in rows), tuple(row["display_name"] for row in rows)


def audioset_labels() -> list[str]:
    """AudioSet's 527 display names in PANNs' output order ("Speech", "Male speech, man speaking", ...)."""
    return list(audioset_ontology()[1])
