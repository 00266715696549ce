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

from .config import INITS, ConfigError, StyleConfig
from .image import ImageError, load_image, parse_colour, working_size

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
    """Decoded content, styles and optional init image, and the output size (w, h)."""

    content: Source
    styles: tuple[Source, ...]
    init: Source | None
    size: tuple[int, int]


def prepare(content: ImageInput, style: StyleInput, config: StyleConfig) -> Inputs:
    """Load and check every input image and compute the output size.

    Raises:
        ImageError: an input cannot be used (missing, not an image, too small ...).
        ConfigError: no style image was given.
    """
    background = parse_colour(config.background)
    content_src = _source(content, background)
    styles = tuple(_source(s, background) for s in _as_list(style))
    if not styles:
        raise ConfigError("give at least one style image")
    init = None if config.init in INITS else _source(config.init, background)
    size = working_size(content_src.image.size, config.size, allow_upscale=config.upscale)
    for s in styles:
        working_size(s.image.size, None)  # the style must be usable at its own size
    return Inputs(content_src, styles, init, size)


def _as_list(style: StyleInput) -> list[ImageInput]:
    if isinstance(style, (str, os.PathLike, Image.Image)):
        return [style]
    return list(style)


def _source(item: ImageInput, background: tuple[int, int, int]) -> Source:
    if isinstance(item, Image.Image):
        image = load_image(item, background=background)
        return Source(image, "<image>", hashlib.sha256(image.tobytes()).hexdigest())
    path = Path(item).expanduser()
    image = load_image(path, background=background)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise ImageError(f"cannot read {str(path)!r}: {e.strerror}") from None
    return Source(image, path.name, digest, str(path.resolve()))
