"""Training-only augmentation, on the waveform (numpy, in the data workers) and
on the log-mel batch (torch, on the device).

Waveform (:class:`WaveformAugment`): random gain, random circular shift,
background recordings mixed in at a random SNR, reverberation through a
synthetic room impulse response (:func:`synthetic_rir`: a direct path, a few
early reflections and an exponentially decaying noise tail of random RT60), and
a low-pass at a random cutoff (a narrow-band microphone or codec), so a real
microphone in a real room is not a different world from the clean clips.

Log-mel (:func:`mixup`, :func:`spec_augment`): mixup mixes the inputs and
every target given (labels and teacher soft targets alike) with the same
weights; SpecAugment masks time and frequency stripes.

Evaluation never calls these: the loop applies them only to training batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.signal

from edge_sed.audio import read_audio
from edge_sed.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["AugmentConfig", "WaveformAugment", "synthetic_rir", "mixup", "spec_augment"]

log = logging.getLogger(__name__)

#: ln(1000): an amplitude decay of 60 dB.
_LN_60_DB = np.log(1000.0)
_SILENCE_RMS = 1e-5
#: Butterworth order of the band-limiting low-pass: about 48 dB per octave, as steep as a codec's.
_LOWPASS_ORDER = 8
_AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".opus", ".mp3")


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    """What to augment in training, and how much. A probability of 0 (or a
    width of 0) turns that augmentation off."""

    gain_db: float = 6.0
    shift_s: float = 0.0
    background_dir: str = ""
    background_prob: float = 0.0
    snr_min_db: float = 0.0
    snr_max_db: float = 20.0
    reverb_prob: float = 0.0
    rt60_min_s: float = 0.15
    rt60_max_s: float = 1.0
    mixup_alpha: float = 1.0
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bins: int = 8
    #: Low-pass some crops at a cutoff drawn between these: when only one source's clips are
    #: band-limited (FSDD's speech was recorded at 8 kHz), the bandwidth alone must not name the class.
    lowpass_prob: float = 0.0
    lowpass_min_hz: float = 3500.0
    lowpass_max_hz: float = 7000.0

    def __post_init__(self) -> None:
        for name in ("background_prob", "reverb_prob", "lowpass_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.snr_min_db > self.snr_max_db or not 0 < self.rt60_min_s <= self.rt60_max_s:
            raise ConfigError("need snr_min_db <= snr_max_db and 0 < rt60_min_s <= rt60_max_s")
        for name in ("gain_db", "shift_s", "mixup_alpha", "time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.lowpass_min_hz <= self.lowpass_max_hz:
            raise ConfigError(f"need 0 < lowpass_min_hz <= lowpass_max_hz, got {self.lowpass_min_hz!r} and {self.lowpass_max_hz!r}")
        if self.background_prob and not self.background_dir:
            raise ConfigError("background_prob > 0 needs background_dir (a folder of recordings)")


def synthetic_rir(rng: np.random.Generator, sample_rate: int, rt60_s: float) -> np.ndarray:
    """A synthetic room impulse response.

    A unit direct path at sample 0, 2-7 early reflections between 1 and 30 ms,
    and a Gaussian noise tail from 5-20 ms on, decaying by 60 dB over *rt60_s*,
    scaled to a random direct-to-reverberant ratio of -3 to 12 dB.

    Returns
    -------
    ndarray, shape (round(rt60_s * sample_rate),), float32
    """
    n_samples = max(round(rt60_s * sample_rate), 2)
    t = np.arange(n_samples) / sample_rate
    tail = rng.standard_normal(n_samples) * np.exp(-_LN_60_DB * t / rt60_s)
    tail[t < rng.uniform(0.005, 0.02)] = 0.0
    drr_db = rng.uniform(-3.0, 12.0)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / max(np.sum(tail**2), 1e-12))
    rir = tail
    rir[0] = 1.0
    for _ in range(rng.integers(2, 8)):
        delay = rng.uniform(0.001, 0.03)
        rir[min(round(delay * sample_rate), n_samples - 1)] += rng.choice((-1.0, 1.0)) * rng.uniform(0.1, 0.6) * np.exp(
            -_LN_60_DB * delay / rt60_s
        )
    return rir.astype(np.float32)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


class WaveformAugment:
    """Random gain, shift, background mixing and reverberation of one crop.

    Call with ``(samples, rng)``: samples float32 shape (n,) -> float32 shape (n,).
    Background recordings are read once (at *sample_rate*) on first use.
    """

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        if config.lowpass_prob and config.lowpass_max_hz >= sample_rate / 2:
            raise ConfigError(f"lowpass_max_hz must be below the Nyquist frequency ({sample_rate / 2:g} Hz), got {config.lowpass_max_hz:g}")
        self.config = config
        self.sample_rate = sample_rate
        self._backgrounds: list[np.ndarray] | None = None

    def _background_clips(self) -> list[np.ndarray]:
        if self._backgrounds is None:
            folder = Path(self.config.background_dir)
            paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _AUDIO_SUFFIXES)
            if not paths:
                raise ConfigError(f"background_dir {str(folder)!r} holds no audio files ({', '.join(_AUDIO_SUFFIXES)})")
            self._backgrounds = [read_audio(path, self.sample_rate)[0] for path in paths]
            log.info("read %d background recordings from %s", len(paths), folder)
        return self._backgrounds

    def _mix_background(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        backgrounds = self._background_clips()
        noise = backgrounds[rng.integers(len(backgrounds))]
        noise = np.roll(np.resize(noise, max(len(noise), len(samples))), -int(rng.integers(len(noise))))[: len(samples)]
        signal_rms, noise_rms = _rms(samples), _rms(noise)
        if signal_rms < _SILENCE_RMS or noise_rms < _SILENCE_RMS:
            return samples
        snr_db = rng.uniform(self.config.snr_min_db, self.config.snr_max_db)
        return samples + noise * (signal_rms / noise_rms / 10.0 ** (snr_db / 20.0))

    def _reverberate(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rir = synthetic_rir(rng, self.sample_rate, rng.uniform(self.config.rt60_min_s, self.config.rt60_max_s))
        wet = scipy.signal.fftconvolve(samples, rir)[: len(samples)]
        return wet * (_rms(samples) / max(_rms(wet), 1e-12))

    def _lowpass(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cutoff = rng.uniform(self.config.lowpass_min_hz, self.config.lowpass_max_hz)
        sos = scipy.signal.butter(_LOWPASS_ORDER, cutoff, btype="lowpass", fs=self.sample_rate, output="sos")
        return scipy.signal.sosfilt(sos, samples)

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        config = self.config
        if config.shift_s:
            samples = np.roll(samples, int(rng.integers(-1, 2) * rng.uniform(0, config.shift_s) * self.sample_rate))
        if config.reverb_prob and rng.random() < config.reverb_prob:
            samples = self._reverberate(samples, rng)
        if config.background_prob and rng.random() < config.background_prob:
            samples = self._mix_background(samples, rng)
        if config.lowpass_prob and rng.random() < config.lowpass_prob:
            samples = self._lowpass(samples, rng)
        if config.gain_db:
            samples = samples * 10.0 ** (rng.uniform(-config.gain_db, config.gain_db) / 20.0)
        return np.clip(samples, -1.0, 1.0).astype(np.float32)


def mixup(
    logmel: torch.Tensor, targets: list[torch.Tensor], alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Mix each example with a random partner, ``lam * a + (1 - lam) * b``.

    Parameters
    ----------
    logmel : tensor, shape (batch, frames, mels)
    targets : tensors of shape (batch, classes) (labels, teacher soft targets);
        each is mixed with the same partner and weight as its input
    alpha : the Beta(alpha, alpha) parameter; ``lam`` is folded to >= 0.5 so
        the first clip dominates (as in EfficientAT)
    rng : the random stream
    """
    import torch

    batch = logmel.shape[0]
    partner = torch.from_numpy(rng.permutation(batch)).to(logmel.device)
    lam = rng.beta(alpha, alpha, batch)
    lam = torch.from_numpy(np.maximum(lam, 1.0 - lam)).to(device=logmel.device, dtype=logmel.dtype)
    mixed = logmel * lam[:, None, None] + logmel[partner] * (1.0 - lam[:, None, None])
    return mixed, [target * lam[:, None] + target[partner] * (1.0 - lam[:, None]) for target in targets]


def spec_augment(logmel: torch.Tensor, config: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Time and frequency stripes set to each example's mean log-mel (what ``bn0`` maps near zero).

    Parameters
    ----------
    logmel : tensor, shape (batch, frames, mels)
    config : ``time_masks`` stripes up to ``time_mask_frames`` wide, ``freq_masks`` up to ``freq_mask_bins``
    rng : the random stream
    """
    import torch

    batch, n_frames, n_mels = logmel.shape
    keep = np.ones((batch, n_frames, n_mels), dtype=bool)
    for axis, n_masks, width, size in (
        (1, config.time_masks, config.time_mask_frames, n_frames),
        (2, config.freq_masks, config.freq_mask_bins, n_mels),
    ):
        width = min(width, size)
        for _ in range(n_masks if width else 0):
            widths = rng.integers(0, width + 1, batch)
            starts = rng.integers(0, size - widths + 1)
            positions = np.arange(size)[None, :]
            stripe = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
            keep &= ~(stripe[:, :, None] if axis == 1 else stripe[:, None, :])
    fill = logmel.mean(dim=(1, 2), keepdim=True)
    return torch.where(torch.from_numpy(keep).to(logmel.device), logmel, fill)
