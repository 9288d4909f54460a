"""Saving and loading model checkpoints: official PANNs files and edge-sed's own.

Two formats are read, always with ``torch.load(..., weights_only=True)`` and
``load_state_dict(strict=True)``:

- **PANNs** (``Cnn14_mAP=0.431.pth``, ...): ``{'model': state_dict, 'iteration': ...}``.
  The architecture is inferred from the state_dict's keys and shapes (Cnn14 and
  Cnn14_16k differ by their front-end shapes). Two pairs hold the very same keys
  and shapes, Cnn14 / Cnn14_DecisionLevelMax: the file name decides
  (official names contain the class name), else Cnn14; ``architecture=`` overrides.
  Labels are AudioSet's 527.
- **edge-sed**: ``model`` plus ``architecture``, ``num_classes``, ``labels``,
  ``frontend`` (``dataclasses.asdict(FrontendConfig)``) and optional entries
  (``stream``, ``tracker``, ``metrics``, ``provenance``, ``train_config``,
  ``epoch``, ...) returned as ``info``.

A state_dict that does not fit is a :class:`ModelError` naming the first
missing, unexpected and mis-shaped keys; there is no retry with ``strict=False``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edge_sed.config import FrontendConfig, from_mapping
from edge_sed.errors import ConfigError, ModelError, require_file
from edge_sed.labels import audioset_labels
from edge_sed.models.fetch import TORCH_FILE_MAGIC
from edge_sed.models.registry import AUDIOSET_CLASSES, MODELS, build_model, get_spec
from edge_sed.models.tagger import SoundTagger

__all__ = ["LoadedCheckpoint", "save_checkpoint", "load_checkpoint", "infer_architecture"]

log = logging.getLogger(__name__)

#: Keys of an edge-sed checkpoint besides the optional ``info`` entries.
_EDGE_SED_KEYS = ("model", "architecture", "num_classes", "labels", "frontend")
_CLASSIFIER_WEIGHT = "fc_audioset.weight"
_SHOWN_KEYS = 3
#: How torch names an object that weights_only loading refuses.
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


@dataclass(frozen=True, slots=True)
class LoadedCheckpoint:
    """A model ready for inference (eval mode) and what came with it."""

    model: SoundTagger
    architecture: str
    labels: list[str]
    frontend: FrontendConfig
    info: dict[str, Any]


def _plain(value: Any) -> Any:
    """Dataclass config objects -> dicts, so ``weights_only`` loading accepts them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    return value


def save_checkpoint(path: str | Path, model: SoundTagger, *, labels: list[str], **info: Any) -> Path:
    """Write an edge-sed checkpoint of *model* with its *labels* and optional *info*
    (``stream``, ``tracker``, ``metrics``, ``provenance``, ``train_config``, ``epoch``, ...;
    plain values or config dataclasses)."""
    if len(labels) != model.num_classes:
        raise ModelError(f"{len(labels)} labels given for a model with {model.num_classes} classes")
    clash = sorted(set(info) & set(_EDGE_SED_KEYS))
    if clash:
        raise ModelError(f"checkpoint info may not use the reserved key {clash[0]!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": model.state_dict(),
            "architecture": model.architecture,
            "num_classes": model.num_classes,
            "labels": list(labels),
            "frontend": dataclasses.asdict(model.frontend_config),
            **{key: _plain(value) for key, value in info.items()},
        },
        path,
    )
    return path


def _read(path: Path) -> dict[str, Any]:
    require_file(path, "checkpoint", ModelError)
    with path.open("rb") as fh:
        if not fh.read(4).startswith(TORCH_FILE_MAGIC):  # torch's legacy unpickler fails on such files in many ways
            raise ModelError(f"{str(path)!r} is not a PyTorch checkpoint (it is neither a zip archive nor a pickle)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, KeyError) as exc:  # KeyError: a text file read as a legacy pickle
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused:
            raise ModelError(
                f"checkpoint {str(path)!r} holds a Python object ({refused.group(1)}) that weights_only "
                "loading refuses; save a plain dict of tensors, numbers and strings"
            ) from None
        raise ModelError(f"{str(path)!r} is not a PyTorch checkpoint (unpickling failed)") from None
    except Exception as exc:  # RuntimeError, EOFError, ValueError, struct.error, ...: a damaged file, whatever torch met
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{str(path)!r} is not a PyTorch checkpoint ({first_line})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelError(
            f"checkpoint {str(path)!r} has no 'model' state_dict; expected PANNs' or edge-sed's "
            "format ({'model': state_dict, ...})"
        )
    return data


@functools.lru_cache(maxsize=32)
def _expected_shapes(architecture: str, num_classes: int, frontend: FrontendConfig | None) -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = build_model(architecture, num_classes=num_classes, frontend=frontend)
    return {key: value.shape for key, value in model.state_dict().items()}


def _mismatch(state: dict[str, torch.Tensor], expected: dict[str, torch.Size]) -> str:
    """'' if *state* fits *expected*, else a short description of the first differences."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        f"{key} {list(state[key].shape)} vs {list(shape)}"
        for key, shape in expected.items()
        if key in state and state[key].shape != shape
    ]
    parts = []
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped (checkpoint vs model)", misshaped)):
        if keys:
            more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
            parts.append(f"{what}: {', '.join(keys[:_SHOWN_KEYS])}{more}")
    return "; ".join(parts)


def _num_classes(state: dict[str, torch.Tensor]) -> int:
    weight = state.get(_CLASSIFIER_WEIGHT)
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else AUDIOSET_CLASSES


def infer_architecture(state: dict[str, torch.Tensor], *, source: str = "checkpoint") -> str:
    """The PANNs configuration whose state_dict has exactly *state*'s keys and shapes.

    Cnn14 and Cnn14_DecisionLevelMax are indistinguishable by keys: the one whose
    PANNs class name occurs in *source* (a file name) wins, else the first in registry order.
    """
    num_classes = _num_classes(state)
    official = [spec for spec in MODELS.values() if spec.panns_class]
    mismatches = {spec.name: _mismatch(state, _expected_shapes(spec.name, num_classes, None)) for spec in official}
    matches = [spec for spec in official if not mismatches[spec.name]]
    if not matches:
        closest = min(mismatches, key=lambda name: len(mismatches[name]))
        raise ModelError(
            f"cannot tell which model {source!r} holds: its state_dict fits none of "
            f"{', '.join(spec.name for spec in official)}; closest {closest}: {mismatches[closest]}"
        )
    named = [spec for spec in matches if spec.panns_class.lower() in Path(source).name.lower()]
    chosen = max(named, key=lambda spec: len(spec.panns_class)) if named else matches[0]
    if len(matches) > 1:
        log.info("%s fits %s; using %s", source, ", ".join(spec.name for spec in matches), chosen.name)
    return chosen.name


def _edge_sed_metadata(data: dict[str, Any], source: str) -> tuple[str, int, list[str], FrontendConfig]:
    missing = [key for key in _EDGE_SED_KEYS if key not in data]
    if missing:
        raise ModelError(f"edge-sed checkpoint {source!r} lacks {', '.join(map(repr, missing))}")
    try:
        frontend = from_mapping(FrontendConfig, data["frontend"], where="frontend")
    except ConfigError as exc:
        raise ModelError(f"checkpoint {source!r} has an invalid front end: {exc}") from None
    labels, num_classes = list(data["labels"]), int(data["num_classes"])
    if len(labels) != num_classes:
        raise ModelError(f"checkpoint {source!r} has {len(labels)} labels for {num_classes} classes")
    return str(data["architecture"]), num_classes, labels, frontend


def load_checkpoint(path: str | Path, *, architecture: str | None = None, conv_stft: bool | None = None) -> LoadedCheckpoint:
    """Load a PANNs or edge-sed checkpoint into a zoo model in eval mode.

    Parameters
    ----------
    path : str or Path
    architecture : str, optional
        A registry name; default: the checkpoint's own, or inferred from the
        state_dict's keys and shapes for PANNs files.
    conv_stft : bool, optional
        Compute the spectrogram as PANNs does (float32 conv with the stored
        kernels) instead of :func:`torch.stft`; default: for PANNs files only, so
        they give the official code's scores.
    """
    path = Path(path)
    data = _read(path)
    state = data["model"]
    if "architecture" in data:  # edge-sed's format
        stored, num_classes, labels, frontend = _edge_sed_metadata(data, str(path))
        architecture = architecture or stored
        info = {key: value for key, value in data.items() if key not in _EDGE_SED_KEYS}
    else:  # PANNs' format
        architecture = architecture or infer_architecture(state, source=str(path))
        num_classes = _num_classes(state)
        frontend = get_spec(architecture).frontend
        labels = audioset_labels() if num_classes == AUDIOSET_CLASSES else [f"class {i}" for i in range(num_classes)]
        info = {key: value for key, value in data.items() if key != "model"}
    problem = _mismatch(state, _expected_shapes(architecture, num_classes, frontend))
    if problem:
        raise ModelError(f"checkpoint {str(path)!r} does not fit model {architecture!r}: {problem}")
    model = build_model(architecture, num_classes=num_classes, frontend=frontend)
    model.load_state_dict(state, strict=True)
    model.spectrogram_extractor.conv_stft = ("architecture" not in data) if conv_stft is None else conv_stft
    return LoadedCheckpoint(model=model.eval(), architecture=architecture, labels=labels, frontend=frontend, info=info)
