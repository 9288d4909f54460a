"""The torch twin of :class:`edge_sed.frontend.LogMel`, checkpoint-compatible with PANNs.

:class:`TorchLogMel` computes the same log-mel as the numpy front end (periodic
Hann window, centred reflect-padded STFT, power, Slaney mel filters,
``10*log10(max(x, amin))``) with :func:`torch.stft`. Its two children carry
PANNs' (torchlibrosa's) state_dict names and shapes, so official checkpoints
load with ``strict=True``:

- ``spectrogram_extractor.stft.conv_real.weight`` / ``conv_imag.weight``,
  shape (n_fft // 2 + 1, 1, n_fft): the windowed DFT kernels of PANNs'
  convolutional STFT. They are frozen and kept only for the checkpoint format;
  :func:`torch.stft` computes the same spectrogram (about 10x faster).
- ``logmel_extractor.melW``, shape (n_fft // 2 + 1, n_mels): the mel matrix
  that is applied (a checkpoint's own ``melW`` is used as loaded).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edge_sed.config import FrontendConfig
from edge_sed.frontend import mel_filterbank

__all__ = ["TorchLogMel", "PowerSpectrogram", "MelScale", "dft_kernels"]


def dft_kernels(config: FrontendConfig) -> tuple[np.ndarray, np.ndarray]:
    """PANNs' convolutional-STFT kernels: periodic-Hann-windowed DFT rows.

    Returns
    -------
    real, imag : ndarray, shape (n_fft // 2 + 1, 1, n_fft), float32
        ``cos(2 pi k n / n_fft) * w[n]`` and ``-sin(2 pi k n / n_fft) * w[n]``.
    """
    n = np.arange(config.n_fft)
    k = np.arange(config.n_freqs)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / config.n_fft)  # periodic Hann
    phase = 2 * np.pi * ((k * n) % config.n_fft) / config.n_fft
    real = (np.cos(phase) * window)[:, None, :]
    imag = (-np.sin(phase) * window)[:, None, :]
    return real.astype(np.float32), imag.astype(np.float32)


class _FrozenKernel(nn.Module):
    """Holds one frozen ``weight`` (PANNs' ``conv_real`` / ``conv_imag`` Conv1d)."""

    def __init__(self, weight: np.ndarray) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight), requires_grad=False)


class _StftKernels(nn.Module):
    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        real, imag = dft_kernels(config)
        self.conv_real = _FrozenKernel(real)
        self.conv_imag = _FrozenKernel(imag)


class PowerSpectrogram(nn.Module):
    """Waveform (batch, n_samples) -> power spectrogram (batch, frames, n_fft // 2 + 1).

    By default :func:`torch.stft` in float64, as in the numpy front end: float32
    FFTs differ from each other by up to 0.03 dB in bins far below a frame's peak.
    With ``conv_stft`` it runs PANNs' own computation instead, a float32 conv1d
    with the stored kernels (10x slower): official checkpoints then give the
    official code's scores to float rounding, even where a random or hot model's
    ``bn0`` magnifies the float32 noise of those far-down bins.
    """

    def __init__(self, config: FrontendConfig, *, conv_stft: bool = False) -> None:
        super().__init__()
        self.n_fft = config.n_fft
        self.hop_length = config.hop_length
        self.conv_stft = conv_stft
        self.stft = _StftKernels(config)
        window = torch.hann_window(config.n_fft, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window, persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.conv_stft:
            padded = F.pad(waveform[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
            real = F.conv1d(padded, self.stft.conv_real.weight, stride=self.hop_length)
            imag = F.conv1d(padded, self.stft.conv_imag.weight, stride=self.hop_length)
            return (real**2 + imag**2).transpose(1, 2)
        spectrum = torch.stft(
            waveform.to(torch.float64),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return (spectrum.real**2 + spectrum.imag**2).transpose(1, 2).to(waveform.dtype)


class MelScale(nn.Module):
    """Power spectrogram (batch, frames, n_freqs) -> log-mel (batch, frames, n_mels) in dB."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.amin = config.amin
        self.melW = nn.Parameter(torch.tensor(mel_filterbank(config)), requires_grad=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(power @ self.melW, min=self.amin))


class TorchLogMel(nn.Module):
    """Waveform (batch, n_samples) -> log-mel (batch, 1 + n_samples // hop_length, n_mels).

    The same definition as the numpy :class:`edge_sed.frontend.LogMel`;
    ``conv_stft=True`` computes it as PANNs does (see :class:`PowerSpectrogram`).
    Models register the two children under the same names at their top level.
    """

    def __init__(self, config: FrontendConfig, *, conv_stft: bool = False) -> None:
        super().__init__()
        self.config = config
        self.spectrogram_extractor = PowerSpectrogram(config, conv_stft=conv_stft)
        self.logmel_extractor = MelScale(config)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.logmel_extractor(self.spectrogram_extractor(waveform))
