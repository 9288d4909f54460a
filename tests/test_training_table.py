"""The training table keeps the held-out split out of the training metadata.csv."""

from __future__ import annotations

import csv

import soundfile as sf

from edge_sed.soundscape import Background, Catalog, EventSource
from edge_sed.training_table import write_training_table

from conftest import DATA


def test_test_split_goes_only_to_its_own_folder(tmp_path) -> None:
    dog = next(DATA.glob("esc50_dog_*.flac"))
    catalog = Catalog(
        events=(
            EventSource("siren", (next(DATA.glob("esc50_siren_*.flac")),), "train"),
            EventSource("speech", (DATA / "fsdd_3_george_5.flac",) * 2, "validation"),
            EventSource("dog", (dog,), "test"),
        ),
        backgrounds=(
            Background(DATA / "background_lincity_ResidentialHigh1.flac", "residential street", "train"),
            Background(DATA / "librosa_robin.flac", "birds", "train"),
        ),
    )
    metadata = write_training_table(catalog, tmp_path)
    rows = list(csv.DictReader(metadata.open()))
    assert [(r["label"], r["fold"]) for r in rows] == [("siren", "1"), ("speech", "4")]
    assert [r["filename"] for r in csv.DictReader((tmp_path / "test" / "metadata.csv").open())] == [str(dog.resolve())]
    assert sf.info(str(tmp_path / rows[1]["filename"])).duration > 0.5
    assert [p.name for p in (tmp_path / "backgrounds").iterdir()] == ["background_lincity_ResidentialHigh1.flac"]
    assert "ESC-50 (CC BY-NC 3.0" in (tmp_path / "SOURCES.md").read_text()
