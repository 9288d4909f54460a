"""Checkpoints: PANNs' format with the architecture inferred, edge-sed's format, and
`edge-sed tag` on real recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from typer.testing import CliRunner

from edge_sed.audio import read_audio
from edge_sed.cli import app
from edge_sed.config import ClassRule, FrontendConfig, TrackerConfig
from edge_sed.errors import AudioInputError, ModelError
from edge_sed.labels import audioset_labels
from edge_sed.models.checkpoint import infer_architecture, load_checkpoint, save_checkpoint
from edge_sed.models.registry import MODELS, build_model
from edge_sed.models.tagging import clip_scores

runner = CliRunner()


@pytest.fixture(scope="module")
def official_mobilenet_v2(tmp_path_factory, randomise_batchnorm) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(1)
    model = randomise_batchnorm(build_model("mobilenet_v2")).eval()
    path = tmp_path_factory.mktemp("ckpt") / "MobileNetV2_mAP=0.383.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, path)
    model.spectrogram_extractor.conv_stft = True  # as PANNs computes it, and as PANNs' files load
    return path, model


def _meta_state(name: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_model(name).state_dict()


@pytest.mark.parametrize("name", [spec.name for spec in MODELS.values() if spec.panns_class])
def test_architecture_is_inferred_from_keys_and_shapes(name: str) -> None:
    source = f"/models/{MODELS[name].panns_class}_mAP=0.4.pth"
    assert infer_architecture(_meta_state(name), source=source) == name


def test_identical_layouts_default_to_the_clip_level_model() -> None:
    assert infer_architecture(_meta_state("cnn14_decision_level_max"), source="weights.pth") == "cnn14"


def test_official_checkpoint_round_trip(official_mobilenet_v2, dog_clip: Path) -> None:
    path, original = official_mobilenet_v2
    loaded = load_checkpoint(path)
    assert loaded.architecture == "mobilenet_v2" and not loaded.model.training
    assert loaded.labels == audioset_labels() and loaded.labels[0] == "Speech" and len(loaded.labels) == 527
    assert loaded.info == {"iteration": 0}
    assert loaded.model.spectrogram_extractor.conv_stft  # PANNs' computation for PANNs' files
    samples, _ = read_audio(dog_clip, 32000)
    scores = clip_scores(loaded.model, samples)
    assert np.array_equal(scores, clip_scores(original, samples))
    assert scores.std() > 1e-3  # the randomised model gives distinct scores


def test_edge_sed_checkpoint_round_trip(tmp_path: Path, dog_clip: Path, randomise_batchnorm) -> None:
    frontend = FrontendConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=7500.0)
    model = randomise_batchnorm(build_model("mobilenet_v1_framewise", num_classes=3, frontend=frontend)).eval()
    tracker = TrackerConfig(per_class=(("dog", ClassRule(on_threshold=0.7, off_threshold=0.4)),))
    path = save_checkpoint(tmp_path / "run" / "best.pth", model, labels=["dog", "rain", "siren"], tracker=tracker, epoch=3)
    loaded = load_checkpoint(path)
    assert (loaded.architecture, loaded.labels, loaded.frontend) == ("mobilenet_v1_framewise", ["dog", "rain", "siren"], frontend)
    assert loaded.info == {"tracker": tracker.to_dict(), "epoch": 3}
    assert TrackerConfig.from_dict(loaded.info["tracker"]) == tracker
    assert not loaded.model.spectrogram_extractor.conv_stft
    samples, _ = read_audio(dog_clip, 16000)
    assert np.array_equal(clip_scores(loaded.model, samples), clip_scores(model, samples))


def test_labels_must_match_classes(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="2 labels given for a model with 3 classes"):
        save_checkpoint(tmp_path / "x.pth", build_model("mobilenet_v1", num_classes=3), labels=["a", "b"])


def test_mismatched_checkpoint_is_one_line_error(official_mobilenet_v2, dog_clip: Path) -> None:
    path, _ = official_mobilenet_v2
    result = runner.invoke(app, ["tag", str(dog_clip), "--checkpoint", str(path), "--model", "mobilenet_v1"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: checkpoint '{path}' does not fit model 'mobilenet_v1': missing: features.1.0.weight")
    assert "mis-shaped (checkpoint vs model): fc1.weight [1024, 1280] vs [1024, 1024]" in lines[0]


def test_unknown_layout_names_the_closest_model(tmp_path: Path) -> None:
    state = build_model("cnn6", num_classes=4).state_dict()
    del state["conv_block4.bn1.running_var"]
    torch.save({"model": state}, tmp_path / "odd.pth")
    with pytest.raises(ModelError, match=r"fits none of cnn14, .*; closest cnn6: missing: conv_block4.bn1.running_var$"):
        load_checkpoint(tmp_path / "odd.pth")


def test_non_checkpoints_are_refused(tmp_path: Path, dog_clip: Path) -> None:
    with pytest.raises(ModelError, match=r"is not a PyTorch checkpoint"):
        load_checkpoint(dog_clip)
    for text in ("hi\n", "abc\n", "epoch,loss\n1,0.5\n", "G\n", ""):  # torch's legacy unpickler: IndexError, struct.error, ...
        (tmp_path / "notes.txt").write_text(text)
        with pytest.raises(ModelError, match=r"is not a PyTorch checkpoint \(it is neither a zip archive nor a pickle\)$"):
            load_checkpoint(tmp_path / "notes.txt")
    (tmp_path / "broken.pth").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ModelError, match=r"is not a PyTorch checkpoint \("):
        load_checkpoint(tmp_path / "broken.pth")
    torch.save({"model": {}, "extra": ClassRule()}, tmp_path / "pickled.pth")
    with pytest.raises(ModelError, match=r"holds a Python object \(edge_sed.config.ClassRule\) that weights_only loading refuses"):
        load_checkpoint(tmp_path / "pickled.pth")
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(ModelError, match="has no 'model' state_dict"):
        load_checkpoint(tmp_path / "other.pth")
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")


def test_tag_json_on_any_rate_and_channels(official_mobilenet_v2, dog_clip: Path, tmp_path: Path) -> None:
    path, original = official_mobilenet_v2
    samples, rate = sf.read(dog_clip, dtype="float32")
    stereo = tmp_path / "dog_44k_stereo.wav"
    sf.write(stereo, soxr.resample(np.stack([samples, 0.5 * samples], axis=1), rate, 44100), 44100)
    result = runner.invoke(app, ["tag", str(stereo), "--checkpoint", str(path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert list(payload) == ["file", "labels", "scores"]
    assert payload["file"] == str(stereo) and payload["labels"] == audioset_labels()
    expected = clip_scores(original, read_audio(stereo, 32000)[0])
    assert np.allclose(payload["scores"], expected, atol=1e-7)
    table = runner.invoke(app, ["tag", str(stereo), "--checkpoint", str(path), "--top", "2"])
    best = int(np.argmax(expected))
    assert table.exit_code == 0 and table.output.splitlines()[1].split(maxsplit=1) == [f"{expected[best]:.3f}", audioset_labels()[best]]
    assert len(table.output.splitlines()) == 3


def test_tag_whose_reader_went_away_ends_quietly(official_mobilenet_v2, dog_clip: Path, tmp_path: Path) -> None:
    """``edge-sed tag ... | head -1``: rich would exit 1 on the broken pipe; every command ends with 141, saying nothing."""
    import subprocess
    import sys

    path, _ = official_mobilenet_v2
    samples, rate = sf.read(dog_clip, dtype="float32")
    clip = tmp_path / "dog_32k.wav"  # at the model's rate: a 16 kHz file would be taken with a warning
    sf.write(clip, soxr.resample(samples, rate, 32000), 32000)
    args = [sys.executable, "-m", "edge_sed", "tag", str(clip), "--checkpoint", str(path), "--top", "50"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as tag:
        tag.stdout.close()  # the reader is gone before the first line
        stderr = tag.stderr.read().decode()
        assert tag.wait(timeout=120) == 141, stderr
    assert stderr == ""


def test_too_short_audio_is_refused(official_mobilenet_v2) -> None:
    _, model = official_mobilenet_v2
    with pytest.raises(AudioInputError, match=r"audio is 0.100 s long; mobilenet_v2 needs at least 0.310 s"):
        clip_scores(model, np.zeros(3200, dtype=np.float32))
