"""Spatial control: a mask image that says which style paints where (Gatys et al. 2017, sec. 4).

Mask format
-----------
An image (PNG recommended) with the content's aspect ratio, painted with **one flat colour
per style**. The colours are taken **from dark to light** (by luminance): the darkest is the
first style, the lightest the last. Two styles: black and white; three: black, grey and
white (or any colours of different brightness). Colours closer than 48 (in 0-255 RGB units)
to a more common colour, and colours covering under 1 % of the mask (anti-aliased edges,
JPEG noise), are not regions of their own: their pixels join the nearest region.

Each region becomes a soft map (N x 1 x H x W, the regions summing to 1) at the working
size, and is average-pooled alongside VGG's pooling layers to every style layer's
resolution; the style of region r is then compared with guided Gram matrices (or
statistics) of the features weighted by map r only (see :func:`estilo.losses.moments`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .config import ConfigError
from .vgg import pool_factor

MERGE_DISTANCE = 48.0  # RGB 0-255 units: nearer colours belong to the same region
MIN_SHARE = 0.01       # a colour covering less of the mask is not a region
CHECK_SIDE = 1024      # masks are checked at most this long (speed)


def region_colors(mask: Image.Image) -> np.ndarray:
    """The mask's region colours (R x 3, 0-255), ordered dark to light."""
    colours, counts = np.unique(np.asarray(mask.convert("RGB")).reshape(-1, 3), axis=0,
                                return_counts=True)
    seeds: list[np.ndarray] = []
    totals: list[int] = []
    for colour, count in sorted(zip(colours.astype(float), counts), key=lambda c: -c[1]):
        distances = [float(np.linalg.norm(colour - s)) for s in seeds]
        if distances and min(distances) <= MERGE_DISTANCE:
            totals[int(np.argmin(distances))] += int(count)
        else:
            seeds.append(colour)
            totals.append(int(count))
    kept = [s for s, t in zip(seeds, totals) if t >= MIN_SHARE * counts.sum()]
    return np.array(sorted(kept, key=lambda c: (float(c @ [0.299, 0.587, 0.114]), tuple(c))))


def colors(mask: Image.Image, count: int) -> np.ndarray:
    """The region colours of a mask made for ``count`` styles (count x 3, dark to light).

    Raises:
        ConfigError: the mask does not have exactly ``count`` regions.
    """
    found = region_colors(_nearest(mask, CHECK_SIDE))
    if len(found) != count:
        raise ConfigError(f"the mask has {len(found)} colour region(s) but {count} styles were "
                          "given: paint one flat colour per style, dark to light in the styles' "
                          "order (e.g. black and white for two styles)")
    return found


def labels(mask: Image.Image, palette: np.ndarray) -> np.ndarray:
    """Index (H x W) of the nearest of the ``palette`` colours for every pixel of ``mask``."""
    pixels = np.asarray(mask.convert("RGB"), dtype=np.float32)
    distances = ((pixels[:, :, None, :] - palette[None, None].astype(np.float32)) ** 2).sum(-1)
    return distances.argmin(-1)


def _nearest(mask: Image.Image, long_side: int) -> Image.Image:
    """The mask at most ``long_side`` px long, resized without mixing colours."""
    factor = long_side / max(mask.size)
    if factor >= 1.0:
        return mask
    size = (max(1, round(mask.width * factor)), max(1, round(mask.height * factor)))
    return mask.resize(size, Image.Resampling.NEAREST)


def region_maps(mask: Image.Image, size: tuple[int, int], count: int) -> Tensor:
    """One-hot region maps (count x 1 x H x W, float) at ``size`` (w, h).

    The mask is resized without mixing colours (nearest neighbour), so every pixel belongs
    to exactly one region; the maps become soft at borders once pooled to deeper layers.

    Raises:
        ConfigError: the mask does not have exactly ``count`` regions.
    """
    palette = colors(mask, count)
    index = torch.from_numpy(labels(mask.resize(size, Image.Resampling.NEAREST), palette))
    return F.one_hot(index, count).permute(2, 0, 1).unsqueeze(1).float()


def layer_masks(regions: Tensor, layers: Iterable[str],
                shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Tensor]:
    """``regions`` (R x 1 x H x W) average-pooled like VGG to each layer's resolution.

    Args:
        regions: maps at the network's input size.
        layers: the style layers.
        shapes: each layer's activation shape (to check the pooled size).
    """
    out: dict[str, Tensor] = {}
    for name in layers:
        pooled = regions
        for _ in range(pool_factor(name).bit_length() - 1):
            pooled = F.avg_pool2d(pooled, 2, 2)
        if tuple(pooled.shape[-2:]) != tuple(shapes[name][-2:]):
            pooled = F.interpolate(pooled, size=tuple(shapes[name][-2:]), mode="area")
        out[name] = pooled
    return out
