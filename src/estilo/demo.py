"""The bundled example photo and painting, and ``estilo demo``: paint them from any install.

The images are package data (``estilo/data/examples/``, licences in ``LICENSES.md`` there),
so a wheel install has them too: ``estilo demo -o out.png`` takes every ``estilo`` option.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

EXAMPLE_NAMES = ("content.jpg", "style.jpg")
"""The example photo and painting, in the order ``estilo CONTENT STYLE`` takes them."""


def example_folder() -> Path:
    """The installed folder of the bundled example images."""
    return Path(str(resources.files("estilo").joinpath("data/examples")))


def example_paths() -> tuple[Path, Path]:
    """(photo, painting): the bundled example images, from the installed package."""
    folder = example_folder()
    content, style = (folder / name for name in EXAMPLE_NAMES)
    return content, style


def main(argv: Sequence[str]) -> int:
    """``estilo demo -o OUT.png [options]``: the main command on the bundled example."""
    from . import cli

    parser = cli.build_parser(prog="estilo demo", inputs=False,
                              description="Paint the bundled example photo (a cat) in the "
                              "style of the bundled example painting; takes every estilo "
                              "option.")
    args = parser.parse_args(list(argv))
    content, style = example_paths()
    args.content, args.style = str(content), [str(style)]
    return cli.run_command(args)
