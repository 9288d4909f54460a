"""Multiply-accumulate (MAC) and parameter accounting of the zoo.

One source of truth: forward hooks on every ``Conv2d`` and ``Linear`` of the
network (the model runs on the ``meta`` device, so nothing is computed) give
the network's true MACs; the front end's are counted from its definition.

- ``macs_network``: conv + linear MACs after the front end (``bn0`` onward;
  BatchNorm, activations and pooling are not counted: they fold or are cheap).
- ``macs_frontend``: PANNs' front end as a dense computation, the 1024-tap
  convolutional STFT (``2 * n_freqs * n_fft`` per frame: real and imaginary
  kernels) plus the mel matrix (``n_freqs * n_mels`` per frame). An FFT
  needs far fewer; this is what the official models run.
- ``panns_multiply_adds``: the figure of PANNs' Table XII,
  ``2 * (macs_network + convolutional STFT MACs)``: the paper's counter counts a
  MAC twice and includes the STFT conv but not the mel matmul. Its BN / ReLU /
  pooling terms (under 1% of the total) are not reproduced.
- ``params``: trainable parameters (the frozen front end excluded, as in Table XII).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from edge_sed.config import FrontendConfig
from edge_sed.errors import ConfigError
from edge_sed.models.registry import build_model
from edge_sed.models.tagger import SoundTagger
from edge_sed.models.tagging import min_samples

__all__ = ["ModelCost", "network_macs", "frontend_macs", "stft_macs", "model_cost"]


@dataclass(frozen=True, slots=True)
class ModelCost:
    """Cost of one model on one clip of ``seconds`` seconds (batch 1)."""

    name: str
    seconds: float
    params: int
    macs_network: int
    macs_frontend: int
    panns_multiply_adds: int


def _layer_macs(layer: nn.Module, output: torch.Tensor) -> int:
    if isinstance(layer, nn.Conv2d):
        return output.numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    return output.numel() * layer.in_features  # nn.Linear


def network_macs(model: SoundTagger, n_frames: int) -> int:
    """True conv + linear MACs of ``model.forward_logmel`` on (1, n_frames, n_mels)."""
    total = 0

    def count(layer: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(layer, output)

    hooks = [layer.register_forward_hook(count) for layer in model.modules() if isinstance(layer, (nn.Conv2d, nn.Linear))]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model.forward_logmel(torch.zeros(1, n_frames, model.frontend_config.n_mels, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def stft_macs(config: FrontendConfig, n_frames: int) -> int:
    """MACs of PANNs' convolutional STFT: real and imaginary ``n_fft``-tap kernels per bin and frame."""
    return 2 * config.n_freqs * config.n_fft * n_frames


def frontend_macs(config: FrontendConfig, n_frames: int) -> int:
    """MACs of the dense front end: convolutional STFT plus the mel matrix."""
    return stft_macs(config, n_frames) + n_frames * config.n_freqs * config.n_mels


def model_cost(name: str, *, seconds: float = 10.0, frontend: FrontendConfig | None = None, num_classes: int = 527) -> ModelCost:
    """Parameters and MACs of zoo model *name* for a clip of *seconds* seconds."""
    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, frontend=frontend).eval()
    config = model.frontend_config
    n_samples, shortest = round(seconds * config.sample_rate), min_samples(model)
    if n_samples < shortest:
        raise ConfigError(f"a {seconds:g} s clip is too short for {name}: it needs at least "
                          f"{math.ceil(shortest / config.sample_rate * 100) / 100:g} s")
    n_frames = config.n_frames(n_samples)
    network = network_macs(model, n_frames)
    return ModelCost(
        name=name,
        seconds=seconds,
        params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs_network=network,
        macs_frontend=frontend_macs(config, n_frames),
        panns_multiply_adds=2 * (network + stft_macs(config, n_frames)),
    )
