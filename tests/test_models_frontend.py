"""The torch log-mel twin: equal to the numpy front end, and to PANNs' convolutional STFT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edge_sed.audio import read_audio
from edge_sed.config import PANNS_16K, PANNS_32K, FrontendConfig
from edge_sed.frontend import LogMel
from edge_sed.models.frontend import TorchLogMel

CLIPS = sorted((Path(__file__).parent / "data").glob("*.flac"))
#: PANNs' convolutional STFT holds its kernels in float32; their rounding is noise
#: about this far below a frame's peak, so parity is asserted above it.
FLOAT32_KERNEL_FLOOR_DB = 60.0


@pytest.mark.parametrize("config", [PANNS_32K, PANNS_16K], ids=["32k", "16k"])
def test_torch_equals_numpy_on_real_clips(config: FrontendConfig) -> None:
    torch_logmel, numpy_logmel = TorchLogMel(config), LogMel(config)
    for clip in CLIPS:
        samples, _ = read_audio(clip, config.sample_rate)
        with torch.no_grad():
            got = torch_logmel(torch.from_numpy(samples)[None])[0].numpy()
        expected = numpy_logmel(samples)
        assert got.shape == expected.shape == (config.n_frames(len(samples)), config.n_mels)
        assert np.abs(got - expected).max() < 1e-3, clip.name


def _conv_stft_logmel(state: dict[str, torch.Tensor], waveform: torch.Tensor, config: FrontendConfig) -> torch.Tensor:
    """PANNs' (torchlibrosa's) front end, computed from the state_dict's own kernels."""
    padded = F.pad(waveform[:, None], (config.n_fft // 2, config.n_fft // 2), mode="reflect")
    real = F.conv1d(padded, state["spectrogram_extractor.stft.conv_real.weight"], stride=config.hop_length)
    imag = F.conv1d(padded, state["spectrogram_extractor.stft.conv_imag.weight"], stride=config.hop_length)
    power = (real**2 + imag**2).transpose(1, 2)
    return 10 * torch.log10(torch.clamp(power @ state["logmel_extractor.melW"], min=1e-10))


@pytest.mark.parametrize("config", [PANNS_32K, PANNS_16K], ids=["32k", "16k"])
def test_torch_stft_reproduces_panns_conv_stft(config: FrontendConfig) -> None:
    frontend, conv_frontend = TorchLogMel(config), TorchLogMel(config, conv_stft=True)
    state = frontend.state_dict()
    assert list(state) == ["spectrogram_extractor.stft.conv_real.weight",
                           "spectrogram_extractor.stft.conv_imag.weight", "logmel_extractor.melW"]
    # the kernels are the windowed DFT: check them against numpy's FFT of a windowed identity
    dft = np.fft.rfft(np.diag(np.hanning(config.n_fft + 1)[:-1]), axis=0)
    assert np.abs(state["spectrogram_extractor.stft.conv_real.weight"][:, 0].numpy() - dft.real).max() < 1e-6
    assert np.abs(state["spectrogram_extractor.stft.conv_imag.weight"][:, 0].numpy() - dft.imag).max() < 1e-6
    worst_all = 0.0
    for clip in CLIPS:
        samples, _ = read_audio(clip, config.sample_rate)
        waveform = torch.from_numpy(samples)[None]
        with torch.no_grad():
            got, official = frontend(waveform)[0], _conv_stft_logmel(state, waveform, config)[0]
        error = (got - official).abs()
        audible = official >= official.amax(dim=1, keepdim=True) - FLOAT32_KERNEL_FLOOR_DB
        assert error[audible].max() < 1e-3, clip.name
        worst_all = max(worst_all, error.max().item())
        with torch.no_grad():  # PANNs' own computation, for official checkpoints: the same numbers
            assert torch.equal(conv_frontend(waveform)[0], official)
    assert worst_all < 0.05  # float32 round-off only, even 100 dB down


def test_numpy_frontend_does_not_import_torch() -> None:
    code = "import sys, edge_sed.frontend, edge_sed.models; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
