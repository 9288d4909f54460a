"""Soundscape synthesis on the committed real clips: trimming, placement, levels, files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from edge_sed.audio import read_audio
from edge_sed.cli import app
from edge_sed.errors import ConfigError
from edge_sed.evaluation import read_tsv
from edge_sed.soundscape import (
    SAMPLE_RATE,
    Background,
    EventSource,
    SoundscapeConfig,
    active_region,
    synthesize,
    write_soundscape_set,
)

from conftest import DATA, SHARED_DATA


@pytest.fixture(scope="module")
def sources() -> list[EventSource]:
    clips = sorted(DATA.glob("esc50_*.flac"))
    return [EventSource(path.stem.split("_")[1], (path,), "test") for path in clips] + [
        EventSource("speech", (DATA / "fsdd_3_george_5.flac",) * 3, "test")
    ]


@pytest.fixture(scope="module")
def backgrounds() -> list[Background]:
    return [Background(DATA / "background_lincity_ResidentialHigh1.flac", "residential street ambience", "test")]


def test_active_region_finds_a_clip_padded_with_silence() -> None:
    digit, _ = read_audio(DATA / "fsdd_3_george_5.flac", SAMPLE_RATE)
    padded = np.concatenate([np.zeros(SAMPLE_RATE), digit, np.zeros(2 * SAMPLE_RATE)]).astype(np.float32)
    start, stop = active_region(padded, SAMPLE_RATE)
    assert SAMPLE_RATE - 0.05 * SAMPLE_RATE <= start <= SAMPLE_RATE + 0.1 * SAMPLE_RATE
    assert SAMPLE_RATE + len(digit) - 0.15 * SAMPLE_RATE <= stop <= SAMPLE_RATE + len(digit) + 0.05 * SAMPLE_RATE
    assert active_region(np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE) == (0, 0)


def test_soundscape_places_events_apart_at_their_snr(sources, backgrounds) -> None:
    config = SoundscapeConfig(duration_s=20.0, min_events=3, max_events=3, snr_db=(10.0, 10.0), background_dbfs=-40.0)
    scape = synthesize(config, sources, backgrounds, np.random.default_rng(3))
    assert len(scape.samples) == 20 * SAMPLE_RATE
    assert len(scape.events) == 3 and len({e.label for e in scape.events}) == 3
    for before, after in zip(scape.events, scape.events[1:]):
        assert after.onset - before.offset >= config.min_gap_s - 1e-3
    inside = np.zeros(len(scape.samples), dtype=bool)
    for event in scape.events:
        assert 0.0 <= event.onset < event.offset <= 20.0 and event.snr_db == 10.0
        inside[round(event.onset * SAMPLE_RATE) : round(event.offset * SAMPLE_RATE)] = True
    rms_db = lambda x: 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))  # noqa: E731
    assert rms_db(scape.samples[~inside]) == pytest.approx(-40.0, abs=3.0)
    assert rms_db(scape.samples[inside]) > -40.0 + 7.0


def test_same_seed_same_soundscape_and_files_round_trip(sources, backgrounds, tmp_path) -> None:
    config = SoundscapeConfig(duration_s=10.0, min_events=2, max_events=3, overlap=True)
    first = synthesize(config, sources, backgrounds, np.random.default_rng(7))
    again = synthesize(config, sources, backgrounds, np.random.default_rng(7))
    assert np.array_equal(first.samples, again.samples) and first.events == again.events
    tsv = write_soundscape_set([first], tmp_path)
    annotations = read_tsv(tsv)
    assert {event.file for event in annotations} == {"soundscape_000.flac"}
    assert [(round(e.onset, 3), round(e.offset, 3), e.label) for e in annotations] == [
        (round(e.onset, 3), round(e.offset, 3), e.label) for e in first.events
    ]
    info = sf.info(str(tmp_path / "soundscape_000.flac"))
    assert (info.samplerate, info.channels, info.frames) == (SAMPLE_RATE, 1, 10 * SAMPLE_RATE)


def test_bad_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="min_events"):
        SoundscapeConfig(min_events=5, max_events=2)
    for bad in (dict(duration_s=float("nan")), dict(duration_s=1e9), dict(snr_db=(0.0, float("inf"))), dict(max_event_s=float("nan"))):
        with pytest.raises(ConfigError):
            SoundscapeConfig(**bad)
    for args, message in [
        (["--snr", "loud"], "--snr must be LOW:HIGH of finite numbers (e.g. 0:20), got 'loud'"),
        (["--snr", "0:inf"], "--snr must be LOW:HIGH of finite numbers (e.g. 0:20), got '0:inf'"),
        (["--events", "abc"], "--events must be LOW:HIGH of finite numbers (e.g. 3:6), got 'abc'"),
        (["--duration", "nan"], "duration_s must be between 0 and 3600 s, got nan"),
        (["--seed", "-1"], "need --count >= 1 and --seed >= 0, got 20 and -1"),
    ]:
        result = CliRunner().invoke(app, ["synth", "out", *args])
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [f"error: {message}"]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared data folder")
def test_held_out_recordings_never_reach_other_splits() -> None:
    from edge_sed.soundscape import load_catalog

    catalog = load_catalog(SHARED_DATA)
    files = {split: {p for s in catalog.events_in(split) for p in s.paths} for split in ("train", "validation", "test")}
    assert not files["test"] & (files["train"] | files["validation"])
    assert not files["validation"] & files["train"]
    assert {p.name.split("-")[0] for p in files["test"] if p.parent.parent.name == "esc50-subset"} == {"5"}
    beds = {split: {b.path for b in catalog.backgrounds_in(split, labelled_ambiences=True)} for split in files}
    assert not beds["test"] & (beds["train"] | beds["validation"])


def test_a_stationary_clip_is_active_throughout() -> None:
    rain, _ = read_audio(DATA / "esc50_rain_5-181766-A-10.flac", SAMPLE_RATE)
    start, stop = active_region(rain, SAMPLE_RATE)
    assert start <= 0.05 * SAMPLE_RATE and stop >= len(rain) - 0.05 * SAMPLE_RATE


def test_a_metadata_file_without_the_columns_is_one_error(tmp_path) -> None:
    from edge_sed.errors import AudioInputError
    from edge_sed.soundscape import load_catalog

    for folder in ("esc50-subset", "fsdd", "librosa-examples", "backgrounds"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "metadata.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(AudioInputError, match=r"metadata file '.*/metadata.csv' has no column 'filename' \(columns: foo, bar\)"):
        load_catalog(tmp_path)


@pytest.mark.parametrize("folder, text, message", [
    ("esc50-subset", "foo,bar\n", " has no column 'filename' (columns: foo, bar)"),  # header only
    ("esc50-subset", "filename,label,fold\na.wav,dog,notanint\n", ": fold 'notanint' of 'a.wav' is not a fold of 1, 2, 3, 4, 5"),
    ("esc50-subset", "filename,label,fold\na.wav,dog,9\n", ": fold '9' of 'a.wav' is not a fold of 1, 2, 3, 4, 5"),
    ("esc50-subset", "filename,label,fold\na.wav\n", ", line 2: no value for 'label'"),
    ("fsdd", "filename,speaker,index,digit\na.wav,nobody,0,1\n", ": speaker 'nobody' of 'a.wav' is not a speaker of george, "),
    ("fsdd", "filename,speaker,index,digit\na.wav,theo,first,1\n", ": index 'first' of 'a.wav' is not a whole number"),
    ("librosa-examples", "filename,duration_s\nvibeace.ogg,nan\n", ": duration_s 'nan' of 'vibeace.ogg' is not a positive number of seconds"),
])
def test_a_metadata_file_with_bad_values_is_one_error_naming_it(tmp_path, folder, text, message) -> None:
    from edge_sed.errors import AudioInputError
    from edge_sed.soundscape import load_catalog

    good = {"esc50-subset": "filename,label,fold\n", "fsdd": "filename,speaker,index,digit\n",
            "librosa-examples": "filename,duration_s\n", "backgrounds": "filename,description\n"}
    for name, header in good.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metadata.csv").write_text(text if name == folder else header)
    with pytest.raises(AudioInputError) as refused:
        load_catalog(tmp_path)
    assert str(refused.value).startswith(f"metadata file '{tmp_path / folder / 'metadata.csv'}'{message}")


def test_a_metadata_file_that_is_not_utf8_is_one_error(tmp_path) -> None:
    from edge_sed.errors import AudioInputError
    from edge_sed.soundscape import load_catalog

    (tmp_path / "esc50-subset").mkdir()
    (tmp_path / "esc50-subset" / "metadata.csv").write_bytes(b"filename,label,fold\n\xff\xfe.wav,dog,1\n")
    with pytest.raises(AudioInputError, match=r"metadata.csv' is not UTF-8 text"):
        load_catalog(tmp_path)
