"""Reading audio: clipping is warned about once per file, or once per batch of files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_sed.audio import clipping_summary, read_audio


def _write(path: Path, samples: np.ndarray, rate: int) -> Path:
    sf.write(path, samples, rate, subtype="PCM_16")
    return path


def _clipping_warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING and "clipped" in record.getMessage()]


def test_clipped_files_in_a_batch_make_one_warning(tmp_path, dog_audio, caplog) -> None:
    samples, rate = dog_audio
    loud = np.clip(samples * (1.0 / np.abs(samples).max()) * 4.0, -1.0, 1.0)  # the real dog, driven into clipping
    files = [
        _write(tmp_path / "quiet.wav", samples, rate),
        _write(tmp_path / "loud.wav", loud, rate),
        _write(tmp_path / "louder.wav", np.clip(loud * 2.0, -1.0, 1.0), rate),
    ]
    with caplog.at_level(logging.WARNING, logger="edge_sed.audio"):
        for path in files:
            read_audio(path)
    assert len(_clipping_warnings(caplog)) == 2  # alone: one line per clipped file

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge_sed.audio"), clipping_summary("test clips"):
        with clipping_summary("inner"):  # nested: reported once, by the outer block
            for path in files + files:  # each file counted once however often it is read
                read_audio(path)
    (line,) = _clipping_warnings(caplog)
    assert line.startswith("2 of 3 test clips have clipped samples") and "louder.wav" in line

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge_sed.audio"), clipping_summary("test clips"):
        read_audio(files[0])
    assert _clipping_warnings(caplog) == []
