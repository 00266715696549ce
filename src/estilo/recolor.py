"""``estilo recolor IMAGE CONTENT -o NEW``: colour preservation applied after the fact.

Gives an existing result (any image, typically an estilo output) the colours of the
content photo, without running the network again: ``--mode luminance`` keeps the image's
luminance and takes the content's chroma; ``--mode match`` recolours the image to the
content's colour mean and covariance. The new file keeps the original's embedded
parameters and adds a ``recolor`` entry.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from PIL import Image

from . import color
from .cli import _Parser, guarded
from .image import load_alpha, resize, same_aspect, to_pil, to_tensor
from .inputs import load_source
from .output import check_output_path, read_parameters, save_image

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


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo recolor``."""
    parser = _Parser(prog="estilo recolor", description="Give a stylised image the colours of "
                     "the content photo (no network run).")
    parser.add_argument("image", help="the stylised image (e.g. an estilo output)")
    parser.add_argument("content", help="the content photo whose colours to restore")
    parser.add_argument("-o", "--output", required=True, help="the new image")
    parser.add_argument("--mode", choices=color.MODES, default="luminance",
                        help="luminance: the image's luminance with the content's chroma; "
                             "match: recolour to the content's colour statistics "
                             "(default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return parser


def main(argv: Sequence[str]) -> int:
    """Entry point of ``estilo recolor``; returns the exit code."""
    args = build_parser().parse_args(list(argv))
    return guarded(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    output = check_output_path(args.output, overwrite=args.overwrite,
                               inputs=[args.image, args.content])
    image, content = load_source(args.image), load_source(args.content)
    result = recolor_image(image.image, content.image, args.mode)
    parameters: dict[str, Any] = read_parameters(args.image) or {}
    parameters["recolor"] = {"mode": args.mode, "image": image.describe(),
                             "content": content.describe()}
    saved = save_image(result, output, parameters=parameters, alpha=load_alpha(args.image))
    print(f"estilo: wrote {saved}", file=sys.stderr)
    return 0


