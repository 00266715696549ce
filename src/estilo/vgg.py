"""VGG19's convolutional part as a named, truncated, frozen feature extractor.

Layer names follow the paper's blocks: ``conv{b}_{i}``, ``relu{b}_{i}`` and ``pool{b}``;
they are the values of the layer options, so they are defined with them in
:mod:`estilo.config` (with the conv-index notation, 1 = conv1_1 ... 16 = conv5_4).

The extractor takes RGB images in [0, 1] (N x 3 x H x W). Each weights source brings its
own preprocessing (:class:`Preprocessing`), applied inside the extractor, so nothing outside
this module ever sees BGR, a 0-255 range or mean subtraction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .config import LAYER_NAMES, StyleConfig, resolve_layer
from .losses import channel_weights

CHANNELS = (64, 128, 256, 512, 512)  # of the conv layers in each block


@dataclass(frozen=True)
class Preprocessing:
    """How a weights source expects its input: ``(x * scale)[channels] - mean) / std``."""

    scale: float
    bgr: bool
    mean: tuple[float, float, float]  # in the source's channel order and scale
    std: tuple[float, float, float]


CAFFE = Preprocessing(scale=255.0, bgr=True, mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0))
TORCHVISION = Preprocessing(scale=1.0, bgr=False, mean=(0.485, 0.456, 0.406),
                            std=(0.229, 0.224, 0.225))


class Normalize(nn.Module):
    """Turns RGB [0, 1] images into the input a weights source was trained on."""

    scale: Tensor
    shift: Tensor

    def __init__(self, spec: Preprocessing) -> None:
        super().__init__()
        self.bgr = spec.bgr
        std = torch.tensor(spec.std)
        self.register_buffer("scale", (spec.scale / std).view(1, 3, 1, 1))
        self.register_buffer("shift", (torch.tensor(spec.mean) / std).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        if self.bgr:
            x = x.flip(1)
        return x * self.scale - self.shift

    def inverse(self, y: Tensor) -> Tensor:
        """The RGB [0, 1] image that this module maps to ``y``."""
        x = (y + self.shift) / self.scale
        return x.flip(1) if self.bgr else x


ConvWeights = Mapping[str, tuple[Tensor, Tensor]]
"""``{"conv1_1": (weight 64x3x3x3, bias 64), ...}``: the 16 conv layers of VGG19."""


def depth_of(layers: Iterable[str]) -> int:
    """Index in :data:`LAYER_NAMES` of the deepest of ``layers``."""
    return max(LAYER_NAMES.index(resolve_layer(name)) for name in layers)


class VGG19Features(nn.Module):
    """VGG19 conv layers up to the deepest requested layer; frozen.

    Args:
        weights: conv weights and biases by name (see :data:`ConvWeights`).
        preprocessing: the weights source's input convention.
        layers: the layers whose activations :meth:`forward` returns.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al., the 2018 report).
    """

    def __init__(self, weights: ConvWeights, preprocessing: Preprocessing, *,
                 layers: Iterable[str], pooling: str = "max") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.outputs = tuple(dict.fromkeys(resolve_layer(n) for n in layers))
        self.normalize = Normalize(preprocessing)
        self.names = LAYER_NAMES[: depth_of(self.outputs) + 1]
        self.body = nn.ModuleList(_make_layer(name, weights, pooling) for name in self.names)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor, *, checkpointing: bool = False) -> dict[str, Tensor]:
        """Activations ``{name: N x C x H' x W'}`` of an RGB [0, 1] batch ``x``.

        ``checkpointing``: recompute each segment between requested layers during backward
        instead of keeping its activations (less memory for about one more forward a step).
        """
        out: dict[str, Tensor] = {}
        x = self.normalize(x)
        start = 0
        for end in self._cuts():
            if checkpointing and x.requires_grad and torch.is_grad_enabled():
                x = checkpoint(self._segment, x, start, end, use_reentrant=False)
            else:
                x = self._segment(x, start, end)
            out[self.names[end - 1]] = x
            start = end
        return out

    def _cuts(self) -> list[int]:
        """End indices (exclusive) of the segments: one after each requested layer."""
        wanted = set(self.outputs)
        return [i + 1 for i, name in enumerate(self.names) if name in wanted]

    def _segment(self, x: Tensor, start: int, end: int) -> Tensor:
        for layer in self.body[start:end]:
            x = layer(x)
        return x


def _make_layer(name: str, weights: ConvWeights, pooling: str) -> nn.Module:
    if name.startswith("relu"):
        # Not in-place: a relu output that is also requested must not alias the conv output.
        return nn.ReLU(inplace=False)
    if name.startswith("pool"):
        return nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
    weight, bias = weights[name]
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=3, padding=1)
    conv.weight = nn.Parameter(weight.detach().float(), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach().float(), requires_grad=False)
    return conv


def pool_factor(layer: str) -> int:
    """Spatial downsampling (1, 2, ... 16) of ``layer`` relative to the input."""
    return 2 ** sum(1 for n in LAYER_NAMES[: LAYER_NAMES.index(resolve_layer(layer)) + 1]
                    if n.startswith("pool"))


def channels_of(layer: str) -> int:
    """Number of channels of ``layer``'s activations."""
    return CHANNELS[int(resolve_layer(layer)[4]) - 1]


def layer_weights(config: StyleConfig, kind: str) -> dict[str, float]:
    """``{layer: overall weight * layer weight}`` for ``kind`` = ``content`` or ``style``.

    With ``layer_weighting="channels"`` the style layers' weights are also multiplied by
    1/C^2 (C: the layer's channels), rescaled so that they average 1.
    """
    names = getattr(config, f"{kind}_layers")
    per_layer = getattr(config, f"{kind}_layer_weights") or (1.0,) * len(names)
    if kind == "style" and config.layer_weighting == "channels":
        per_layer = tuple(w * c for w, c in zip(per_layer, channel_weights(
            [channels_of(n) for n in names])))
    overall = getattr(config, f"{kind}_weight")
    if overall is None:  # style by strength: relative weights, scaled per level by the caller
        overall = 1.0
    return {n: overall * w for n, w in zip(names, per_layer) if overall * w != 0.0}
