"""Colour preservation applied after the fact (``estilo recolor``: :mod:`estilo.cli.recolor`).

Gives an existing result (any image, typically an estilo output) the colours of the
content photo, without running the network again: ``--mode luminance`` keeps the image's
luminance and takes the content's chroma; ``--mode match`` recolours the image to the
content's colour mean and covariance. The new file keeps the original's embedded
parameters and adds a ``recolor`` entry.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PIL import Image

from . import color
from .io.image import load_alpha, resize, same_aspect, to_pil, to_tensor
from .io.inputs import load_source
from .io.output import check_output_path, read_parameters, save_image

log = logging.getLogger(__name__)


def recolor_image(image: Image.Image, content: Image.Image, mode: str = "luminance") -> Image.Image:
    """``image`` (RGB) with the content's colours; the content is resized to the image's size.

    Args:
        image: the stylised image.
        content: the photo whose colours to restore.
        mode: ``luminance`` or ``match`` (see :func:`estilo.color.recolor`).
    """
    if mode not in color.MODES:
        raise ValueError(f"mode must be one of {', '.join(color.MODES)}, not {mode!r}")
    if not same_aspect(image.size, content.size):
        log.warning("the content is %dx%d but the image is %dx%d, another shape: is it the "
                    "photo the image was made from? its colours are stretched to fit",
                    *content.size, *image.size)
    target = to_tensor(resize(content, image.size))
    return to_pil(color.recolor(to_tensor(image), target, mode))


def recolor_file(image: str | os.PathLike[str], content: str | os.PathLike[str],
                 output: str | os.PathLike[str], *, mode: str = "luminance",
                 overwrite: bool = False) -> Path:
    """Write ``output``: the image file ``image`` with the colours of the photo ``content``.

    The new file keeps ``image``'s embedded parameters and transparency and records a
    ``recolor`` entry (the mode and both inputs).

    Returns:
        Where the image was written (see :func:`estilo.io.output.save_image`).

    Raises:
        ImageError, OutputError: an unusable input or output path, checked before any work.
    """
    target = check_output_path(output, overwrite=overwrite, inputs=[image, content])
    source, photo = load_source(image), load_source(content)
    result = recolor_image(source.image, photo.image, mode)
    parameters: dict[str, Any] = read_parameters(image) or {}
    parameters["recolor"] = {"mode": mode, "image": source.describe(),
                             "content": photo.describe()}
    return save_image(result, target, parameters=parameters, alpha=load_alpha(image))
