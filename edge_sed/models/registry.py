"""The model zoo: registry names -> :class:`ModelSpec`, and :func:`build_model`.

=============================  =========================  ==========================
name                           PANNs class                head / layout
=============================  =========================  ==========================
``cnn14``                      Cnn14                      clip-level
``cnn14_16k``                  Cnn14_16k                  clip-level, 16 kHz front end
``cnn14_decision_level_max``   Cnn14_DecisionLevelMax     frame-wise (decision level)
``cnn10``                      Cnn10                      clip-level
``cnn6``                       Cnn6                       clip-level
``mobilenet_v1``               MobileNetV1                clip-level
``mobilenet_v2``               MobileNetV2                clip-level
``mobilenet_v1_framewise``     --                         frame-wise
``mobilenet_v2_framewise``     --                         frame-wise
``mobilenet_v1_strided``       --                         clip-level, 4x4 stride-2 convs
``mobilenet_v2_strided``       --                         clip-level, 4x4 stride-2 convs
``mobilenet_v1_framewise_strided``  --                    frame-wise, 4x4 stride-2 convs
``mobilenet_v2_framewise_strided``  --                    frame-wise, 4x4 stride-2 convs
``mobilenet_v2_x0_5``          --                         clip-level, width 0.5
``mobilenet_v2_x0_5_strided``  --                         clip-level, 4x4 stride-2 convs, width 0.5
=============================  =========================  ==========================

The strided entries are the deployment layout (every BatchNorm right after its
conv, so export folds it); :func:`edge_sed.models.reparam.to_strided` turns PANNs
weights into them exactly, and they can be trained directly.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from edge_sed.config import PANNS_16K, PANNS_32K, FrontendConfig
from edge_sed.errors import ModelError
from edge_sed.models.mobilenet import MOBILENET_V1, MOBILENET_V2, MOBILENET_V2_X0_5
from edge_sed.models.panns import CNN6, CNN10, CNN14
from edge_sed.models.tagger import BackboneTable, SoundTagger

__all__ = ["AUDIOSET_CLASSES", "ModelSpec", "MODELS", "model_names", "get_spec", "build_model"]

#: Classes of AudioSet, PANNs' output size.
AUDIOSET_CLASSES = 527


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One zoo entry: a backbone table, its default front end and its head."""

    name: str
    table: BackboneTable
    frontend: FrontendConfig = PANNS_32K
    framewise: bool = False
    strided: bool = False
    panns_class: str | None = None  # the official class with this exact state_dict, if any
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("cnn14", CNN14, panns_class="Cnn14", description="PANNs Cnn14, 32 kHz"),
        ModelSpec("cnn14_16k", CNN14, PANNS_16K, panns_class="Cnn14_16k", description="PANNs Cnn14, 16 kHz"),
        ModelSpec("cnn14_decision_level_max", CNN14, framewise=True, panns_class="Cnn14_DecisionLevelMax",
                  description="Cnn14 with a frame-wise (decision-level max) head"),
        ModelSpec("cnn10", CNN10, panns_class="Cnn10", description="PANNs Cnn10"),
        ModelSpec("cnn6", CNN6, panns_class="Cnn6", description="PANNs Cnn6"),
        ModelSpec("mobilenet_v1", MOBILENET_V1, panns_class="MobileNetV1", description="PANNs MobileNetV1"),
        ModelSpec("mobilenet_v2", MOBILENET_V2, panns_class="MobileNetV2", description="PANNs MobileNetV2"),
        ModelSpec("mobilenet_v1_framewise", MOBILENET_V1, framewise=True,
                  description="MobileNetV1 with a frame-wise head, for event detection"),
        ModelSpec("mobilenet_v2_framewise", MOBILENET_V2, framewise=True,
                  description="MobileNetV2 with a frame-wise head, for event detection"),
        ModelSpec("mobilenet_v1_strided", MOBILENET_V1, strided=True,
                  description="MobileNetV1, strided deployment layout (BN folds)"),
        ModelSpec("mobilenet_v2_strided", MOBILENET_V2, strided=True,
                  description="MobileNetV2, strided deployment layout (BN folds)"),
        ModelSpec("mobilenet_v1_framewise_strided", MOBILENET_V1, framewise=True, strided=True,
                  description="MobileNetV1, frame-wise head, strided deployment layout"),
        ModelSpec("mobilenet_v2_framewise_strided", MOBILENET_V2, framewise=True, strided=True,
                  description="MobileNetV2, frame-wise head, strided deployment layout"),
        ModelSpec("mobilenet_v2_x0_5", MOBILENET_V2_X0_5,
                  description="MobileNetV2 at width 0.5 (channels halved but the last conv's), PANNs layout"),
        ModelSpec("mobilenet_v2_x0_5_strided", MOBILENET_V2_X0_5, strided=True,
                  description="MobileNetV2 at width 0.5 (channels halved but the last conv's), strided layout"),
    )
}


def model_names() -> list[str]:
    """Registry names, in registry order."""
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for *name*; :class:`ModelError` listing the names if unknown."""
    try:
        return MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), MODELS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}{hint}") from None


def build_model(
    name: str,
    *,
    num_classes: int = AUDIOSET_CLASSES,
    frontend: FrontendConfig | None = None,
    **overrides: bool,
) -> SoundTagger:
    """Build zoo model *name*, randomly initialised as PANNs does.

    Parameters
    ----------
    name : str
        A registry name (:func:`model_names`).
    num_classes : int
        Output classes (527 for AudioSet).
    frontend : FrontendConfig, optional
        Sample rate, window, hop, mel bins, fmin/fmax; default: the entry's own.
    **overrides
        ``framewise`` or ``strided`` to change the head or layout.
    """
    spec = get_spec(name)
    unknown = sorted(set(overrides) - {"framewise", "strided"})
    if unknown:
        raise ModelError(f"unknown build_model override {unknown[0]!r}; valid: framewise, strided")
    if num_classes <= 0:
        raise ModelError(f"num_classes must be positive, got {num_classes!r}")
    return SoundTagger(
        architecture=spec.name,
        table=spec.table,
        frontend=frontend or spec.frontend,
        num_classes=num_classes,
        framewise=overrides.get("framewise", spec.framewise),
        strided=overrides.get("strided", spec.strided),
    )
