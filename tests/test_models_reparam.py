"""PANNs-layout MobileNets -> strided layout: the same outputs, no pooling left."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edge_sed.audio import read_audio
from edge_sed.errors import ModelError
from edge_sed.models.registry import build_model
from edge_sed.models.reparam import to_strided


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
