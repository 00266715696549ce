"""``estilo demo -o OUT.png [options]``: the main command on the bundled example
(:mod:`estilo.demo`); takes every ``estilo`` option."""

from __future__ import annotations

from collections.abc import Sequence

from ..demo import demo_paths
from .stylize import build_parser, run_command


def main(argv: Sequence[str]) -> int:
    """``estilo demo -o OUT.png [options]``: the main command on the bundled example."""
    parser = build_parser(prog="estilo demo", inputs=False,
                              description="Paint the bundled example photo (a cat) in the "
                              "style of a bundled painting (Vincent van Gogh, The Starry "
                              "Night, 1889, public domain); takes every estilo option.")
    args = parser.parse_args(list(argv))
    content, style = demo_paths()
    args.content, args.style = str(content), [str(style)]
    return run_command(args)
