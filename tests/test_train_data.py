"""Training data: CSV folders, presets, windows, the decoded-audio cache, PANNs HDF5 and AudioSet segment lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_sed.errors import ConfigError
from edge_sed.train.data import (
    AudioCache,
    ClipDataset,
    DataConfig,
    crop_offsets,
    read_audioset_hdf5,
    read_audioset_segments,
    read_dataset,
)

ESC_CLIPS = ("dog", "rain", "siren", "clapping")


def _write_csv(folder: Path, header: str, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return folder


@pytest.fixture()
def esc_folder(tmp_path: Path, data_dir: Path) -> Path:
    rows = [f"{next(data_dir.glob(f'esc50_{name}_*.flac'))},{name},{k % 2 + 1}" for k, name in enumerate(ESC_CLIPS)]
    return _write_csv(tmp_path / "esc", "filename,label,fold", rows)


def test_csv_dataset_has_labels_targets_and_folds(esc_folder: Path) -> None:
    table = read_dataset(DataConfig(kind="esc50", root=str(esc_folder)))
    assert table.labels == ("clapping", "dog", "rain", "siren")
    assert table.multi_label is False
    assert table.targets.sum(axis=1).tolist() == [1, 1, 1, 1]
    assert table.targets[0, table.labels.index("dog")] == 1.0
    train, val = table.split(2)
    assert len(train) == 2 and len(val) == 2
    assert set(val.folds.tolist()) == {2}
    with pytest.raises(ConfigError, match=r"val_fold 7 is not in the data; folds present: \[1, 2\]"):
        table.split(7)


def test_class_filter_and_multi_label(tmp_path: Path, data_dir: Path) -> None:
    dog = next(data_dir.glob("esc50_dog_*.flac"))
    folder = _write_csv(tmp_path / "m", "filename,label,fold", [f"{dog},dog;bark,1", f"{dog},rain,2"])
    table = read_dataset(DataConfig(kind="csv", root=str(folder)))
    assert table.multi_label is True
    assert table.labels == ("bark", "dog", "rain")
    assert table.targets.tolist() == [[1, 1, 0], [0, 0, 1]]
    only_rain = read_dataset(DataConfig(kind="csv", root=str(folder), classes=("rain",)))
    assert only_rain.labels == ("rain",) and len(only_rain) == 1
    with pytest.raises(ConfigError, match="'cat' is not a label"):
        read_dataset(DataConfig(kind="csv", root=str(folder), classes=("cat",)))


def test_fsdd_preset_labels_everything_speech_with_speaker_folds(tmp_path: Path, data_dir: Path) -> None:
    clip = data_dir / "fsdd_3_george_5.flac"
    folder = _write_csv(tmp_path / "fsdd", "filename,label,speaker", [f"{clip},three,george", f"{clip},four,jackson"])
    table = read_dataset(DataConfig(kind="fsdd", root=str(folder)))
    assert table.labels == ("speech",)
    assert table.folds.tolist() == [1, 2]


def test_librosa_preset_cuts_long_files_into_windows(tmp_path: Path, data_dir: Path) -> None:
    robin = data_dir / "librosa_robin.flac"  # 2.7 s
    folder = _write_csv(tmp_path / "lib", "filename,label", [f"{robin},bird"])
    table = read_dataset(DataConfig(kind="librosa", root=str(folder), window_s=1.0))
    assert len(table) == 2
    assert table.keys[1].endswith("@1")
    assert len(table.load(1, 16000)) == 16000


def test_missing_column_is_one_clear_error(tmp_path: Path) -> None:
    folder = _write_csv(tmp_path / "bad", "filename,category", ["a.flac,dog"])
    with pytest.raises(ConfigError, match="has no column 'label'; columns: filename, category"):
        read_dataset(DataConfig(kind="csv", root=str(folder), fold_column=""))


def test_audio_cache_stores_int16_and_resamples_once(tmp_path: Path, dog_clip: Path) -> None:
    cache = AudioCache(tmp_path / "cache")
    first = cache.load(dog_clip, 8000)
    files = list((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 1 and np.load(files[0]).dtype == np.int16
    again = cache.load(dog_clip, 8000)
    direct = AudioCache(None).load(dog_clip, 8000)
    assert len(first) == 40000
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, direct, atol=1.0 / 32767)


def test_hdf5_reader_reads_panns_layout(tmp_path: Path, dog_audio: tuple[np.ndarray, int]) -> None:
    h5py = pytest.importorskip("h5py")
    samples, _ = dog_audio
    waveform = np.stack([samples[:32000], samples[32000:64000]])
    target = np.zeros((2, 527), dtype=bool)
    target[0, 74] = target[1, [0, 74]] = True  # 74: Dog, 0: Speech
    path = tmp_path / "balanced.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("audio_name", data=np.array([b"Yabc.wav", b"Ydef.wav"], dtype="S20"))
        h5.create_dataset("waveform", data=np.round(waveform * 32767).astype(np.int16))
        h5.create_dataset("target", data=target)
    table = read_audioset_hdf5(path, sample_rate=16000)
    assert table.keys == ("Yabc.wav", "Ydef.wav")
    assert table.labels[74] == "Dog" and table.labels[0] == "Speech"
    assert table.multi_label and table.targets[1].sum() == 2
    np.testing.assert_allclose(table.load(1, 16000), waveform[1], atol=1.0 / 32767)
    assert len(table.load(0, 8000)) == 16000
    notes = tmp_path / "notes.h5"
    notes.write_text("not HDF5\n")
    with pytest.raises(ConfigError, match=r"is not an HDF5 file; give AudioSet packed as PANNs does"):
        read_audioset_hdf5(notes)


def test_audioset_segment_list_over_a_folder(tmp_path: Path, dog_audio: tuple[np.ndarray, int]) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "Yabc.flac", dog_audio[0], dog_audio[1])
    segments = tmp_path / "balanced_train_segments.csv"
    segments.write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        'abc, 30.000, 40.000, "/m/0bt9lr,/m/09x0r"\n'
        'gone, 0.000, 10.000, "/m/09x0r"\n',
        encoding="utf-8",
    )
    table = read_audioset_segments(segments, audio)
    assert table.keys == ("abc",)
    assert table.targets.shape == (1, 527)
    assert [table.labels[k] for k in np.flatnonzero(table.targets[0])] == ["Speech", "Dog"]


def test_training_crops_are_random_and_on_the_grid(esc_folder: Path) -> None:
    table = read_dataset(DataConfig(kind="esc50", root=str(esc_folder)))
    assert crop_offsets(80000, 32000, 8000).tolist() == [0, 8000, 16000, 24000, 32000, 40000, 48000]
    free = ClipDataset(table, 16000, crop_s=2.0, seed=1)
    starts = set()
    full = table.load(0, 16000)
    for epoch in range(4):
        free.set_epoch(epoch)
        crop = free[0]["waveform"]
        assert crop.shape == (32000,)
        starts.add(int(np.argmax(np.correlate(full[:80000], crop[:2000], mode="valid"))))
    assert len(starts) > 1
    grid = ClipDataset(table, 16000, crop_s=2.0, crop_grid_s=0.5, seed=1)
    item = grid[0]
    start = item["crop"] * 8000
    np.testing.assert_array_equal(item["waveform"], full[start : start + 32000])
    whole = ClipDataset(table, 16000)[0]
    assert whole["waveform"].shape == (80000,) and whole["crop"] == 0
