"""The mask painted in the page: brush strokes and fills, one colour per style, become the
region mask that :mod:`estilo.mask` reads (one flat grey per style, dark to light in the
styles' order), and a mask image (uploaded, or a result's) becomes strokes again.

The page's painter (:mod:`estilo.web.painter`) holds a :data:`PainterValue`: the photo (a
data URL) and the painted layer (a PNG data URL, transparent where nothing is painted).
Unpainted parts belong to the first style; with nothing painted there is no mask and the
styles are blended everywhere by their weights.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import mask as region
from ..config import ConfigError
from ..mask import MIN_SHARE

BRUSHES = (("red", "#e0302a"), ("blue", "#2a64e0"), ("yellow", "#f0c419"))
"""The brush of each style slot: (name, colour); the page offers at most this many styles."""
MAX_STYLES = len(BRUSHES)
PAINTED = 128  # alpha from which a stroke's pixel counts as painted (its soft edge does not)
PHOTO_QUALITY = 85  # JPEG quality of the photo shown under the strokes (display only)

PainterValue = dict[str, Any]
"""``{"photo": data URL, "width": px, "height": px, "mask": PNG data URL or None}``."""


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


def strokes(mask_image: Image.Image, count: int, size: tuple[int, int]) -> Image.Image:
    """A mask image in the library's format (one flat colour per style, dark to light) as
    the painter's layer: every region in its style's brush colour, at ``size``.

    Raises:
        ConfigError: fewer than two styles, or not one region per style.
    """
    if count < 2:
        raise ConfigError("a mask needs two or three paintings: choose them first")
    image = mask_image.convert("RGB").resize(size, Image.Resampling.NEAREST)
    index = region.labels(image, region.colors(image, count))
    palette = np.array([[*_rgb(colour), 255] for _, colour in BRUSHES[:count]], dtype=np.uint8)
    return Image.fromarray(palette[index], "RGBA")


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    """``image`` as a data URL (PNG, or JPEG for a photo shown under the strokes)."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=PHOTO_QUALITY)
    else:
        image.save(buffer, "PNG")
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def layer(value: PainterValue | None, max_pixels: int) -> Image.Image | None:
    """The painted layer (RGBA) of a painter's value, or None when nothing is painted.

    Raises:
        ConfigError: not a PNG data URL, or larger than ``max_pixels``.
    """
    url = (value or {}).get("mask") if isinstance(value, dict) else None
    if not url:
        return None
    head, _, payload = str(url).partition(",")
    unreadable = ConfigError("the painted mask could not be read: clear it and paint again")
    if head != "data:image/png;base64":
        raise unreadable
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)), formats=["PNG"])
    except (ValueError, OSError, binascii.Error):
        raise unreadable from None
    with image:
        if image.width * image.height > max_pixels:
            raise ConfigError("the painted mask is larger than this server accepts")
        try:
            return image.convert("RGBA")
        except (ValueError, OSError):
            raise unreadable from None


def painter_value(photo: str | Path | None, mask_image: Image.Image | None = None,
                  count: int = 0) -> PainterValue | None:
    """The painter's value for a photo (a prepared upload) and, optionally, a mask image to
    show as strokes (see :func:`strokes`); None without a photo."""
    if photo is None:
        return None
    with Image.open(photo) as image:
        image.load()
        shown = image.convert("RGBA")
    white = Image.new("RGBA", shown.size, "white")
    value: PainterValue = {"photo": data_url(Image.alpha_composite(white, shown), "JPEG"),
                           "width": shown.width, "height": shown.height, "mask": None}
    if mask_image is not None:
        value["mask"] = data_url(strokes(mask_image, count, shown.size))
    return value
