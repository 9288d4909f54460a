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

For int8 deployment a stride-2 conv on a single input channel (every
MobileNet's stem on the log-mel) becomes a stride-1 conv on the input's four
2x2 phases (:class:`SpaceToDepthConv`): int8 conv kernels want several input
channels, and ONNX Runtime's took twice its fp32 time on the one-channel stem.
"""

from __future__ import annotations

import torch
from torch import nn

from edge_sed.errors import ModelError
from edge_sed.models.blocks import STRIDED_KERNEL
from edge_sed.models.registry import MODELS, build_model, get_spec
from edge_sed.models.tagger import SoundTagger

__all__ = ["strided_kernel", "strided_name", "to_strided", "bn0_affine", "fold_batchnorm", "SpaceToDepthConv", "space_to_depth_stems"]

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


class SpaceToDepthConv(nn.Module):
    """A stride-2 conv on one input channel, computed exactly as a stride-1 conv on the
    input's 2x2 phases (``pixel_unshuffle``): four channels and half the kernel size.

    Along each axis ``y[i] = sum_a x[2i + a - p] w[a]``; with ``a = 2b + r`` this is
    ``sum_b x_r[i + b] w[2b + r]``, where ``x_r[j] = x[2j + r - p]`` is phase ``r`` of the
    input padded by ``p``. The padding at the end makes the phases just long enough;
    it depends on the input's length, so the module is built for one *input_size*
    (frames, mel bins), as exported graphs are.
    """

    @staticmethod
    def applies(conv: nn.Module) -> bool:
        """Whether *conv* is a stride-2 conv with even kernels on one input channel (zero padding)."""
        return (isinstance(conv, nn.Conv2d) and conv.in_channels == 1 and conv.groups == 1 and conv.stride == (_POOL, _POOL)
                and conv.dilation == (1, 1) and all(k % _POOL == 0 for k in conv.kernel_size)
                and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple))

    def __init__(self, conv: nn.Conv2d, input_size: tuple[int, int]) -> None:
        super().__init__()
        if not self.applies(conv):
            raise ModelError(f"{conv} is not a stride-2 conv with even kernels on one input channel")
        self.input_size = tuple(input_size)
        taps = tuple(k // _POOL for k in conv.kernel_size)
        pads: list[int] = []  # F.pad order: last axis first, (start, end) each
        for size, kernel, pad, tap in reversed(list(zip(self.input_size, conv.kernel_size, conv.padding, taps))):
            out = (size + 2 * pad - kernel) // _POOL + 1
            pads += [pad, _POOL * (out + tap - 1) - size - pad]
        self.pads = tuple(pads)
        self.conv = nn.Conv2d(_POOL**2, conv.out_channels, taps, bias=conv.bias is not None)
        with torch.no_grad():
            # (out, 1, 2b + r, 2c + s) -> (out, 2r + s, b, c), the channel order of pixel_unshuffle
            weight = conv.weight.reshape(conv.out_channels, taps[0], _POOL, taps[1], _POOL)
            self.conv.weight.copy_(weight.permute(0, 2, 4, 1, 3).reshape(self.conv.weight.shape))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != self.input_size:
            raise ModelError(f"this stem was built for inputs of {self.input_size}, got {tuple(x.shape[-2:])}")
        x = nn.functional.pad(x, self.pads)
        # pixel_unshuffle, as four strided slices: it exports as a 6-D transpose that took as long as the conv
        return self.conv(torch.cat([x[:, :, row::_POOL, col::_POOL] for row in range(_POOL) for col in range(_POOL)], dim=1))


def space_to_depth_stems(model: nn.Module, input_size: tuple[int, int]) -> nn.Module:
    """*model* with each stride-2 conv on the one-channel log-mel, *input_size* (frames,
    mel bins), as a :class:`SpaceToDepthConv`: the same outputs (to float rounding).

    Returns a copy in eval mode, or *model* itself when it has no such conv (CNN14's
    stem has stride 1; odd kernels stay as they are). For export; :func:`fold_batchnorm` first, if at all.
    """
    import copy

    names = [name for name, conv in model.named_modules() if SpaceToDepthConv.applies(conv)]
    if not names:
        return model
    model = copy.deepcopy(model).eval()
    for name in names:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, SpaceToDepthConv(model.get_submodule(name), input_size))
    return model
