"""The ``estilo`` command and its subcommands: thin shells over the library.

``estilo CONTENT STYLE... -o OUT`` is :mod:`estilo.cli.stylize`; ``estilo COMMAND ...``
runs the module of that command (:data:`estilo.cli.shell.SUBCOMMANDS`), imported only then.
What they share (parsers, options, errors, exit codes, SIGTERM) is in :mod:`estilo.cli.shell`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from .shell import SUBCOMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``estilo`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    module = importlib.import_module(SUBCOMMANDS[name] if name else "estilo.cli.stylize")
    return int(module.main(argv[1:] if name else argv))
