"""Exact re-parameterisations: PANNs-layout MobileNets -> strided layout (no pooling left),
BatchNorm folded into convs, one-channel stems on 2x2 phases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edge_sed.audio import read_audio
from edge_sed.config import FrontendConfig
from edge_sed.errors import ModelError
from edge_sed.models.registry import build_model
from edge_sed.models.reparam import SpaceToDepthConv, fold_batchnorm, space_to_depth_stems, to_strided


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2_framewise", "mobilenet_v2_x0_5"])
def test_strided_model_gives_the_same_outputs(name: str, data_dir: Path, randomise_batchnorm) -> None:
    torch.manual_seed(0)
    original = randomise_batchnorm(build_model(name)).eval()
    strided = to_strided(original)
    assert strided.architecture == f"{name}_strided" and not strided.training
    assert not any(isinstance(layer, nn.AvgPool2d) for layer in strided.modules())
    samples, _ = read_audio(data_dir / "esc50_siren_5-117118-A-42.flac", 32000)
    # 501 frames (odd: AvgPool2d drops a row) and 100 frames (even)
    for waveform in (torch.from_numpy(samples)[None], torch.from_numpy(samples[:31999])[None]):
        with torch.no_grad():
            expected, got = original(waveform), strided(waveform)
        assert set(got) == set(expected)
        for key in expected:
            assert got[key].shape == expected[key].shape
            assert (got[key] - expected[key]).abs().max() < 1e-5, key
        assert expected["clipwise_output"].std() > 0.05  # a model with distinct outputs


def test_only_mobilenets_in_pool_layout_convert() -> None:
    with torch.device("meta"):
        cnn, strided = build_model("cnn6"), build_model("mobilenet_v2_strided")
    with pytest.raises(ModelError, match=r"'cnn6' has no strided layout: only PANNs-layout MobileNets"):
        to_strided(cnn)
    with pytest.raises(ModelError, match="'mobilenet_v2_strided' is already in the strided layout"):
        to_strided(strided)


@pytest.mark.parametrize("name", ["mobilenet_v1_strided", "mobilenet_v2_strided", "cnn6"])
def test_batchnorm_folds_into_the_convs_exactly(name: str, data_dir: Path, randomise_batchnorm) -> None:
    torch.manual_seed(0)
    model = randomise_batchnorm(build_model(name, frontend=FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, fmax=7500.0))).eval()
    folded = fold_batchnorm(model)
    assert [n for n, layer in folded.named_modules() if isinstance(layer, nn.BatchNorm2d)] == ["bn0"]
    assert all(conv.bias is not None for conv in folded.modules() if isinstance(conv, nn.Conv2d))
    samples, _ = read_audio(data_dir / "esc50_dog_5-203128-A-0.flac", 16000)
    with torch.no_grad():
        expected, got = model(torch.from_numpy(samples)[None]), folded(torch.from_numpy(samples)[None])
    assert (got["clipwise_output"] - expected["clipwise_output"]).abs().max() < 1e-5
    assert expected["clipwise_output"].std() > 0.05
    assert any(isinstance(layer, nn.BatchNorm2d) for layer in model.modules() if layer is not model.bn0)  # untouched


def test_batchnorm_after_a_pool_does_not_fold() -> None:
    with pytest.raises(ModelError, match=r"cannot fold 'features.0.2': it does not follow a conv directly; re-parameterise"):
        fold_batchnorm(build_model("mobilenet_v2"))


@pytest.mark.parametrize("kernel, padding", [(4, 1), (4, 0), (2, 0), (6, 2)])
@pytest.mark.parametrize("size", [(201, 64), (100, 63), (7, 9)])
def test_space_to_depth_conv_equals_the_strided_conv(kernel: int, padding: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 8, kernel, stride=2, padding=padding)
    phases = SpaceToDepthConv(conv, size)
    assert phases.conv.in_channels == 4 and phases.conv.kernel_size == (kernel // 2, kernel // 2)
    x = torch.randn(2, 1, *size)
    with torch.no_grad():
        expected, got = conv(x), phases(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-5


def test_space_to_depth_stems_keep_the_model_outputs(data_dir: Path, randomise_batchnorm) -> None:
    torch.manual_seed(0)
    frontend = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, fmax=7500.0)
    model = randomise_batchnorm(build_model("mobilenet_v2_strided", frontend=frontend)).eval()
    samples, _ = read_audio(data_dir / "esc50_dog_5-203128-A-0.flac", 16000)
    waveform = torch.from_numpy(samples[:16000 * 2])[None]  # 201 frames: odd, as the shipped 2 s window
    phased = space_to_depth_stems(model, (201, frontend.n_mels))
    assert [name for name, layer in phased.named_modules() if isinstance(layer, SpaceToDepthConv)] == ["features.0.0"]
    assert isinstance(model.features[0][0], nn.Conv2d)  # untouched
    with torch.no_grad():
        expected, got = model(waveform)["clipwise_output"], phased(waveform)["clipwise_output"]
    assert expected.std() > 0.05
    assert (got - expected).abs().max() < 1e-5
    with pytest.raises(ModelError, match=r"built for inputs of \(201, 64\), got \(200, 64\)"):
        phased(waveform[:, :-160])
    with torch.device("meta"):
        cnn = build_model("cnn6")
    assert space_to_depth_stems(cnn, (201, 64)) is cnn  # stride-1 stem: nothing to do, no copy
    odd = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1))
    assert space_to_depth_stems(odd, (201, 64)) is odd  # an odd kernel has no 2x2-phase form; left alone
    with pytest.raises(ModelError, match="not a stride-2 conv with even kernels on one input channel"):
        SpaceToDepthConv(nn.Conv2d(1, 8, 3, stride=2, padding=1), (201, 64))
