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
    link = tmp_path / "backgrounds" / "background_lincity_ResidentialHigh1.flac"
    link.unlink()
    link.symlink_to(tmp_path / "moved-away.flac")  # a link an earlier run left, now dangling
    metadata = write_training_table(catalog, tmp_path)  # a re-run replaces it
    assert link.resolve() == (DATA / "background_lincity_ResidentialHigh1.flac").resolve()
    rows = list(csv.DictReader(metadata.open()))
    assert [(r["label"], r["fold"]) for r in rows] == [("siren", "1"), ("speech", "4")]
    assert [r["filename"] for r in csv.DictReader((tmp_path / "test" / "metadata.csv").open())] == [str(dog.resolve())]
    assert sf.info(str(tmp_path / rows[1]["filename"])).duration > 0.5
    assert [p.name for p in (tmp_path / "backgrounds").iterdir()] == ["background_lincity_ResidentialHigh1.flac"]
    assert "ESC-50 (CC BY-NC 3.0" in (tmp_path / "SOURCES.md").read_text()


def test_a_missing_data_root_is_named_with_the_option_to_give(tmp_path) -> None:
    from typer.testing import CliRunner

    from edge_sed.cli import app

    for command in (["training-table", str(tmp_path / "table")], ["synth", str(tmp_path / "scenes")]):
        result = CliRunner().invoke(app, [*command, "--data", str(tmp_path / "nowhere")])
        assert result.exit_code == 1
        assert result.stderr.strip() == (f"error: no shared data folder at {str(tmp_path / 'nowhere')!r}; pass --data with "
                                         "the folder that holds esc50-subset/, fsdd/, librosa-examples/ and backgrounds/")
    assert not (tmp_path / "table").exists()
