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


def need_program(*names: str) -> None:
    """Skip (or fail in CI) unless every program in *names* is on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        message = f"needs {', '.join(missing)} (apt-get install; .ci/run installs them)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


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
