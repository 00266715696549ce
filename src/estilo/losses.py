"""The objective: content, style and total-variation losses.

Pure tensor functions first, then :class:`Objective`, which only holds precomputed targets.

Normalisation (what makes one set of weights mean the same thing everywhere)
-----------------------------------------------------------------------------
The seed report and the PyTorch tutorial use a Gram matrix divided by the number of
elements of the feature map (C*H*W) and plain MSE losses, with Ws ~ 1e5 against Wc ~ 1.
Those values assume activations of the size torchvision's VGG19 gives on its normalised
0-1 input. The Caffe weights take 0-255 input and their activations are hundreds of times
larger, so the same weights turn the picture to noise (the style term grows with the
fourth power of the activation scale, the content term with the square).

estilo therefore divides every layer's activations by a per-layer scale before any loss:
the root mean square of that layer's activations over the content and style images of
the run (computed once per level, without gradient). Normalised activations have an RMS
of 1 in every layer, whatever the weights source, the input range or the image size; the
Gram matrix (/ C*H*W) and the MSEs are then taken as in the seed. The result: Ws = 1e5
with Wc = 1 behaves the same with ``caffe``, ``torchvision`` or any other VGG19, and at
any size (losses are means over positions). ``feature_norm="none"`` switches it off.

Total variation is the mean squared difference of neighbouring pixels of the RGB [0, 1]
image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def gram_matrix(features: Tensor, *, norm: str = "chw") -> Tensor:
    """Channel correlations of ``features`` (N x C x H x W) -> N x C x C.

    ``norm="chw"`` divides by C*H*W (the seed's convention), ``"hw"`` by H*W.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = torch.bmm(flat, flat.transpose(1, 2))
    return gram / (c * h * w if norm == "chw" else h * w)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between activations of the same shape."""
    return F.mse_loss(features, target)


def style_loss(features: Tensor, target_gram: Tensor, *, norm: str = "chw") -> Tensor:
    """Mean squared error between the Gram matrix of ``features`` and ``target_gram``."""
    return F.mse_loss(gram_matrix(features, norm=norm), target_gram)


def tv_loss(image: Tensor) -> Tensor:
    """Mean squared difference between horizontally and vertically adjacent pixels."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def layer_scale(*features: Tensor) -> Tensor:
    """Root mean square of activations over several images: the per-layer normaliser."""
    return torch.stack([f.pow(2).mean() for f in features]).mean().sqrt().clamp_min(1e-8)


def blend_grams(grams: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Weighted mean of several Gram matrices (style blending); weights sum to 1."""
    total = float(sum(weights))
    return sum(g * (w / total) for g, w in zip(grams, weights))  # type: ignore[return-value]


class Objective(nn.Module):
    """Weighted sum of content, style and TV losses against fixed targets.

    Build it with :meth:`from_features`, call it with the current image's activations and
    the image itself; it returns the weighted terms (``content``, ``style``, ``tv``).
    """

    def __init__(self, *, content_targets: Mapping[str, Tensor], style_targets: Mapping[str, Tensor],
                 scales: Mapping[str, Tensor], content_weights: Mapping[str, float],
                 style_weights: Mapping[str, float], tv_weight: float, gram_norm: str = "chw") -> None:
        super().__init__()
        self.content_targets = dict(content_targets)
        self.style_targets = dict(style_targets)
        self.scales = dict(scales)
        self.content_weights = dict(content_weights)
        self.style_weights = dict(style_weights)
        self.tv_weight = tv_weight
        self.gram_norm = gram_norm

    @classmethod
    def from_features(cls, content: Mapping[str, Tensor], styles: Sequence[Mapping[str, Tensor]], *,
                      content_weights: Mapping[str, float], style_weights: Mapping[str, float],
                      style_blend: Sequence[float] | None = None, tv_weight: float = 0.0,
                      feature_norm: str = "rms", gram_norm: str = "chw") -> Objective:
        """Targets from the content's and the styles' activations (computed without grad).

        Args:
            content: activations of the content image, for every layer used.
            styles: activations of each style image, for every style layer.
            content_weights / style_weights: the overall weight times each layer's weight.
            style_blend: relative weight of each style image (default equal).
        """
        layers = set(content_weights) | set(style_weights)
        scales = {name: (layer_scale(content[name], *(s[name] for s in styles if name in s))
                         if feature_norm == "rms" else torch.ones((), device=content[name].device))
                  for name in layers}
        blend = style_blend or [1.0] * len(styles)
        style_targets = {name: blend_grams([gram_matrix(s[name] / scales[name], norm=gram_norm)
                                            for s in styles], blend)
                         for name in style_weights}
        content_targets = {name: content[name] / scales[name] for name in content_weights}
        return cls(content_targets=content_targets, style_targets=style_targets, scales=scales,
                   content_weights=content_weights, style_weights=style_weights,
                   tv_weight=tv_weight, gram_norm=gram_norm)

    def forward(self, features: Mapping[str, Tensor], image: Tensor) -> dict[str, Tensor]:
        """Weighted loss terms for the current ``image`` and its ``features``."""
        zero = image.new_zeros(())
        content = sum((w * content_loss(features[n] / self.scales[n], self.content_targets[n])
                       for n, w in self.content_weights.items()), zero)
        style = sum((w * style_loss(features[n] / self.scales[n], self.style_targets[n],
                                    norm=self.gram_norm)
                     for n, w in self.style_weights.items()), zero)
        tv = self.tv_weight * tv_loss(image) if self.tv_weight else zero
        return {"content": content, "style": style, "tv": tv}
