"""Exact re-parameterisations for deployment: PANNs' MobileNets into the strided
layout, ``bn0`` into a per-mel affine map, and every other BatchNorm into its conv.

PANNs' MobileNets downsample with a 3x3 stride-1 conv followed directly by
``AvgPool2d(2)``; the BatchNorm comes after the pool, so export tools cannot
fold it into the conv. Both steps are linear and adjacent, so together they
are one 4x4 stride-2 conv (padding 1) whose kernel is the 3x3 kernel convolved
with the 2x2 box, divided by 4::

    z[i] = (y[2i] + y[2i+1]) / 2,  y[r] = sum_k w3[k] x[r+k-1]
         = sum_p w4[p] x[2i+p-1],  w4[p] = sum_{a+k=p} w3[k] / 2   (a in {0, 1})

With padding 1 on both sides the strided conv gives exactly the pooled size
(``floor(n / 2)``) for even and odd ``n``; the row that ``AvgPool2d`` drops from
odd sizes is never computed. Where it applies (every stride-2 step):

- MobileNetV1: the stem ``features.0.0`` and the depthwise convs
  ``features.{2,4,6,12}.0``;
- MobileNetV2: the stem ``features.0.0`` and the depthwise convs
  ``features.{2,4,7,11}.conv.3``.

Where it does not: PANNs' CNN14/10/6 pool after BN and ReLU
(``avg_pool(relu(bn(conv(x))))``), which is not linear, so they have no strided
twin. The stride-1 ``AvgPool2d(1)`` of the other blocks is the identity and
becomes ``nn.Identity``.
"""

from __future__ import annotations

import torch
from torch import nn

from edge_sed.errors import ModelError
from edge_sed.models.blocks import STRIDED_KERNEL
from edge_sed.models.registry import MODELS, build_model, get_spec
from edge_sed.models.tagger import SoundTagger

__all__ = ["strided_kernel", "strided_name", "to_strided", "bn0_affine", "fold_batchnorm"]

_POOL = 2


def strided_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """(out, in, 3, 3) kernel -> (out, in, 4, 4): convolved with the 2x2 box / 4."""
    out = kernel.new_zeros(*kernel.shape[:2], STRIDED_KERNEL, STRIDED_KERNEL)
    for row in range(_POOL):
        for col in range(_POOL):
            out[:, :, row : row + 3, col : col + 3] += kernel / _POOL**2
    return out


def strided_name(architecture: str) -> str:
    """The registry name of *architecture*'s strided twin (same table and head)."""
    spec = get_spec(architecture)
    for candidate in MODELS.values():
        if candidate.strided and candidate.table == spec.table and candidate.framewise == spec.framewise:
            return candidate.name
    raise ModelError(
        f"{architecture!r} has no strided layout: only PANNs-layout MobileNets (conv then average pool) "
        f"can be rewritten exactly; strided models: {', '.join(s.name for s in MODELS.values() if s.strided)}"
    )


def _check_pooled_conv(model: nn.Module, conv_name: str) -> None:
    parent_name, _, index = conv_name.rpartition(".")
    conv = model.get_submodule(conv_name)
    pool = model.get_submodule(parent_name)[int(index) + 1]
    if not (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and isinstance(pool, nn.AvgPool2d) and pool.kernel_size == _POOL):
        raise ModelError(f"{conv_name!r} is not a 3x3 stride-1 conv followed by AvgPool2d(2); cannot make it strided")


def to_strided(model: SoundTagger) -> SoundTagger:
    """PANNs-layout MobileNet (weights included) -> the equal strided-layout model.

    The result computes the same outputs (to float rounding) with fewer MACs,
    and every BatchNorm follows its conv directly, so export folds it.
    Returns a new model in the same train/eval mode; *model* is unchanged.
    """
    if model.strided:
        raise ModelError(f"{model.architecture!r} is already in the strided layout")
    target = build_model(strided_name(model.architecture), num_classes=model.num_classes, frontend=model.frontend_config)
    state = model.state_dict()
    for name, layer in target.named_modules():
        if isinstance(layer, nn.Conv2d) and layer.kernel_size == (STRIDED_KERNEL, STRIDED_KERNEL):
            _check_pooled_conv(model, name)
            state[f"{name}.weight"] = strided_kernel(state[f"{name}.weight"])
    target.load_state_dict(state, strict=True)
    return target.train(model.training)


def bn0_affine(model: SoundTagger) -> tuple[torch.Tensor, torch.Tensor]:
    """``bn0`` in eval mode as ``logmel * scale + shift`` over the mel axis.

    ``bn0`` normalises each mel bin, but as a BatchNorm2d it needs the log-mel
    transposed to put the bins on the channel axis (and back). As an affine map
    on the last axis it needs no transposes, and ONNX Runtime and int8 graphs
    then start directly with the first conv. Returns ``(scale, shift)``, each
    shape (n_mels,), detached.
    """
    bn = model.bn0
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale.detach().clone(), (bn.bias - bn.running_mean * scale).detach().clone()


def fold_batchnorm(model: SoundTagger) -> SoundTagger:
    """A copy of *model* in eval mode with every BatchNorm that follows a conv folded into it.

    Each conv gets the BatchNorm's scale in its weight and its shift as a bias;
    the BatchNorm becomes ``nn.Identity``. Outputs are the same (to float
    rounding) as *model*'s in eval mode. The graph is then the one deployed
    (ONNX and LiteRT fold the same way), which is what quantization-aware
    fine-tuning trains. ``bn0`` (on the log-mel, not after a conv) is kept; see
    :func:`bn0_affine`. Raises :class:`ModelError` for a BatchNorm after something else.
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for parent in folded.modules():
        for name, conv, norm in _conv_norm_pairs(parent):
            setattr(parent, name, fuse_conv_bn_eval(conv, norm))
            setattr(parent, next(n for n, m in parent.named_children() if m is norm), nn.Identity())
    left = [name for name, layer in folded.named_modules() if isinstance(layer, nn.BatchNorm2d) and name != "bn0"]
    if left:
        raise ModelError(
            f"cannot fold {left[0]!r}: it does not follow a conv directly; "
            "re-parameterise a PANNs-layout MobileNet with to_strided first"
        )
    return folded


def _conv_norm_pairs(parent: nn.Module) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d]]:
    """(conv name, conv, BatchNorm) for each BatchNorm of *parent* that normalises a conv of it.

    In a ``Sequential`` the BatchNorm follows its conv (``Identity`` may sit
    between: the strided layout's former pool); in a CNN ``ConvBlock`` it is
    ``bn{i}`` of ``conv{i}``.
    """
    children = list(parent.named_children())
    if isinstance(parent, nn.Sequential):
        pairs, conv = [], None
        for name, layer in children:
            if isinstance(layer, nn.Conv2d):
                conv = (name, layer)
            elif isinstance(layer, nn.BatchNorm2d) and conv is not None:
                pairs.append((conv[0], conv[1], layer))
                conv = None
            elif not isinstance(layer, nn.Identity):
                conv = None
        return pairs
    named = dict(children)
    return [
        (name, layer, named[f"bn{name[4:]}"])
        for name, layer in children
        if name.startswith("conv") and isinstance(layer, nn.Conv2d) and isinstance(named.get(f"bn{name[4:]}"), nn.BatchNorm2d)
    ]
