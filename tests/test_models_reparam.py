"""PANNs-layout MobileNets -> strided layout: the same outputs, no pooling left."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edge_sed.audio import read_audio
from edge_sed.config import FrontendConfig
from edge_sed.errors import ModelError
from edge_sed.models.registry import build_model
from edge_sed.models.reparam import fold_batchnorm, to_strided


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2_framewise"])
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
