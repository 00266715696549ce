"""Exact losses and gradients of an image too large to pass through the network whole.

The style loss depends on the whole image only through each style layer's
:class:`~estilo.losses.Moments` (sums over positions: the Gram matrix, or the mean and
covariance); the content and total-variation losses are sums of local terms. So a step runs
tile by tile, in memory bounded by the tile:

1. each tile (a crop with a halo, :func:`halo_of`, as wide as the network's error front from
   a zero-padded crop edge, origins on the 16 px pooling grid) gives the exact activations of
   its interior; the interiors' moments add up to the image's (no gradient);
2. from them, the style loss and its gradient with respect to each layer's moments (C x C);
3. each tile again, with gradient: the moments' gradient (fixed) dotted with the interior's
   moments, plus the interior's content and TV terms, backpropagated to the crop's pixels and
   added into the image's gradient.

The gradient equals the untiled one up to float round-off (tests/test_tiling.py). The same
passes, without gradient, give the targets of a large content or style image
(:func:`image_moments`; with ``tile=None`` the image is one tile). :func:`loss` gives the
loss and its terms as an untiled step does: the optimisers do not know about tiles.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .config import LAYER_NAMES
from .losses import Moments, Objective, add_moments, moments
from .vgg import depth_of, pool_factor

GRID = 16
"""VGG19's coarsest pooling step (pool4): crops start on multiples of it, so every pooling
window of a crop is one of the whole image's."""

Features = Callable[[Tensor], dict[str, Tensor]]
"""The network: activations ``{layer: 1 x C x h x w}`` (float32) of an RGB image."""


def halo_of(layers: Iterable[str]) -> int:
    """The halo (px, a multiple of :data:`GRID`) around a tile that makes its interior's
    activations at ``layers`` exact: how far the zero padding of a crop's edge reaches in.

    Each 3x3 convolution moves the front of wrong values one position in at its layer's
    resolution; each 2x2 pooling halves it (rounding up). 80 px to relu5_1.
    """
    front, step = 0, 1
    for name in LAYER_NAMES[: depth_of(layers) + 1]:
        if name.startswith("conv"):
            front += 1
        elif name.startswith("pool"):
            front, step = math.ceil(front / 2), step * 2
    return max(GRID, math.ceil(front * step / GRID) * GRID)


@dataclass(frozen=True)
class Tile:
    """One tile: its interior and its crop (interior plus halo, within the image), as
    (top, bottom, left, right) pixel bounds; ``size`` is the image's (width, height)."""

    interior: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]
    size: tuple[int, int]

    def pixels(self) -> tuple[slice, slice]:
        """The crop's rows and columns in the image."""
        top, bottom, left, right = self.crop
        return slice(top, bottom), slice(left, right)

    def inner(self, factor: int) -> tuple[slice, slice]:
        """The interior's rows and columns in the crop's activations at pooling ``factor``."""
        top, bottom, left, right = self.interior
        return (_span(top - self.crop[0], bottom - self.crop[0], bottom == self.size[1], factor),
                _span(left - self.crop[2], right - self.crop[2], right == self.size[0], factor))

    def region(self, factor: int) -> tuple[slice, slice]:
        """The interior's rows and columns in the whole image's activations at ``factor``."""
        top, bottom, left, right = self.interior
        return (_span(top, bottom, bottom == self.size[1], factor),
                _span(left, right, right == self.size[0], factor))


def _span(start: int, end: int, last: bool, factor: int) -> slice:
    # Starts are on the grid; an interior that ends at the image's edge takes every
    # position to the end (a size that is no multiple of the factor loses its remainder).
    return slice(start // factor, None if last else end // factor)


def tiles(size: tuple[int, int], tile: int, halo: int) -> list[Tile]:
    """Tiles of at most ``tile`` px (a multiple of :data:`GRID`) covering an image of ``size``
    (width, height), interiors of about equal size, each crop with ``halo`` px around."""
    width, height = size
    out = []
    for top, bottom in _cuts(height, tile):
        for left, right in _cuts(width, tile):
            crop = (max(0, top - halo), min(height, bottom + halo),
                    max(0, left - halo), min(width, right + halo))
            out.append(Tile((top, bottom, left, right), crop, size))
    return out


def _cuts(length: int, tile: int) -> list[tuple[int, int]]:
    count = math.ceil(length / tile)
    step = math.ceil(length / count / GRID) * GRID
    return [(start, min(start + step, length)) for start in range(0, length, step)]


def crop_side(tile: int, halo: int) -> int:
    """The long side of a crop (interior plus a halo each side)."""
    return tile + 2 * halo


def image_moments(features_of: Features, image: Tensor, layers: Iterable[str], *,
                  tile: int | None, halo: int = 0, keep: Iterable[str] = ()
                  ) -> tuple[dict[str, Moments], dict[str, Tensor]]:
    """The unweighted :class:`Moments` of ``image``'s activations at ``layers``, and its whole
    activations at the layers in ``keep`` (the content's, for the content loss), tile by
    tile without gradient (``tile=None``: the image whole, one tile)."""
    layers, keep = tuple(layers), tuple(keep)
    size = (image.shape[-1], image.shape[-2])
    layout = tiles(size, tile, halo) if tile is not None else [Tile((0, size[1], 0, size[0]),
                                                                    (0, size[1], 0, size[0]),
                                                                    size)]
    sums: dict[str, Moments] = {}
    kept: dict[str, Tensor] = {}
    with torch.no_grad():
        for t in layout:
            rows, cols = t.pixels()
            features = features_of(image[..., rows, cols])
            for name in set(layers) | set(keep):
                factor = pool_factor(name)
                inner = _cut(features[name], t.inner(factor))
                if name in layers:
                    sums[name] = add_moments(sums.get(name), moments(inner))
                if name in keep and len(layout) == 1:
                    kept[name] = features[name]
                elif name in keep:
                    if name not in kept:
                        n, c = inner.shape[:2]
                        kept[name] = inner.new_zeros(n, c, size[1] // factor, size[0] // factor)
                    top, left = t.region(factor)
                    kept[name][..., top, left] = inner
    return sums, kept


def loss(features_of: Features, objective: Objective, image: Tensor, *, tile: int,
         halo: int) -> tuple[Tensor, dict[str, Tensor]]:
    """The objective's total loss of ``image`` (1 x 3 x H x W), computed tile by tile, with a
    graph back to the image that carries the exact gradient (computed with the value), and
    its weighted terms (detached)."""
    terms, grad = _loss_and_gradient(features_of, objective, image.detach(), tile, halo,
                                     with_gradient=image.requires_grad)
    total: Tensor = _WithGradient.apply(image, sum(terms.values(), image.new_zeros(())), grad)
    return total, terms


class _WithGradient(torch.autograd.Function):
    """A value computed beside autograd, with its gradient with respect to the image."""

    @staticmethod
    def forward(ctx: Any, image: Tensor, value: Tensor, grad: Tensor) -> Tensor:
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        (grad,) = ctx.saved_tensors
        scaled = grad if bool(grad_output == 1) else grad_output * grad  # no copy at print size
        return scaled, None, None


def _loss_and_gradient(features_of: Features, objective: Objective, image: Tensor, tile: int,
                       halo: int, *, with_gradient: bool) -> tuple[dict[str, Tensor], Tensor]:
    size = (image.shape[-1], image.shape[-2])
    layout = tiles(size, tile, halo)
    style_layers = tuple(objective.style_weights)
    # Pass 1: the image's moments at every style layer, tile by tile, no gradient.
    sums: dict[str, Moments] = {}
    if style_layers:
        with torch.no_grad():
            for t in layout:
                rows, cols = t.pixels()
                features = features_of(image[..., rows, cols])
                for name in style_layers:
                    sums[name] = add_moments(sums.get(name), _interior_moments(
                        objective, name, features[name], t))
    # The style term, and its gradient with respect to the moments (small, C x C a layer).
    with torch.enable_grad():
        leaves = {n: Moments(m.total.requires_grad_(), m.outer.requires_grad_(), m.weight)
                  for n, m in sums.items()}
        style = (objective.style(leaves) if style_layers
                 else image.new_zeros(()))
        wanted = [x for m in leaves.values() for x in (m.total, m.outer)]
        grads = torch.autograd.grad(style, wanted, allow_unused=True) if with_gradient and \
            style.requires_grad else [None] * len(wanted)
    by_layer = {n: (grads[2 * i], grads[2 * i + 1]) for i, n in enumerate(leaves)}
    # Pass 2: each tile with gradient; its content and TV terms are sums over its interior.
    content = image.new_zeros(())
    tv = image.new_zeros(())
    gradient = torch.zeros_like(image) if with_gradient else image.new_zeros(())
    for t in layout:
        rows, cols = t.pixels()
        with torch.set_grad_enabled(with_gradient):
            crop = image[..., rows, cols].detach().requires_grad_(with_gradient)
            features = features_of(crop)
            local_content = _content(objective, features, t)
            local_tv = objective.smoothness(crop, functools.partial(_tv, t=t))
            surrogate = local_content + local_tv
            for name, (g_total, g_outer) in by_layer.items():
                m = _interior_moments(objective, name, features[name], t)
                if g_total is not None:
                    surrogate = surrogate + (g_total * m.total).sum()
                if g_outer is not None:
                    surrogate = surrogate + (g_outer * m.outer).sum()
            if with_gradient and surrogate.requires_grad:
                (crop_grad,) = torch.autograd.grad(surrogate, crop)
                gradient[..., rows, cols] += crop_grad
        content = content + local_content.detach()
        tv = tv + local_tv.detach()
    return {"content": content, "style": style.detach(), "tv": tv}, gradient


def _interior_moments(objective: Objective, name: str, features: Tensor, t: Tile) -> Moments:
    """The moments of the interior of a crop's activations, weighted as the objective weighs
    the image's positions. The crop's activations are weighted by a map that is zero outside
    the interior rather than sliced: the activations and their gradient keep the network's
    memory layout (slices of channels-last maps take slow paths in both passes)."""
    factor = pool_factor(name)
    roots = objective.roots(name)
    _, _, h, w = features.shape
    weights = features.new_zeros(1 if roots is None else roots.shape[0], 1, h, w)
    rows, cols = t.inner(factor)
    weights[..., rows, cols] = 1.0 if roots is None else _cut(roots, t.region(factor))
    return moments(features, weights, total=objective.needs_total(name))


def _cut(x: Tensor, where: tuple[slice, slice]) -> Tensor:
    """``x[..., rows, cols]``."""
    rows, cols = where
    return x[..., rows, cols]


def _content(objective: Objective, features: Mapping[str, Tensor], t: Tile) -> Tensor:
    """The interior's share of the weighted content term (a mean over the whole image)."""
    total = next(iter(features.values())).new_zeros(())
    for name, weight in objective.content_weights.items():
        factor = pool_factor(name)
        target = objective.content_targets[name]
        inner = _cut(features[name], t.inner(factor))
        error = (inner - _cut(target, t.region(factor))).square().sum()
        total = total + weight * error / target.numel() / objective.scales[name].square()
    return total


def _tv(crop: Tensor, t: Tile) -> Tensor:
    """The interior's share of :func:`~estilo.losses.tv_loss`: the differences whose first
    pixel is in the interior (the crop holds the next pixel, except at the image's edge)."""
    width, height = t.size
    top, bottom = t.interior[0] - t.crop[0], t.interior[1] - t.crop[0]
    left, right = t.interior[2] - t.crop[2], t.interior[3] - t.crop[2]
    last_row, last_col = min(bottom, crop.shape[-2] - 1), min(right, crop.shape[-1] - 1)
    dx = crop[..., top:bottom, left + 1:last_col + 1] - crop[..., top:bottom, left:last_col]
    dy = crop[..., top + 1:last_row + 1, left:right] - crop[..., top:last_row, left:right]
    channels = crop.shape[-3]
    return (dx.square().sum() / (channels * height * (width - 1))
            + dy.square().sum() / (channels * (height - 1) * width))
