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

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

COV_EPS = 1e-5  # added to covariances' diagonals (RMS-normalised features have variance ~1)
COV_SHRINK = 0.1
"""The meancov loss adds ``COV_SHRINK`` times the target's mean variance to both covariances'
diagonals (shrinkage towards a multiple of the identity).

Its cross term, tr((S2^1/2 S1 S2^1/2)^1/2), takes square roots of eigenvalues; where one is
near zero (a deep layer's 512 x 512 covariance from a few hundred positions at a coarse
level has hundreds) its curvature grows like 1 / eigenvalue^1.5, L-BFGS's steps jump to
losses 1e18 times higher, and its line search then crawls (15 steps reached 7.4 from 10 at
128 px, against 2.1 with the shrinkage, and the picture stayed coloured noise). With both
covariances shrunk alike the loss is still zero at the target.
"""
MEANCOV_SCALE = 4e-5
"""Multiplies the meancov loss so that one style weight means about the same for both losses.

On RMS-normalised activations the meancov loss (W2 / C) is about 1 per layer, the Gram
loss about 1e-4 (conv1_1) to 2e-6 (conv5_1): at the start of a run on the bundled example
(Caffe weights, 160 px) the five default layers sum to about 5 and 2e-4. With this factor
the default Ws = 1e5 gives both losses about the same weight against the content's at the
start. (W2 falls more slowly than the Gram loss, so meancov ends up somewhat stronger.)
"""


def gram_matrix(features: Tensor, *, norm: str = "chw", mask: Tensor | None = None) -> Tensor:
    """Channel correlations of ``features`` (N x C x H x W) -> N x C x C.

    ``norm="chw"`` divides by C*H*W (the seed's convention), ``"hw"`` by H*W. With a ``mask``
    (N x 1 x H x W, values in [0, 1]) this is the guided Gram matrix of Gatys et al. 2017:
    the Gram matrix of ``features * mask``, divided by sum(mask^2) instead of H*W, so a
    region of a stationary texture has the same Gram matrix as the whole texture.
    """
    _, c, h, w = features.shape
    if mask is not None:
        features = features * mask
        area = mask.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-8).view(-1, 1, 1)
    else:
        area = features.new_full((1, 1, 1), float(h * w))
    gram = _Gram.apply(features)
    return gram / (c * area if norm == "chw" else area)


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


def style_loss(features: Tensor, target_gram: Tensor, *, norm: str = "chw",
               mask: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """Mean squared error between the (guided) Gram matrix of ``features / scale`` and
    ``target_gram``; the scale divides the C x C Gram matrix (by ``scale**2``), not every
    activation: the same value without a pass over the feature map."""
    gram = gram_matrix(features, norm=norm, mask=mask)
    return F.mse_loss(gram / scale.square() if scale is not None else gram, target_gram)


def feature_moments(features: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Mean (N x C) and second raw moment (N x C x C) of ``features`` over positions.

    With a ``mask`` (N x 1 x H x W) positions are weighted by it.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    weights = (mask.reshape(n, 1, h * w) if mask is not None else flat.new_ones(1, 1, h * w))
    total = weights.sum(-1).clamp_min(1e-8)                    # N x 1
    mean = (flat * weights).sum(-1) / total
    second = torch.bmm(flat * weights, flat.transpose(1, 2)) / total.unsqueeze(-1)
    return mean, second


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


def covariance(mean: Tensor, second: Tensor, eps: float | Tensor = COV_EPS) -> Tensor:
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


def meancov_loss(features: Tensor, target_mean: Tensor, target_cov: Tensor, *,
                 target_cov_sqrt: Tensor | None = None, mask: Tensor | None = None,
                 eps: float | Tensor = COV_EPS) -> Tensor:
    """Style loss of crowsonkb/style-transfer-pytorch: 2-Wasserstein distance between the
    Gaussians with the features' and the target's mean and covariance, divided by C.

    Args:
        features: N x C x H x W activations.
        target_mean, target_cov: the style's statistics (C or 1 x C; C x C or 1 x C x C).
        target_cov_sqrt: ``sqrtm(target_cov)``, to save one decomposition per call.
        mask: N x 1 x H x W weights of the positions (guided by a region).
        eps: added to the features' covariance's diagonal (the target's shrinkage).
    """
    mean, second = feature_moments(features, mask)
    distance = wasserstein2(mean, covariance(mean, second, eps), target_mean, target_cov,
                            target_cov_sqrt)
    return distance.mean() / features.shape[1]


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


def blend_grams(grams: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Weighted mean of several Gram matrices (style blending); weights sum to 1."""
    total = float(sum(weights))
    return sum(g * (w / total) for g, w in zip(grams, weights))  # type: ignore[return-value]


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
    blended = tuple(blend_grams([s[i] for s in stats], weights) for i in range(len(stats[0])))
    if kind == "gram":
        return blended
    mean, second = blended
    cov = covariance(mean, second, 0.0)
    shrinkage = COV_SHRINK * _trace(cov).view(-1, 1, 1) / cov.shape[-1]
    cov = cov + shrinkage * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    return mean, cov, sqrtm(cov), shrinkage


def style_term(features: Tensor, target: StyleTarget, *, norm: str = "chw",
               mask: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """The style loss of ``features / scale`` against a target of either kind (see
    StyleTarget); the meancov loss is multiplied by :data:`MEANCOV_SCALE`."""
    if len(target) == 1:
        return style_loss(features, target[0], norm=norm, mask=mask, scale=scale)
    if scale is not None:
        features = features / scale
    mean, cov, cov_sqrt, shrinkage = target
    return MEANCOV_SCALE * meancov_loss(features, mean, cov, target_cov_sqrt=cov_sqrt, mask=mask,
                                        eps=shrinkage)


class Objective(nn.Module):
    """Weighted sum of content, style and TV losses against fixed targets.

    Build it with :meth:`from_features`, call it with the current image's activations and
    the image itself; it returns the weighted terms (``content``, ``style``, ``tv``).

    Each style layer has one target per region. Without ``masks`` there is one region, the
    whole image; with masks (``{layer: R x 1 x h x w}``) region r's target applies only
    inside mask r (guided Gram matrices), and the regions' losses are averaged with
    ``region_weights``.

    ``content_targets`` are raw activations; ``style_targets`` are of activations divided by
    the layer's ``scales``. Per step the scales are applied to the content's squared error
    and to the Gram matrices (``mse(f / s, t / s) = mse(f, t) / s^2``, ``G(f / s) = G(f) /
    s^2``): the same losses as on normalised activations, without dividing the feature maps.
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
    def from_features(cls, content: Mapping[str, Tensor], styles: Sequence[Mapping[str, Tensor]], *,
                      content_weights: Mapping[str, float], style_weights: Mapping[str, float],
                      style_blend: Sequence[float] | None = None, tv_weight: float = 0.0,
                      chroma_tv_weight: float = 0.0,
                      feature_norm: str = "rms", gram_norm: str = "chw", style_loss: str = "gram",
                      groups: Sequence[int] | None = None,
                      masks: Mapping[str, Tensor] | None = None) -> Objective:
        """Targets from the content's and the styles' activations (computed without grad).

        Args:
            content: activations of the content image, for every layer used.
            styles: activations of each style image, for every style layer.
            content_weights / style_weights: the overall weight times each layer's weight.
            style_blend: relative weight of each style (group), default equal.
            style_loss: ``gram`` or ``meancov``.
            groups: the style (group) each image belongs to, default one each; a group's
                images share its weight equally (a folder given as one style).
            masks: ``{style layer: R x 1 x h x w}``, one region per group, at the
                layer's resolution; then group r's target applies inside region r only.
        """
        layers = set(content_weights) | set(style_weights)
        return cls.from_moments(
            {name: content[name] for name in content_weights},
            {name: moments(content[name]) for name in layers},
            [{name: moments(s[name]) for name in layers if name in s} for s in styles],
            content_weights=content_weights, style_weights=style_weights,
            style_blend=style_blend, tv_weight=tv_weight, chroma_tv_weight=chroma_tv_weight,
            feature_norm=feature_norm,
            gram_norm=gram_norm, style_loss=style_loss, groups=groups, masks=masks)

    @classmethod
    def from_moments(cls, content_targets: Mapping[str, Tensor],
                     content: Mapping[str, Moments], styles: Sequence[Mapping[str, Moments]], *,
                     content_weights: Mapping[str, float], style_weights: Mapping[str, float],
                     style_blend: Sequence[float] | None = None, tv_weight: float = 0.0,
                      chroma_tv_weight: float = 0.0,
                     feature_norm: str = "rms", gram_norm: str = "chw", style_loss: str = "gram",
                     groups: Sequence[int] | None = None,
                     masks: Mapping[str, Tensor] | None = None) -> Objective:
        """As :meth:`from_features`, from the images' :class:`Moments` (unweighted) and the
        content's activations at the content layers: what a tiled pass over an image too
        large to hold whole gives (see :mod:`estilo.tiling`)."""
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
        """Weighted loss terms for the current ``image`` and its ``features``."""
        zero = image.new_zeros(())
        # mse(f / s, t / s) = mse(f, t) / s^2: no division of the whole feature map per step.
        content = sum((w * content_loss(features[n], self.content_targets[n])
                       / self.scales[n].square() for n, w in self.content_weights.items()), zero)
        style = self.style(features) if self.style_weights else zero
        tv = self.smoothness(image, tv_loss)
        return {"content": content, "style": style, "tv": tv}

    def smoothness(self, image: Tensor, tv: Callable[[Tensor], Tensor]) -> Tensor:
        """The weighted total variation of ``image`` and of its :func:`chroma`, each measured
        by ``tv`` (:func:`tv_loss`, or a tile's share of it)."""
        zero = image.new_zeros(())
        return ((self.tv_weight * tv(image) if self.tv_weight else zero)
                + (self.chroma_tv_weight * tv(chroma(image)) if self.chroma_tv_weight else zero))

    def style(self, features: Mapping[str, Tensor]) -> Tensor:
        """The weighted style term of some activations (the sum over style layers)."""
        return sum(w * self._style(n, features[n])  # type: ignore[return-value]
                   for n, w in self.style_weights.items())

    def weigh_style_by_strength(self, strength: float) -> None:
        """Make each style layer's term a relative error, weighted ``strength``.

        Each layer's weight is divided by its loss at blank (all-zero) activations, i.e. by
        the size of its target (the mean square of the Gram matrix; for meancov, about the
        squared mean plus the variance), and the layers' weights are scaled to sum to
        ``strength``. The style term is then ``strength`` times the mean (per layer weights)
        relative error of the image's style statistics, as the content term (on
        RMS-normalised activations) is a relative error of its features: one strength means
        the same at every size, for both style losses, any layers and every pair of images.
        """
        total = sum(self.style_weights.values())
        blank = {n: float(self.style_of_moments(n, self._blank(n))) for n in self.style_weights}
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

    def style_of_moments(self, name: str, m: Moments) -> Tensor:
        """Style layer ``name``'s (unweighted) term from the image's :class:`Moments` there,
        weighted by :meth:`roots` (one row a region): the same value as from its activations."""
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

    def style_from_moments(self, moments_by_layer: Mapping[str, Moments]) -> Tensor:
        """The weighted style term from each style layer's :class:`Moments` (see
        :meth:`style_of_moments`)."""
        zero = next(iter(self.scales.values())).new_zeros(())
        return sum((w * self.style_of_moments(n, moments_by_layer[n])
                    for n, w in self.style_weights.items()), zero)

    def _blank(self, name: str) -> Moments:
        """The moments of all-zero activations at style layer ``name``."""
        target = self.style_targets[name][0][0]
        c = target.shape[-1]
        regions = len(self.style_targets[name])
        zeros = target.new_zeros(regions, c)
        return Moments(zeros, target.new_zeros(regions, c, c), target.new_ones(regions))

    def _style(self, name: str, features: Tensor) -> Tensor:
        targets, masks, scale = self.style_targets[name], self.masks.get(name), self.scales[name]
        if masks is None:
            return style_term(features, targets[0], norm=self.gram_norm, scale=scale)
        total = float(sum(self.region_weights))
        return sum(w / total * style_term(features, t, norm=self.gram_norm, mask=masks[r:r + 1],
                                          scale=scale)
                   for r, (t, w) in enumerate(zip(targets, self.region_weights)))  # type: ignore


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
