"""Log-mel front end in numpy: offline (:class:`LogMel`) and incremental
(:class:`StreamingLogMel`).

The definition (one for the whole project; the torch twin in
``edge_sed.models.frontend`` must give the same numbers):

- periodic Hann window of ``n_fft`` samples, centred STFT with reflect padding
  of ``n_fft // 2`` samples on both sides, hop ``hop_length``;
- power spectrogram ``|X|**2``;
- Slaney-style mel filters with Slaney normalisation (librosa's and
  torchlibrosa's default, as PANNs uses them);
- ``10 * log10(max(mel, amin))`` with reference 1.0 and no ``top_db`` clipping.
"""

from __future__ import annotations

import numpy as np

from edge_sed.config import FrontendConfig

__all__ = ["periodic_hann", "mel_filterbank", "LogMel", "StreamingLogMel"]

#: numpy 2 writes an FFT into a given array; numpy 1 (which tflite-runtime, LiteRT's fallback, needs)
#: returns a new one.
_FFT_TAKES_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"

_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0  # ... and logarithmic above


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def periodic_hann(n_fft: int) -> np.ndarray:
    """The periodic ("DFT-even") Hann window, as ``scipy.signal.get_window("hann", n_fft)``.

    Written out here because importing scipy.signal costs about 50 MB of memory and
    a second of start-up. float64, so that the FFT it feeds runs in float64.
    """
    n = np.arange(n_fft, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)


def mel_filterbank(config: FrontendConfig) -> np.ndarray:
    """Slaney mel filters, as ``librosa.filters.mel(...).T`` (PANNs' ``melW``).

    Returns
    -------
    ndarray, shape (n_fft // 2 + 1, n_mels), float32
    """
    fft_freqs = np.linspace(0.0, config.sample_rate / 2, config.n_freqs)
    mel_edges = _mel_to_hz(
        np.linspace(_hz_to_mel(config.fmin), _hz_to_mel(config.fmax), config.n_mels + 2)
    )
    widths = np.diff(mel_edges)
    ramps = mel_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_edges[2:] - mel_edges[:-2]))[:, None]
    return np.ascontiguousarray(weights.T, dtype=np.float32)


class LogMel:
    """Offline log-mel of a whole waveform.

    Parameters
    ----------
    config : FrontendConfig

    Call with a float waveform of shape (n_samples,) to get
    ndarray, shape (1 + n_samples // hop_length, n_mels), float32.

    It keeps its float64 work arrays, the FFT's output among them, from call to
    call (a 1 s window at 32 kHz needs about 2 MB; allocating them afresh each
    time cost as much as the FFT in page faults), so one instance is not to be
    shared between threads.
    """

    def __init__(self, config: FrontendConfig) -> None:
        self.config = config
        # float64, so the FFT runs in float64: float32 FFTs (numpy's, torch's) differ from
        # each other by up to 0.03 dB in bins far below a frame's peak.
        self.window = periodic_hann(config.n_fft)
        self.mel_basis = mel_filterbank(config)
        self._windowed = np.empty((0, config.n_fft))
        self._spectrum = np.empty((0, config.n_freqs), dtype=np.complex128)
        self._power = np.empty((0, config.n_freqs), dtype=np.float32)

    def frames_to_logmel(self, frames: np.ndarray) -> np.ndarray:
        """Log-mel of already framed audio, shape (k, n_fft) -> (k, n_mels)."""
        k = len(frames)
        if len(self._windowed) < k:
            self._windowed = np.empty((k, self.config.n_fft))
            self._spectrum = np.empty((k, self.config.n_freqs), dtype=np.complex128)
            self._power = np.empty((k, self.config.n_freqs), dtype=np.float32)
        windowed, spectrum, power = self._windowed[:k], self._spectrum[:k], self._power[:k]
        np.multiply(frames, self.window, out=windowed)
        if _FFT_TAKES_OUT:
            np.fft.rfft(windowed, axis=-1, out=spectrum)
        else:
            spectrum[...] = np.fft.rfft(windowed, axis=-1)
        spectrum = spectrum.view(np.float64)  # (re, im) pairs
        np.square(spectrum, out=spectrum)
        np.add(spectrum[:, 0::2], spectrum[:, 1::2], out=power, casting="same_kind")  # summed in float64, stored as float32
        mel = power @ self.mel_basis
        np.maximum(mel, self.config.amin, out=mel)
        np.log10(mel, out=mel)
        mel *= 10.0
        return mel

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        waveform = np.asarray(waveform, dtype=np.float32)
        pad = self.config.n_fft // 2
        padded = np.pad(waveform, pad, mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.config.n_fft)[:: self.config.hop_length]
        return self.frames_to_logmel(frames)


class StreamingLogMel:
    """Incremental log-mel: each frame is computed once, as samples arrive.

    ``push(block)`` returns the frames that became complete; ``flush()`` adds the
    right reflect padding and returns the last frames. Over a whole stream the
    concatenated output equals :class:`LogMel` on the whole waveform (to float32
    rounding), whatever the block sizes.
    """

    def __init__(self, config: FrontendConfig) -> None:
        self.config = config
        self._logmel = LogMel(config)
        self._pad = config.n_fft // 2
        self.reset()

    def reset(self) -> None:
        """Forget all audio; the next sample is the stream's first."""
        self._pending = np.zeros(0, dtype=np.float32)  # samples from the next frame's start on
        self._head = np.zeros(0, dtype=np.float32)  # the first samples, until the left pad is made
        self._recent = np.zeros(0, dtype=np.float32)  # the last n_fft//2 + 1 real samples
        self._started = False
        self._n_samples = 0
        self._n_frames = 0

    @property
    def n_frames(self) -> int:
        """Frames emitted so far."""
        return self._n_frames

    def push(self, block: np.ndarray) -> np.ndarray:
        """Take samples, shape (n,); return new frames, shape (k, n_mels)."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._n_samples += block.size
        self._recent = np.concatenate([self._recent, block])[-(self._pad + 1) :]
        if not self._started:
            self._head = np.concatenate([self._head, block])
            if self._head.size <= self._pad:
                return np.zeros((0, self.config.n_mels), dtype=np.float32)
            left = self._head[1 : self._pad + 1][::-1]
            block, self._head, self._started = np.concatenate([left, self._head]), self._head[:0], True
        self._pending = np.concatenate([self._pending, block])
        return self._emit()

    def flush(self) -> np.ndarray:
        """Finish the stream: right reflect padding, then the remaining frames."""
        if not self._started:  # shorter than the padding: compute offline
            frames = self._logmel(self._head) if self._head.size else np.zeros((0, self.config.n_mels), np.float32)
            self._n_frames += len(frames)
            self._head = self._head[:0]
            return frames
        total = self.config.n_frames(self._n_samples)
        right = self._recent[:-1][::-1]  # numpy's reflect padding: x[n-2], x[n-3], ...
        self._pending = np.concatenate([self._pending, right])
        return self._emit(limit=total - self._n_frames)

    def _emit(self, limit: int | None = None) -> np.ndarray:
        n_fft, hop = self.config.n_fft, self.config.hop_length
        count = 0 if self._pending.size < n_fft else 1 + (self._pending.size - n_fft) // hop
        if limit is not None:
            count = min(count, limit)
        if count == 0:
            return np.zeros((0, self.config.n_mels), dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self._pending, n_fft)[::hop][:count]
        frames = self._logmel.frames_to_logmel(windows)
        self._pending = self._pending[count * hop :].copy()
        self._n_frames += count
        return frames
