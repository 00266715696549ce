"""Turning what the caller passed (paths, PIL images) into checked, decoded inputs.

Everything here runs before the network is loaded, so a bad file fails in milliseconds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .. import mask
from ..config import INITS, ConfigError, StyleConfig, parse_colour
from ..files import sha256
from .image import (
    IMAGE_SUFFIXES,
    ImageError,
    image_files,
    load_alpha,
    load_image,
    same_aspect,
    working_size,
)

ImageInput = str | os.PathLike[str] | Image.Image
StyleInput = ImageInput | Sequence[ImageInput]


@dataclass(frozen=True)
class Source:
    """One decoded input image and where it came from (for the embedded parameters).

    ``path`` is the absolute path of a file input (None for an in-memory image), so that
    ``estilo resume`` can find the inputs again; ``sha256`` is of the file's bytes.
    """

    image: Image.Image
    name: str
    sha256: str
    path: str | None = None

    def describe(self) -> dict[str, str | None]:
        return {"name": self.name, "sha256": self.sha256, "path": self.path}


@dataclass(frozen=True)
class Inputs:
    """Decoded content, styles and optional init image and mask, and the output size (w, h).

    ``groups[i]`` is the style (argument) that style image ``i`` came from: a folder given
    as one style expands to several images of one group. ``alpha`` is the content's
    transparency when ``keep_alpha`` is set and the content has any.
    """

    content: Source
    styles: tuple[Source, ...]
    init: Source | None
    size: tuple[int, int]
    groups: tuple[int, ...] = ()
    mask: Source | None = None
    alpha: Image.Image | None = None

    @property
    def style_count(self) -> int:
        """Number of styles (a folder counts as one)."""
        return max(self.groups, default=len(self.styles) - 1) + 1


def prepare(content: ImageInput, style: StyleInput, config: StyleConfig) -> Inputs:
    """Load and check every input image and compute the output size.

    Raises:
        ImageError: an input cannot be used (missing, not an image, too small, an empty
            style folder, a mask of the wrong shape ...).
        ConfigError: no style image was given, or the blend weights or the mask's regions
            do not match the number of styles.
    """
    background = parse_colour(config.background)
    content_src = load_source(content, background)
    groups, items = _expand_styles(_as_list(style))
    styles = tuple(load_source(s, background) for s in items)
    if not styles:
        raise ConfigError("give at least one style image")
    init = None if config.init in INITS else load_source(config.init, background)
    size = working_size(content_src.image.size, config.size, allow_upscale=config.upscale,
                        warn=config.size != StyleConfig().size)  # a size the user asked for
    for s in styles:
        working_size(s.image.size, None)  # the style must be usable at its own size
    count = max(groups) + 1
    if config.style_blend is not None and len(config.style_blend) != count:
        given = "1 style was" if count == 1 else f"{count} styles were"
        raise ConfigError(f"style_blend has {len(config.style_blend)} weights but {given} "
                          "given: give one weight per style (a folder counts as one)"
                          + (", or leave style_blend out" if count == 1 else ""))
    mask_src = load_source(config.mask) if config.mask is not None else None
    if mask_src is not None:
        check_mask(mask_src.image, content_src.image.size, count)
    alpha = load_alpha(_raw(content)) if config.keep_alpha else None
    return Inputs(content_src, styles, init, size, tuple(groups), mask_src, alpha)


def check_mask(mask_image: Image.Image, content_size: tuple[int, int], count: int) -> None:
    """Refuse a mask that does not fit the content or the number of styles (fast, no network).

    Raises:
        ImageError: the mask's aspect ratio differs from the content's.
        ConfigError: fewer than two styles, or a different number of regions than styles.
    """
    if count < 2:
        raise ConfigError("a mask needs one style per region, at least two styles; "
                          f"{count} given")
    (mw, mh), (cw, ch) = mask_image.size, content_size
    if not same_aspect(mask_image.size, content_size):
        raise ImageError(f"the mask is {mw}x{mh} but the content is {cw}x{ch}: give a mask with "
                         "the content's aspect ratio (ideally its size)")
    mask.colors(mask_image, count)


def _as_list(style: StyleInput) -> list[ImageInput]:
    if isinstance(style, (str, os.PathLike, Image.Image)):
        return [style]
    return list(style)


def _expand_styles(styles: Sequence[ImageInput]) -> tuple[list[int], list[ImageInput]]:
    """Replace each folder by the images inside it (sorted by name); return group indices."""
    groups: list[int] = []
    items: list[ImageInput] = []
    for index, item in enumerate(styles):
        found: list[ImageInput] = [item]
        if not isinstance(item, Image.Image) and Path(item).expanduser().is_dir():
            found = list(folder_images(item))
        groups += [index] * len(found)
        items += found
    return groups, items


def folder_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files (by extension, hidden files skipped) in ``folder``, sorted by name.

    Raises:
        ImageError: the folder has no image files.
    """
    path = Path(folder).expanduser()
    found = image_files(path)
    if not found:
        raise ImageError(f"style folder {str(path)!r} has no images "
                         f"({', '.join(IMAGE_SUFFIXES)}); put style images in it")
    return found


def _raw(item: ImageInput) -> str | os.PathLike[str] | Image.Image:
    return item if isinstance(item, Image.Image) else Path(item).expanduser()


def load_source(item: ImageInput, background: tuple[int, int, int] = (255, 255, 255)) -> Source:
    """Load and fully check one input image, with its name and sha256 (for the parameters)."""
    if isinstance(item, Image.Image):
        image = load_image(item, background=background)
        return Source(image, "<image>", hashlib.sha256(image.tobytes()).hexdigest())
    path = Path(item).expanduser()
    image = load_image(path, background=background)
    try:
        digest = sha256(path)
    except OSError as e:
        raise ImageError(f"cannot read {str(path)!r}: {e.strerror}") from None
    return Source(image, path.name, digest, str(path.resolve()))
