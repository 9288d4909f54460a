"""Balanced sampling (one process and DDP ranks), augmentation and the tagging metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sed.errors import ConfigError
from edge_sed.train.augment import AugmentConfig, WaveformAugment, mixup, spec_augment, synthetic_rir
from edge_sed.train.loop import load_recipe
from edge_sed.train.metrics import average_precision, d_prime, roc_auc, tagging_metrics
from edge_sed.train.sampler import BalancedSampler


def _imbalanced_targets() -> np.ndarray:
    labels = np.r_[np.zeros(90, int), np.ones(9, int), np.full(3, 2)]
    return np.eye(3, dtype=np.float32)[labels]


def test_balanced_sampler_sees_every_class_equally_often() -> None:
    targets = _imbalanced_targets()
    sampler = BalancedSampler(targets, n_samples=300, seed=3)
    counts = np.bincount(targets[list(sampler)].argmax(axis=1), minlength=3)
    assert counts.tolist() == [100, 100, 100]
    sampler.set_epoch(1)
    assert list(sampler) != list(BalancedSampler(targets, n_samples=300, seed=3))


def test_distributed_ranks_split_one_balanced_sequence() -> None:
    targets = _imbalanced_targets()
    whole = list(BalancedSampler(targets, n_samples=60, seed=5))
    ranks = [list(BalancedSampler(targets, n_samples=60, seed=5, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 30
    assert ranks[0] == whole[0::2] and ranks[1] == whole[1::2]


def test_mixup_mixes_inputs_labels_and_soft_targets_alike() -> None:
    logmel = torch.arange(4, dtype=torch.float32)[:, None, None].expand(4, 3, 2).clone()
    labels = torch.eye(4)
    soft = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.0, 1.0]])
    mixed, (mixed_labels, mixed_soft) = mixup(logmel, [labels, soft], 1.0, np.random.default_rng(0))
    for i in range(4):
        row = mixed_labels[i]
        assert float(row.sum()) == pytest.approx(1.0)
        own = float(row[i])
        assert own >= 0.5
        partner = int(torch.argmax(row * (torch.arange(4) != i))) if own < 1.0 else i
        lam = own if partner != i else 1.0
        assert float(mixed[i, 0, 0]) == pytest.approx(lam * i + (1 - lam) * partner)
        np.testing.assert_allclose(mixed_soft[i], lam * soft[i] + (1 - lam) * soft[partner], atol=1e-6)


def test_spec_augment_masks_stripes_with_the_mean() -> None:
    logmel = torch.randn(2, 100, 64)
    config = AugmentConfig(time_masks=1, time_mask_frames=30, freq_masks=1, freq_mask_bins=10)
    out = spec_augment(logmel, config, np.random.default_rng(4))
    changed = out != logmel
    assert changed.any()
    for b in range(2):
        masked_frames = changed[b].all(dim=1).sum()
        masked_bins = changed[b].all(dim=0).sum()
        assert masked_frames <= 30 and masked_bins <= 10
        assert torch.allclose(out[b][changed[b]], logmel[b].mean().expand(int(changed[b].sum())))


def test_synthetic_rir_decays_by_60_db_over_rt60() -> None:
    rng = np.random.default_rng(7)
    rir = synthetic_rir(rng, 16000, rt60_s=0.5)
    assert rir.shape == (8000,) and rir[0] >= 0.9
    tail = rir[800:] ** 2  # past the early reflections
    early, late = tail[:1000].mean(), tail[-1000:].mean()
    assert 10 * np.log10(early / late) > 35


def test_background_mix_reaches_the_drawn_snr(data_dir: Path, dog_audio: tuple[np.ndarray, int]) -> None:
    samples = dog_audio[0][:32000]
    config = AugmentConfig(
        gain_db=0.0, background_dir=str(data_dir), background_prob=1.0, snr_min_db=10.0, snr_max_db=10.0
    )
    mixed = WaveformAugment(config, 16000)(samples, np.random.default_rng(0))
    noise = mixed - samples
    snr = 10 * np.log10(np.mean(samples**2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.5)  # clipping to [-1, 1] moves it a little at most


def _band_db(samples: np.ndarray, rate: int, low_hz: float, high_hz: float) -> float:
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return 10 * np.log10(power[(freqs >= low_hz) & (freqs < high_hz)].sum())


def test_lowpass_band_limits_a_real_recording(data_dir: Path) -> None:
    samples, rate = sf.read(next(data_dir.glob("esc50_rain_*.flac")), dtype="float32")  # broadband
    config = AugmentConfig(gain_db=0.0, lowpass_prob=1.0, lowpass_min_hz=4000.0, lowpass_max_hz=4000.0)
    limited = WaveformAugment(config, rate)(samples, np.random.default_rng(0))
    assert limited.dtype == np.float32 and limited.shape == samples.shape
    assert _band_db(samples, rate, 6000, 8000) - _band_db(limited, rate, 6000, 8000) > 40  # an octave up: gone
    assert _band_db(samples, rate, 100, 3000) - _band_db(limited, rate, 100, 3000) == pytest.approx(0.0, abs=0.5)
    untouched = WaveformAugment(dataclasses.replace(config, lowpass_prob=0.0), rate)(samples, np.random.default_rng(0))
    np.testing.assert_array_equal(untouched, samples)


def test_lowpass_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="lowpass_min_hz <= lowpass_max_hz"):
        AugmentConfig(lowpass_min_hz=6000.0, lowpass_max_hz=5000.0)
    with pytest.raises(ConfigError, match="below the Nyquist frequency \\(8000 Hz\\)"):
        WaveformAugment(AugmentConfig(lowpass_prob=0.5, lowpass_max_hz=8000.0), 16000)


def test_metrics_match_hand_computations() -> None:
    target = np.array([1, 0, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1, 0.7])
    # thresholds 0.9: P=1 R=.5; 0.8: P=.5 R=.5; 0.7 (two clips): P=2/4 R=1 -> AP = .5*1 + .5*.5
    assert average_precision(target, score) == pytest.approx(0.75)
    # pairs (pos, neg): (.9: 3 wins), (.7: beats .1, ties .7, loses .8) -> (3 + 1.5) / 6
    assert roc_auc(target, score) == pytest.approx(4.5 / 6)
    assert d_prime(0.5) == pytest.approx(0.0)
    metrics = tagging_metrics(np.eye(3)[[0, 1, 2, 0]], np.eye(3)[[0, 1, 1, 0]] * 0.8 + 0.1, multi_label=False)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert np.isnan(average_precision(np.zeros(3), np.ones(3)))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(min_value=2, max_value=60), decimals=st.integers(min_value=0, max_value=3))
def test_metrics_equal_scikit_learns(data, n: int, decimals: int) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    target = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    score = np.round(np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))), decimals)  # ties
    if target.any():
        assert average_precision(target, score) == pytest.approx(sklearn_metrics.average_precision_score(target, score))
    if 0 < target.sum() < n:
        assert roc_auc(target, score) == pytest.approx(sklearn_metrics.roc_auc_score(target, score))


@settings(max_examples=50, deadline=None)
@given(
    epochs=st.integers(min_value=1, max_value=10_000),
    lr=st.floats(min_value=1e-6, max_value=1.0, allow_nan=False),
    out=st.text(alphabet="abcXYZ019_-./", min_size=1, max_size=20),
)
def test_recipe_overrides_parse_toml_values_and_bare_strings(epochs: int, lr: float, out: str) -> None:
    base = {"data": {"kind": "esc50", "root": "x"}}
    recipe = load_recipe(base, [f"train.epochs={epochs}", f"train.lr={lr!r}", f"train.out_dir={out}"])
    assert recipe.train.epochs == epochs
    assert recipe.train.lr == pytest.approx(lr)
    assert recipe.train.out_dir == out  # a string field keeps bare text, even "0b1" or "10"
