"""``estilo demo -o OUT.png [options]``: the main command on the bundled example
(:mod:`estilo.demo`); takes every ``estilo`` option."""

from __future__ import annotations

from collections.abc import Sequence

from ..demo import example_paths
from .stylize import build_parser, run_command


def main(argv: Sequence[str]) -> int:
    """``estilo demo -o OUT.png [options]``: the main command on the bundled example."""
    parser = build_parser(prog="estilo demo", inputs=False,
                              description="Paint the bundled example photo (a cat) in the "
                              "style of the bundled example painting; takes every estilo "
                              "option.")
    args = parser.parse_args(list(argv))
    content, style = example_paths()
    args.content, args.style = str(content), [str(style)]
    return run_command(args)
