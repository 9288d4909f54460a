"""Reading and writing audio: clipping, and a rate below the one asked for, are warned about once
per file, or once per batch of files; pipes are read; files are written whole or not at all."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from edge_sed.audio import read_audio, read_warning_summary, write_audio

from conftest import DATA


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
    with caplog.at_level(logging.WARNING, logger="edge_sed.audio"), read_warning_summary("test clips"):
        with read_warning_summary("inner"):  # nested: reported once, by the outer block
            for path in files + files:  # each file counted once however often it is read
                read_audio(path)
    (line,) = _clipping_warnings(caplog)
    assert line.startswith("2 of 3 test clips have clipped samples") and "louder.wav" in line

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge_sed.audio"), read_warning_summary("test clips"):
        read_audio(files[0])
    assert _clipping_warnings(caplog) == []


def test_files_sampled_below_the_rate_they_are_read_at_are_taken_with_a_warning(tmp_path, dog_audio, caplog) -> None:
    samples, rate = dog_audio
    assert rate == 16000
    full = _write(tmp_path / "full.wav", samples, rate)
    narrow = _write(tmp_path / "narrow.wav", soxr.resample(samples, rate, 8000), 8000)
    narrower = _write(tmp_path / "narrower.wav", soxr.resample(samples, rate, 6000), 6000)
    with caplog.at_level(logging.WARNING, logger="edge_sed.audio"):
        read_audio(full, 16000)
        read_audio(narrow)  # read at its own rate: nothing is missing
        assert caplog.records == []
        out, out_rate = read_audio(narrow, 16000)
    assert out_rate == 16000 and abs(len(out) - len(samples)) <= 2
    assert [r.getMessage() for r in caplog.records] == [
        f"{narrow} is sampled at 8000 Hz, below the 16000 Hz it is read at: it has no sound above 4 kHz, "
        "and scores may suffer; record at 16000 Hz or more where you can"
    ]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge_sed.audio"), read_warning_summary("test clips"):
        for path in (full, narrow, narrower, narrow):
            read_audio(path, 16000)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"2 of 3 test clips are sampled below the rate they are read at (lowest: {narrower}, 6000 Hz, read at 16000 Hz)")


def test_write_audio_leaves_the_old_file_and_no_partial_one_when_the_disk_is_full(tmp_path) -> None:
    """A real write error: the file size limit (RLIMIT_FSIZE) stands in for a full disk, in a child process."""
    import subprocess
    import sys
    import textwrap

    target = tmp_path / "clip.flac"
    target.write_bytes(b"the previous file")
    child = textwrap.dedent(f"""
        import resource, signal
        import numpy as np
        from edge_sed.audio import write_audio
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        noise = np.random.default_rng(0).uniform(-0.5, 0.5, 16000 * 10).astype(np.float32)
        try:
            write_audio({str(target)!r}, noise, 16000)
        except OSError as exc:
            print(exc.filename, exc.strerror)
    """)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{target} ")
    assert target.read_bytes() == b"the previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.flac"]


def test_write_audio_round_trips_flac_and_wav(tmp_path) -> None:
    tone = (0.5 * np.sin(np.arange(1600) / 5)).astype(np.float32)
    for name in ("a.flac", "a.wav"):
        write_audio(tmp_path / name, tone, 16000)
        back, rate = read_audio(tmp_path / name)
        assert rate == 16000 and np.allclose(back, tone, atol=1 / 32768)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "a.wav"]


def test_encoded_audio_from_a_pipe_is_read(tmp_path) -> None:
    """``cat dog.flac | edge-sed tag /dev/stdin ...``: libsndfile cannot seek a pipe, so its bytes are read first."""
    import os
    import threading

    dog = DATA / "esc50_dog_5-203128-A-0.flac"
    fifo = tmp_path / "audio.pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(dog.read_bytes()))
    writer.start()
    samples, rate = read_audio(fifo)
    writer.join()
    expected, expected_rate = read_audio(dog)
    assert rate == expected_rate and np.array_equal(samples, expected)
