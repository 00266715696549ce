"""The objective: content, style and total-variation losses.

Every layer's activations are divided by a per-layer scale before any loss: the RMS of that
layer's activations over the run's content and style images. One weight then means the same
with any VGG19 weights, input range or image size (benchmarks/README.md, "Normalisation").
The style term has one implementation: statistics of :class:`Moments` (sums over positions),
which add up over tiles (:mod:`estilo.tiling`); an untiled step is one tile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

COV_SHRINK = 0.1
"""Shrinkage of the meancov loss's covariances: ``COV_SHRINK`` times the target's mean variance
added to both diagonals keeps the square roots' curvature finite (benchmarks/README.md,
"Meancov")."""
MEANCOV_SCALE = 4e-5
"""Multiplies the meancov loss so that one style weight means about the same for both losses
(benchmarks/README.md, "Meancov")."""


class _Gram(torch.autograd.Function):
    """Unnormalised Gram matrix F F^T (N x C x C) of N x C x H x W features, either layout.

    Channels-last features are used as a view of their N x HW x C rows (no copy; R^T R is
    also about twice as fast as F F^T on an N x C x HW copy with oneDNN/MKL). The backward
    pass is one product, dF = (dG + dG^T) F, in the features' own layout, where autograd
    would take two products of transposed operands.
    """

    @staticmethod
    def forward(ctx: Any, features: Tensor) -> Tensor:
        ctx.save_for_backward(features)
        if _channels_last(features):
            rows = _rows(features)
            return torch.bmm(rows.transpose(1, 2), rows)
        flat = features.reshape(features.shape[0], features.shape[1], -1)
        return torch.bmm(flat, flat.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (features,) = ctx.saved_tensors
        n, c, h, w = features.shape
        sym = grad + grad.transpose(1, 2)
        if _channels_last(features):
            return torch.bmm(_rows(features), sym).view(n, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(sym, features.reshape(n, c, h * w)).view(n, c, h, w)


def _channels_last(features: Tensor) -> bool:
    """Whether ``features`` is stored channels-last (NHWC) rather than NCHW."""
    return (features.dim() == 4 and not features.is_contiguous()
            and features.is_contiguous(memory_format=torch.channels_last))


def _rows(features: Tensor) -> Tensor:
    """The N x HW x C view of channels-last features."""
    n, c, h, w = features.shape
    return features.permute(0, 2, 3, 1).reshape(n, h * w, c)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between activations of the same shape."""
    return F.mse_loss(features, target)


class Moments(NamedTuple):
    """Weighted sums over positions, all a style statistic needs: sums of tiles add up to the
    whole image's (see :mod:`estilo.tiling`). Weights are squared root weights ``r^2``
    (:func:`moments`): a region mask ``m`` for the guided Gram matrix (``r = m``), the
    positions' weights ``w`` for meancov (``r = sqrt(w)``), 1 without a mask."""

    total: Tensor   # N x C: sum of r^2 f
    outer: Tensor   # N x C x C: sum of (r f)(r f)^T
    weight: Tensor  # N: sum of r^2


def moments(features: Tensor, roots: Tensor | None = None, *, total: bool = True) -> Moments:
    """:class:`Moments` of ``features`` (1 or N x C x H x W) weighted by ``roots`` (N x 1 x H x W
    root weights; None: every position counts 1). ``total=False`` leaves the sum of the
    features zero (the Gram loss does not need it)."""
    n, c, h, w = features.shape
    weighted = features if roots is None else features * roots
    outer = _Gram.apply(weighted)
    if roots is None:
        weight = features.new_full((n,), float(h * w))
        sums = features.sum((2, 3)) if total else features.new_zeros(n, c)
    else:
        weight = roots.square().sum((1, 2, 3))
        sums = (weighted * roots).sum((2, 3)) if total else weighted.new_zeros(weighted.shape[:2])
    return Moments(sums, outer, weight)


def add_moments(a: Moments | None, b: Moments) -> Moments:
    """``a + b`` term by term (``a`` None: ``b``)."""
    return b if a is None else Moments(*(x + y for x, y in zip(a, b)))


def statistics(m: Moments, kind: str, *, norm: str = "chw",
               scale: Tensor | None = None) -> StyleTarget:
    """What an image contributes to a style target, from its :class:`Moments`: ``(gram,)`` or
    ``(mean, second raw moment)`` of ``features / scale``; blends linearly across images."""
    count = m.weight.clamp_min(1e-8).view(-1, 1)
    s = scale if scale is not None else m.total.new_ones(())
    if kind == "gram":
        divisor = count * m.total.shape[-1] if norm == "chw" else count
        return (m.outer / divisor.unsqueeze(-1) / s.square(),)
    return m.total / count / s, m.outer / count.unsqueeze(-1) / s.square()


def mean_square(m: Moments) -> Tensor:
    """Mean square of the activations whose (unweighted) :class:`Moments` these are."""
    return m.outer.diagonal(dim1=-2, dim2=-1).sum() / (m.weight.sum() * m.total.shape[-1])


def covariance(mean: Tensor, second: Tensor, eps: float | Tensor = 0.0) -> Tensor:
    """Covariance (N x C x C) from the mean and second raw moment, plus ``eps`` * identity
    (``eps`` a number or an N x 1 x 1 tensor)."""
    eye = torch.eye(mean.shape[-1], dtype=mean.dtype, device=mean.device)
    return second - mean.unsqueeze(-1) * mean.unsqueeze(-2) + eps * eye


class _Sqrtm(torch.autograd.Function):
    """Square root of symmetric positive semi-definite matrices, by eigendecomposition.

    The backward pass solves the Sylvester equation S X + X S = G in the eigenbasis (X_ij =
    G_ij / (s_i + s_j)); unlike differentiating ``eigh`` it stays finite for repeated
    eigenvalues.
    """

    @staticmethod
    def forward(ctx: Any, a: Tensor) -> Tensor:
        values, vectors = torch.linalg.eigh(a)
        roots = values.clamp_min(0).sqrt()
        ctx.save_for_backward(roots, vectors)
        return vectors @ torch.diag_embed(roots) @ vectors.transpose(-2, -1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        roots, vectors = ctx.saved_tensors
        vt = vectors.transpose(-2, -1)
        g = vt @ ((grad + grad.transpose(-2, -1)) / 2) @ vectors
        denominator = (roots.unsqueeze(-1) + roots.unsqueeze(-2)).clamp_min(1e-12)
        return vectors @ (g / denominator) @ vt


def sqrtm(a: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (... x C x C), differentiable."""
    return _Sqrtm.apply(a)  # type: ignore[no-any-return]


def _trace(a: Tensor) -> Tensor:
    return a.diagonal(dim1=-2, dim2=-1).sum(-1)


def wasserstein2(mean: Tensor, cov: Tensor, target_mean: Tensor, target_cov: Tensor,
                 target_cov_sqrt: Tensor | None = None) -> Tensor:
    """Squared 2-Wasserstein distance between two Gaussians, per batch item (N).

    ``|m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S2^1/2 S1 S2^1/2)^1/2)``; means N x C,
    covariances N x C x C; ``target_cov_sqrt`` (S2^1/2) may be passed precomputed.
    """
    root = sqrtm(target_cov) if target_cov_sqrt is None else target_cov_sqrt
    cross = sqrtm(root @ cov @ root)
    distance = (mean - target_mean).pow(2).sum(-1) + _trace(cov) + _trace(target_cov) \
        - 2 * _trace(cross)
    return distance.clamp_min(0)


CHROMA = ((0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
"""The I and Q rows of the YIQ transform: the two colour-opponent channels of an RGB pixel,
without its luminance."""


def chroma(image: Tensor) -> Tensor:
    """The colour of an RGB image (N x 3 x H x W) without its luminance: N x 2 x H x W."""
    matrix = torch.tensor(CHROMA, dtype=image.dtype, device=image.device)
    return torch.einsum("ck,nkhw->nchw", matrix, image)


def tv_loss(image: Tensor) -> Tensor:
    """Mean squared difference between horizontally and vertically adjacent pixels."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def channel_weights(channels: Sequence[int]) -> tuple[float, ...]:
    """Per-layer weights proportional to 1/C^2 (Gatys' reference code), averaging 1."""
    raw = [1.0 / c**2 for c in channels]
    return tuple(r * len(raw) / sum(raw) for r in raw)


StyleTarget = tuple[Tensor, ...]
"""A style target: ``(gram,)`` for the Gram loss, ``(mean, cov, cov_sqrt, shrinkage)`` for
meancov (see :data:`COV_SHRINK`)."""


def style_target(stats: Sequence[StyleTarget], weights: Sequence[float], kind: str) -> StyleTarget:
    """Blend several images' :func:`statistics` (weights sum to 1) into one target.

    Means and second moments are blended, then turned into a covariance: the Gaussian
    closest to the mixture of the styles' feature distributions.
    """
    total = float(sum(weights))
    blended: StyleTarget = tuple(sum(s[i] * (w / total) for s, w in zip(stats, weights))  # type: ignore[misc]
                                 for i in range(len(stats[0])))
    if kind == "gram":
        return blended
    mean, second = blended
    cov = covariance(mean, second)
    shrinkage = COV_SHRINK * _trace(cov).view(-1, 1, 1) / cov.shape[-1]
    cov = cov + shrinkage * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    return mean, cov, sqrtm(cov), shrinkage


class Objective(nn.Module):
    """Weighted sum of content, style and TV losses against fixed targets.

    Build it with :meth:`from_moments`; call it with an image's activations and the image to
    get the weighted terms (``content``, ``style``, ``tv``). With ``masks`` (``{layer: R x 1 x
    h x w}``) each style layer has one target per region, applied inside its mask only.
    Targets are of activations divided by the layer's ``scales``; a step applies the scales
    to the squared errors and the C x C statistics, not to the feature maps.
    """

    def __init__(self, *, content_targets: Mapping[str, Tensor],
                 style_targets: Mapping[str, Sequence[StyleTarget]], scales: Mapping[str, Tensor],
                 content_weights: Mapping[str, float], style_weights: Mapping[str, float],
                 tv_weight: float, chroma_tv_weight: float = 0.0, gram_norm: str = "chw",
                 masks: Mapping[str, Tensor] | None = None,
                 region_weights: Sequence[float] = (1.0,)) -> None:
        super().__init__()
        self.content_targets = dict(content_targets)
        self.style_targets = {name: list(t) for name, t in style_targets.items()}
        self.scales = dict(scales)
        self.content_weights = dict(content_weights)
        self.style_weights = dict(style_weights)
        self.tv_weight = tv_weight
        self.chroma_tv_weight = chroma_tv_weight
        self.gram_norm = gram_norm
        self.masks = dict(masks or {})
        self.region_weights = tuple(region_weights)

    @classmethod
    def from_moments(cls, content_targets: Mapping[str, Tensor],
                     content: Mapping[str, Moments], styles: Sequence[Mapping[str, Moments]], *,
                     content_weights: Mapping[str, float], style_weights: Mapping[str, float],
                     style_blend: Sequence[float] | None = None, tv_weight: float = 0.0,
                     chroma_tv_weight: float = 0.0,
                     feature_norm: str = "rms", gram_norm: str = "chw", style_loss: str = "gram",
                     groups: Sequence[int] | None = None,
                     masks: Mapping[str, Tensor] | None = None) -> Objective:
        """Targets from the content's activations at the content layers and the content's and
        styles' unweighted :class:`Moments` at every layer (computed without grad).

        ``style_blend``: each style (group)'s weight, default equal; ``groups``: the group of
        each style image (default one each; a group's images share its weight); ``masks``:
        ``{style layer: R x 1 x h x w}``, one region per group.
        """
        layers = set(content_weights) | set(style_weights)
        scales = {name: (torch.stack([mean_square(content[name]),
                                      *(mean_square(s[name]) for s in styles if name in s)])
                         .mean().sqrt().clamp_min(1e-8)
                         if feature_norm == "rms"
                         else torch.ones((), device=content[name].total.device))
                  for name in layers}
        groups = list(groups) if groups is not None else list(range(len(styles)))
        blend = list(style_blend or [1.0] * (max(groups) + 1))
        plans = _region_plans(groups, blend, masked=masks is not None)
        style_targets = {name: [style_target([statistics(styles[i][name], style_loss,
                                                         norm=gram_norm, scale=scales[name])
                                              for i in members], weights, style_loss)
                                for members, weights in plans]
                         for name in style_weights}
        return cls(content_targets=content_targets, style_targets=style_targets, scales=scales,
                   content_weights=content_weights, style_weights=style_weights,
                   tv_weight=tv_weight, chroma_tv_weight=chroma_tv_weight,
                   gram_norm=gram_norm, masks=masks,
                   region_weights=blend if masks is not None else (1.0,))

    def forward(self, features: Mapping[str, Tensor], image: Tensor) -> dict[str, Tensor]:
        """Weighted loss terms for the current ``image`` and its ``features``: the whole image
        as one tile."""
        zero = image.new_zeros(())
        # mse(f / s, t / s) = mse(f, t) / s^2: no division of the whole feature map per step.
        content = sum((w * content_loss(features[n], self.content_targets[n])
                       / self.scales[n].square() for n, w in self.content_weights.items()), zero)
        style = self.style({n: moments(features[n], self.roots(n), total=self.needs_total(n))
                            for n in self.style_weights}) if self.style_weights else zero
        return {"content": content, "style": style, "tv": self.smoothness(image, tv_loss)}

    def smoothness(self, image: Tensor, tv: Callable[[Tensor], Tensor]) -> Tensor:
        """The weighted total variation of ``image`` and of its :func:`chroma`, each measured
        by ``tv`` (:func:`tv_loss`, or a tile's share of it)."""
        zero = image.new_zeros(())
        return ((self.tv_weight * tv(image) if self.tv_weight else zero)
                + (self.chroma_tv_weight * tv(chroma(image)) if self.chroma_tv_weight else zero))

    def style(self, moments_by_layer: Mapping[str, Moments]) -> Tensor:
        """The weighted style term from each style layer's :class:`Moments`, weighted by
        :meth:`roots` (see :meth:`layer_style`)."""
        zero = next(iter(self.scales.values())).new_zeros(())
        return sum((w * self.layer_style(n, moments_by_layer[n])
                    for n, w in self.style_weights.items()), zero)

    def layer_style(self, name: str, m: Moments) -> Tensor:
        """Style layer ``name``'s (unweighted) term from the image's :class:`Moments` there,
        one row a region."""
        total = float(sum(self.region_weights))
        scale = self.scales[name]
        out = m.total.new_zeros(())
        for r, (target, w) in enumerate(zip(self.style_targets[name], self.region_weights)):
            region = Moments(m.total[r:r + 1], m.outer[r:r + 1], m.weight[r:r + 1])
            if len(target) == 1:
                (gram,) = statistics(region, "gram", norm=self.gram_norm, scale=scale)
                term = F.mse_loss(gram, target[0])
            else:
                mean, second = statistics(region, "meancov", scale=scale)
                target_mean, target_cov, target_sqrt, shrinkage = target
                term = MEANCOV_SCALE * wasserstein2(
                    mean, covariance(mean, second, shrinkage), target_mean, target_cov,
                    target_sqrt).mean() / mean.shape[-1]
            out = out + w / total * term
        return out

    def weigh_style_by_strength(self, strength: float) -> None:
        """Make each style layer's term a relative error, weighted ``strength``: each layer's
        weight is divided by its term at blank (all-zero) activations, and the weights are
        scaled to sum to ``strength``, so that one strength means the same at every size, for
        both style losses, any layers and every pair of images."""
        total = sum(self.style_weights.values())
        blank = {n: float(self.layer_style(n, self._blank(n))) for n in self.style_weights}
        self.style_weights = {n: strength * w / total / max(blank[n], 1e-30)
                              for n, w in self.style_weights.items()}

    def needs_total(self, name: str) -> bool:
        """Whether style layer ``name``'s loss uses the sum of the features (meancov's mean)
        besides their outer products."""
        return len(self.style_targets[name][0]) > 1

    def roots(self, name: str) -> Tensor | None:
        """Style layer ``name``'s root weights of positions for :func:`moments` (R x 1 x h x w,
        one map a region; None without masks)."""
        masks = self.masks.get(name)
        if masks is None or len(self.style_targets[name][0]) == 1:
            return masks                  # guided Gram: the Gram matrix of features * mask
        return masks.sqrt()               # meancov: positions weighted by the mask

    def _blank(self, name: str) -> Moments:
        """The moments of all-zero activations at style layer ``name``."""
        target = self.style_targets[name][0][0]
        c = target.shape[-1]
        regions = len(self.style_targets[name])
        zeros = target.new_zeros(regions, c)
        return Moments(zeros, target.new_zeros(regions, c, c), target.new_ones(regions))


def _region_plans(groups: Sequence[int], blend: Sequence[float],
                  masked: bool) -> list[tuple[list[int], list[float]]]:
    """Which images make each target and their weights: one blended target without masks,
    one target per group (its images weighted equally) with masks."""
    count = max(groups) + 1
    if len(blend) != count:
        raise ValueError(f"style_blend has {len(blend)} weights for {count} styles")
    sizes = [groups.count(g) for g in range(count)]
    if not masked:
        return [(list(range(len(groups))), [blend[g] / sizes[g] for g in groups])]
    return [([i for i, g in enumerate(groups) if g == r], [1.0 / sizes[r]] * sizes[r])
            for r in range(count)]
