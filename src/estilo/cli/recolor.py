"""``estilo recolor IMAGE CONTENT -o NEW``: the command-line face of :mod:`estilo.recolor`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import color
from ..recolor import recolor_file
from .shell import Parser, guarded


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo recolor``."""
    parser = Parser(prog="estilo recolor", description="Give a stylised image the colours of "
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
    saved = recolor_file(args.image, args.content, args.output, mode=args.mode,
                         overwrite=args.overwrite)
    print(f"estilo: wrote {saved}", file=sys.stderr)
    return 0
