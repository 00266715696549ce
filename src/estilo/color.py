"""Colour preservation (Gatys et al. 2017, "Controlling Perceptual Factors in NST", sec. 5).

Pure functions on RGB images in [0, 1] (N x 3 x H x W tensors):

* **luminance-only transfer**: the network sees only luminance (Y of YIQ, repeated on the
  three channels); the style's luminance is first given the content's mean and standard
  deviation (:func:`match_luminance`), and the result's Y is recombined with the content's
  chroma (I, Q) afterwards (:func:`combine_luminance`);
* **colour matching**: the style image is recoloured so that its pixels' colour mean and
  3x3 covariance equal the content's (:func:`match_color`), a linear colour transfer
  x' = A (x - m_s) + m_c with A = C_c^1/2 C_s^-1/2 (the symmetric choice of Gatys et al.).

A style with (nearly) no variance in some colour direction (a greyscale style: all its
pixels lie on the grey axis) cannot be given colour it does not have: the transfer
matches the content's statistics along the directions the style varies in and leaves the
other directions flat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import torch
from torch import Tensor

from .config import PreserveColor

# NTSC YIQ (the space used by Gatys et al. 2017); rows give Y, I, Q from R, G, B.
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.595716, -0.274453, -0.321263],
                           [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)
VARIANCE_EPS = 1e-6  # per-channel variance (pixels in [0, 1]) below which a direction is flat
MODES = tuple(m for m in get_args(PreserveColor) if m != "none")  # luminance, match


def _apply(matrix: Tensor, image: Tensor) -> Tensor:
    """``matrix`` (3 x 3) applied to every pixel of ``image`` (N x 3 x H x W)."""
    return torch.einsum("ij,njhw->nihw", matrix.to(image), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """RGB (N x 3 x H x W) -> YIQ: Y in [0, 1], I and Q the chroma (about +-0.6)."""
    return _apply(RGB_TO_YIQ, image)


def yiq_to_rgb(yiq: Tensor) -> Tensor:
    """YIQ -> RGB (not clamped)."""
    return _apply(YIQ_TO_RGB, yiq)


def luminance(image: Tensor) -> Tensor:
    """The Y channel (N x 1 x H x W) of an RGB image."""
    return rgb_to_yiq(image)[:, :1]


def grey(image: Tensor) -> Tensor:
    """The image's luminance on all three channels (what the network sees in luminance mode)."""
    return luminance(image).expand(-1, 3, -1, -1).contiguous()


def match_luminance(image: Tensor, reference: Tensor) -> Tensor:
    """``image``'s luminance, given ``reference``'s luminance mean and standard deviation.

    Returns a grey RGB image (N x 3 x H x W) in [0, 1]. A flat image is only shifted.
    """
    y, ref = luminance(image), luminance(reference)
    std = y.std()
    scale = ref.std() / std if float(std) > VARIANCE_EPS ** 0.5 else y.new_ones(())
    matched = (y - y.mean()) * scale + ref.mean()
    return matched.clamp(0.0, 1.0).expand(-1, 3, -1, -1).contiguous()


def combine_luminance(luma: Tensor, colour: Tensor) -> Tensor:
    """RGB with the luminance of ``luma`` and the chroma (I, Q) of ``colour``, clamped to [0, 1].

    Both are N x 3 x H x W RGB images of the same size.
    """
    mixed = torch.cat([luminance(luma), rgb_to_yiq(colour)[:, 1:]], dim=1)
    return yiq_to_rgb(mixed).clamp(0.0, 1.0)


def color_statistics(image: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (3) and covariance (3 x 3) of the pixels' colours, in float64."""
    pixels = image.detach().to(torch.float64).permute(1, 0, 2, 3).reshape(3, -1)
    mean = pixels.mean(1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def _sym_power(cov: Tensor, power: float) -> Tensor:
    """``cov`` ** ``power`` for a symmetric PSD 3 x 3 matrix; flat directions map to 0."""
    values, vectors = torch.linalg.eigh(cov)
    flat = values <= VARIANCE_EPS
    powered = torch.where(flat, torch.zeros_like(values), values.clamp_min(VARIANCE_EPS) ** power)
    return vectors @ torch.diag(powered) @ vectors.T


def match_color(image: Tensor, reference: Tensor, *, clamp: bool = True) -> Tensor:
    """Recolour ``image`` so its colour mean and covariance equal ``reference``'s.

    Args:
        image: the image to recolour (N x 3 x H x W, [0, 1]); the style, in Gatys' method.
        reference: whose colour statistics to take; the content.
        clamp: clamp the result to [0, 1] (the statistics are exact only without clamping).
    """
    return match_statistics(image, *color_statistics(reference), clamp=clamp)


def match_statistics(image: Tensor, mean: Tensor, cov: Tensor, *, clamp: bool = True) -> Tensor:
    """Recolour ``image`` (N x 3 x H x W) to the colour ``mean`` (3) and covariance (3 x 3):
    the affine map of Gatys et al. 2017 ("Controlling Perceptual Factors")."""
    mean_s, cov_s = color_statistics(image)
    transform = _sym_power(cov.to(torch.float64), 0.5) @ _sym_power(cov_s, -0.5)
    centred = image.to(torch.float64) - mean_s.view(1, 3, 1, 1)
    out = (_apply(transform, centred) + mean.to(torch.float64).view(1, 3, 1, 1)).to(image.dtype)
    return out.clamp(0.0, 1.0) if clamp else out


def mixed_statistics(images: Sequence[Tensor], weights: Sequence[float]) -> tuple[Tensor, Tensor]:
    """Colour mean and covariance of the mixture of several images' pixels, each image
    weighted (``weights`` sum to 1): the palette of a blend of paintings."""
    stats = [color_statistics(image) for image in images]
    w = torch.tensor(weights, dtype=torch.float64) / float(sum(weights))
    means = torch.stack([m for m, _ in stats])                                  # K x 3
    seconds = torch.stack([c + torch.outer(m, m) for m, c in stats])            # K x 3 x 3
    mean = (w[:, None] * means).sum(0)
    return mean, (w[:, None, None] * seconds).sum(0) - torch.outer(mean, mean)


def recolor(image: Tensor, content: Tensor, mode: str) -> Tensor:
    """Post-hoc colour preservation of an existing result ``image`` (both N x 3 x H x W).

    ``luminance``: the image's luminance with the content's chroma; ``match``: the image
    recoloured to the content's colour mean and covariance.
    """
    if mode == "luminance":
        return combine_luminance(image, content)
    if mode == "match":
        return match_color(image, content)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")


class ColourMode:
    """What a run's ``preserve_color`` mode does at each stage, in one place.

    ``none``: nothing. ``luminance``: the network sees luminance only (the content, the
    style with the content's luminance mean and spread, the start image) and the result
    gets the content's chroma at the end. ``match``: the style is recoloured to the
    content's colour mean and covariance before its targets are computed.
    """

    def __init__(self, mode: str) -> None:
        if mode not in ("none", *MODES):
            raise ValueError(f"mode must be one of none, {', '.join(MODES)}, not {mode!r}")
        self.luminance = mode == "luminance"
        self.match = mode == "match"

    def content(self, image: Tensor) -> Tensor:
        """The content image whose features are the content targets."""
        return grey(image) if self.luminance else image

    def style(self, image: Tensor, content: Tensor) -> Tensor:
        """A style image prepared against the (RGB) content at the same level."""
        if self.match:
            return match_color(image, content)
        return match_luminance(image, content) if self.luminance else image

    def start(self, image: Tensor) -> Tensor:
        """The first level's initial image."""
        return grey(image) if self.luminance else image

    def finish(self, image: Tensor, content: Tensor) -> Tensor:
        """The final image: in luminance mode, its luminance with the content's chroma."""
        return combine_luminance(image, content) if self.luminance else image
