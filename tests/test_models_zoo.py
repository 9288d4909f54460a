"""The model zoo: PANNs state_dict layout, Table XII parameter counts, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edge_sed.audio import read_audio
from edge_sed.config import FrontendConfig
from edge_sed.errors import ModelError
from edge_sed.models.registry import MODELS, build_model, model_names

REFERENCE = Path(__file__).parent / "data" / "panns_reference"
PANNS_NAMES = {spec.name: spec.panns_class for spec in MODELS.values() if spec.panns_class}
#: Table XII of the PANNs paper: trainable parameters.
TABLE_XII_PARAMS = {"cnn14": 80_753_615, "mobilenet_v1": 4_796_303, "mobilenet_v2": 4_075_343, "cnn10": 5_219_279, "cnn6": 4_837_455}


def _meta_model(name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(name, **kwargs)


def test_registry_names() -> None:
    assert model_names() == [
        "cnn14", "cnn14_16k", "cnn14_decision_level_max", "cnn10", "cnn6", "mobilenet_v1", "mobilenet_v2",
        "mobilenet_v1_framewise", "mobilenet_v2_framewise", "mobilenet_v1_strided", "mobilenet_v2_strided",
        "mobilenet_v1_framewise_strided", "mobilenet_v2_framewise_strided", "mobilenet_v2_x0_5", "mobilenet_v2_x0_5_strided",
    ]


@pytest.mark.parametrize("name", sorted(PANNS_NAMES))
def test_state_dict_equals_panns_manifest(name: str) -> None:
    manifest = json.loads((REFERENCE / f"panns_{PANNS_NAMES[name]}.json").read_text())
    model = _meta_model(name)
    got = [(key, list(value.shape)) for key, value in model.state_dict().items()]
    assert got == [(key, shape) for key, shape, _ in manifest["state_dict_manifest"]]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == manifest["trainable_params"]


@pytest.mark.parametrize("name", sorted(TABLE_XII_PARAMS))
def test_trainable_parameters_equal_table_xii(name: str) -> None:
    model = _meta_model(name)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == TABLE_XII_PARAMS[name]


def test_variants_share_the_panns_keys() -> None:
    base = _meta_model("mobilenet_v2").state_dict()
    framewise = _meta_model("mobilenet_v2_framewise").state_dict()
    strided = _meta_model("mobilenet_v2_strided").state_dict()
    assert {k: v.shape for k, v in framewise.items()} == {k: v.shape for k, v in base.items()}
    assert list(strided) == list(base)
    changed = {k for k in base if strided[k].shape != base[k].shape}
    # the stem and the 4 stride-2 depthwise convs become 4x4
    assert changed == {"features.0.0.weight", "features.2.conv.3.weight", "features.4.conv.3.weight",
                       "features.7.conv.3.weight", "features.11.conv.3.weight"}
    assert strided["features.2.conv.3.weight"].shape == (96, 1, 4, 4)


def test_half_width_mobilenet_v2_has_sandlers_channels() -> None:
    """Width 0.5 halves every channel count to a multiple of 8 (torchvision's mobilenet_v2(width_mult=0.5):
    16, 8, 16, 16, 32, 48, 80, 160) and keeps the 1280-channel last conv; same keys as the full width."""
    from edge_sed.models.mobilenet import MOBILENET_V2

    thin = _meta_model("mobilenet_v2_x0_5_strided")
    full = _meta_model("mobilenet_v2_strided").state_dict()
    shapes = thin.state_dict()
    assert list(shapes) == list(full)
    assert shapes["features.0.0.weight"].shape[0] == 16
    block_outputs = [shapes[f"features.{i}.conv.{4 if i == 1 else 7}.weight"].shape[0] for i in (1, 2, 4, 7, 11, 14, 17)]
    assert block_outputs == [8, 16, 16, 32, 48, 80, 160]
    assert shapes["features.18.0.weight"].shape == (1280, 160, 1, 1)
    assert MOBILENET_V2.thinned(1.0) == MOBILENET_V2
    with pytest.raises(ValueError, match="width must be in"):
        MOBILENET_V2.thinned(0)


def test_unknown_model_lists_names_and_suggests() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'mobilenet_v3'; known: cnn14, .*\(did you mean mobilenet_v2\?\)"):
        build_model("mobilenet_v3")


def test_front_end_and_classes_are_configurable() -> None:
    frontend = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=32, fmin=50.0, fmax=7500.0)
    state = _meta_model("cnn6", num_classes=10, frontend=frontend).state_dict()
    assert state["spectrogram_extractor.stft.conv_real.weight"].shape == (257, 1, 512)
    assert state["logmel_extractor.melW"].shape == (257, 32)
    assert state["bn0.weight"].shape == (32,)
    assert state["fc_audioset.weight"].shape == (10, 512)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2_framewise", "cnn6"])
def test_outputs_on_real_audio(name: str, dog_clip: Path) -> None:
    torch.manual_seed(0)
    frontend = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=7500.0)
    model = build_model(name, num_classes=7, frontend=frontend).eval()
    samples, _ = read_audio(dog_clip, 16000)
    waveform = torch.from_numpy(samples[:32000])[None].repeat(2, 1)
    with torch.no_grad():
        out = model(waveform)
        again = model.forward_logmel(model.logmel(waveform))
    n_frames = 1 + 32000 // 160
    assert model.logmel(waveform).shape == (2, n_frames, 64)
    assert out["clipwise_output"].shape == out["logits"].shape == (2, 7)
    assert out["embedding"].shape == (2, model.fc1.out_features)
    assert torch.allclose(out["clipwise_output"], torch.sigmoid(out["logits"]))
    assert ((out["clipwise_output"] > 0) & (out["clipwise_output"] < 1)).all()
    for key in out:
        assert torch.equal(out[key], again[key]), key
    if model.framewise:
        assert out["framewise_output"].shape == (2, n_frames, 7)
        assert torch.allclose(out["framewise_output"].amax(dim=1), out["clipwise_output"])
    else:
        assert "framewise_output" not in out
    assert (model.architecture, model.num_classes, model.frontend_config) == (name, 7, frontend)


def test_dropout_only_in_training(dog_audio) -> None:
    torch.manual_seed(0)
    model = build_model("cnn6", num_classes=5)
    samples, _ = dog_audio
    waveform = torch.from_numpy(samples[:16000])[None]
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(waveform)["logits"], model(waveform)["logits"])
        model.train()
        assert not torch.equal(model(waveform)["logits"], model(waveform)["logits"])
