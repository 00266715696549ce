"""The mask painted in the page: brush strokes, one colour per style, become the region mask
that :mod:`estilo.mask` reads (one flat grey per style, dark to light in the styles' order).

Unpainted parts belong to the first style; with nothing painted there is no mask and the
styles are blended everywhere by their weights.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..config import ConfigError
from ..mask import MIN_SHARE

BRUSHES = (("red", "#e0302a"), ("blue", "#2a64e0"), ("yellow", "#f0c419"))
"""The brush of each style slot: (name, colour); the page offers at most this many styles."""
MAX_STYLES = len(BRUSHES)
PAINTED = 128  # alpha from which a stroke's pixel counts as painted (its soft edge does not)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def regions(layer: Image.Image, count: int) -> np.ndarray:
    """Style index (H x W, 0 = first style) of every pixel of a painted ``layer`` (RGBA):
    the nearest of the first ``count`` brush colours where painted, else 0."""
    pixels = np.asarray(layer.convert("RGBA"), dtype=np.float32)
    palette = np.stack([_rgb(colour) for _, colour in BRUSHES[:count]])
    distances = ((pixels[:, :, None, :3] - palette[None, None]) ** 2).sum(-1)
    return np.where(pixels[:, :, 3] >= PAINTED, distances.argmin(-1), 0)


def region_mask(layers: list[Image.Image], count: int,
                size: tuple[int, int]) -> Image.Image | None:
    """The mask (mode L, ``size``) of the painted ``layers`` for ``count`` styles, or None
    when nothing is painted or there is one style.

    Raises:
        ConfigError: some style has no region (or one too small to count).
    """
    painted = [layer for layer in layers if layer is not None
               and np.asarray(layer.convert("RGBA"))[:, :, 3].max() >= PAINTED]
    if count < 2 or not painted:
        return None
    index = np.zeros(painted[0].size[::-1], dtype=np.int64)
    for layer in painted:  # later layers paint over earlier ones
        layer = layer.resize(painted[0].size, Image.Resampling.NEAREST)
        alpha = np.asarray(layer.convert("RGBA"))[:, :, 3] >= PAINTED
        index = np.where(alpha, regions(layer, count), index)
    shares = np.bincount(index.ravel(), minlength=count) / index.size
    missing = [BRUSHES[i][0] for i in range(count) if shares[i] < MIN_SHARE]
    if missing:
        raise ConfigError(f"the painted mask has no region for the {' and '.join(missing)} "
                          f"brush: paint one region per style (the unpainted parts are the "
                          "first style's), or clear the mask to blend the styles everywhere")
    grey = np.round(index * 255 / (count - 1)).astype(np.uint8)
    return Image.fromarray(grey, "L").resize(size, Image.Resampling.NEAREST)
