"""Shared fixtures: real audio from tests/data, and a rule for system services.

Tests that need a system service (PulseAudio, mosquitto, gcc) skip where it is
missing on a developer's machine, but fail in CI (``CI=true``), where
``.ci/run`` installs them: a green CI never hides a skipped real path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DATA = Path(__file__).parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The shared folders ``bench stream`` makes its long recording of.
STREAM_BENCH_DATA = ("esc50-subset/audio", "backgrounds/audio")


def need_program(*names: str) -> None:
    """Skip (or fail in CI) unless every program in *names* is on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        message = f"needs {', '.join(missing)} (apt-get install; .ci/run installs them)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def need_shared_data(*folders: str) -> None:
    """Skip unless the shared data (``EDGE_SED_DATA``, else ``../shared/data``) holds every folder in *folders*.

    CI has it beside the clone; a clone on its own does not, and these tests then skip.
    """
    from edge_sed.bench.inputs import shared_data_dir

    root = shared_data_dir()
    missing = [folder for folder in folders if not (root / folder).is_dir()]
    if missing:
        pytest.skip(f"needs the shared data at {root} (EDGE_SED_DATA): {', '.join(missing)}")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def dog_clip() -> Path:
    return next(DATA.glob("esc50_dog_*.flac"))


@pytest.fixture(scope="session")
def dog_audio(dog_clip: Path) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(dog_clip, dtype="float32")
    return samples, rate


@pytest.fixture(scope="session")
def test_bundle(tmp_path_factory) -> Path:
    """A real, tiny ONNX model bundle fitted on the fixture clips (see tests/bundles.py)."""
    from bundles import build_bundle

    return build_bundle(tmp_path_factory.mktemp("bundle") / "test-logreg-16k.onnx")


def _randomise_batchnorm(model, seed: int = 0):
    """Give every BatchNorm2d non-trivial statistics and affine parameters, as a trained
    model has (bn0 gets log-mel-like statistics); returns *model*."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            n = layer.num_features
            layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            layer.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            layer.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            layer.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    model.bn0.running_mean.fill_(-40.0)
    model.bn0.running_var.fill_(200.0)
    return model


@pytest.fixture(scope="session")
def randomise_batchnorm():
    """The function ``randomise_batchnorm(model, seed=0) -> model`` (torch models only)."""
    return _randomise_batchnorm
