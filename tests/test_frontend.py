"""The numpy log-mel front end: definition, and streaming equal to offline."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from edge_sed.config import PANNS_16K, PANNS_32K, FrontendConfig
from edge_sed.frontend import LogMel, StreamingLogMel, mel_filterbank


def test_filterbank_shape_and_slaney_area_normalisation() -> None:
    basis = mel_filterbank(PANNS_32K)
    assert basis.shape == (513, 64) and basis.dtype == np.float32
    freqs = np.linspace(0, 16000, 513)
    # Slaney normalisation: each triangle has area ~1 in Hz (width 2/(f_hi-f_lo) peak).
    areas = np.trapezoid(basis, freqs, axis=0)
    assert np.allclose(areas[16:], 1.0, rtol=0.06) and np.allclose(areas[40:], 1.0, rtol=0.01)
    # no weight outside fmin..fmax
    assert basis[freqs < 50].sum() == 0 and basis[freqs > 14000].sum() == 0


def test_logmel_matches_direct_definition(dog_audio) -> None:
    samples, rate = dog_audio
    config = PANNS_16K
    got = LogMel(config)(samples)
    _, _, spec = scipy.signal.stft(
        np.pad(samples, 256, mode="reflect"), window="hann", nperseg=512, noverlap=512 - 160,
        boundary=None, padded=False, scaling="spectrum", detrend=False,
    )
    power = np.abs(spec * scipy.signal.get_window("hann", 512).sum()) ** 2
    expected = 10 * np.log10(np.maximum(power.T.astype(np.float64) @ mel_filterbank(config), 1e-10))
    assert got.shape == (1 + len(samples) // 160, 64)
    assert np.abs(got - expected).max() < 1e-3


@pytest.mark.parametrize("block", [160, 1024, 1280, 4096, 7])
def test_streaming_equals_offline_for_any_block_size(dog_audio, block: int) -> None:
    samples, _ = dog_audio
    offline = LogMel(PANNS_16K)(samples)
    stream = StreamingLogMel(PANNS_16K)
    parts = [stream.push(samples[i : i + block]) for i in range(0, len(samples), block)]
    parts.append(stream.flush())
    streamed = np.concatenate(parts)
    assert streamed.shape == offline.shape
    assert np.abs(streamed - offline).max() < 1e-4


@pytest.mark.parametrize("n", [1, 100, 256, 257, 999])
def test_streaming_short_streams(dog_audio, n: int) -> None:
    samples = dog_audio[0][:n]
    stream = StreamingLogMel(PANNS_16K)
    streamed = np.concatenate([stream.push(samples), stream.flush()])
    np.testing.assert_allclose(streamed, LogMel(PANNS_16K)(samples), atol=1e-4)


def test_silence_floors_at_amin() -> None:
    config = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, fmax=8000.0)
    out = LogMel(config)(np.zeros(16000, dtype=np.float32))
    np.testing.assert_allclose(out, -100.0, atol=1e-4)


def test_periodic_hann_equals_scipy() -> None:
    from edge_sed.frontend import periodic_hann

    for n_fft in (512, 1024):
        expected = scipy.signal.get_window("hann", n_fft, fftbins=True)
        np.testing.assert_allclose(periodic_hann(n_fft), expected, atol=1e-7)


def test_reused_work_arrays_change_no_result(dog_audio) -> None:
    samples, sample_rate = dog_audio
    logmel = LogMel(PANNS_16K)
    whole = logmel(samples)
    kept = whole.copy()
    short, longer = logmel(samples[: sample_rate // 2]), logmel(samples)
    assert np.array_equal(whole, kept)  # a later call does not write into an earlier result
    assert np.array_equal(longer, whole)
    assert np.array_equal(short, LogMel(logmel.config)(samples[: sample_rate // 2]))


def test_numpy_1_fft_path_gives_the_same_numbers(dog_audio, monkeypatch) -> None:
    import edge_sed.frontend

    samples, _ = dog_audio
    into_given_array = LogMel(PANNS_16K)(samples)
    monkeypatch.setattr(edge_sed.frontend, "_FFT_TAKES_OUT", False)  # numpy 1: rfft returns a new array
    assert np.array_equal(LogMel(PANNS_16K)(samples), into_given_array)
