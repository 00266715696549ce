"""What every ``estilo`` command shares: its parser, the StyleConfig options, one-line errors,
exit codes and SIGTERM.

Only the modules of :mod:`estilo.cli` print and choose exit codes: 0 done, 2 bad input or
options (one line on stderr), 1 an internal error or a diverged run (or, for a batch, failed
items), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). An interrupted run still saves
what it has.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from ..config import FIELDS, ConfigError, StyleConfig, UserError, choices
from ..options import HELP, flag, layer_list, parse

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143

SUBCOMMANDS: dict[str, str] = {
    "demo": "estilo.cli.demo", "resume": "estilo.cli.resume", "grid": "estilo.cli.grid",
    "batch": "estilo.cli.batch", "recolor": "estilo.cli.recolor", "web": "estilo.cli.web",
    "video": "estilo.cli.video",
}
"""``estilo COMMAND``: the module of each command, each with ``main(argv) -> int``."""

# Extra spellings of generated options.
ALIASES: dict[str, tuple[str, ...]] = {"style_blend": ("--blend",)}


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line that points to --help, and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """``-q`` and ``--debug``, as every command that runs something takes them."""
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing but errors (no plan, progress or final line)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


def add_config_options(parser: argparse.ArgumentParser, defaults: StyleConfig | None = None) -> None:
    """One ``--option`` per StyleConfig field (see :mod:`estilo.options`), its default taken
    from ``defaults``."""
    defaults = defaults or StyleConfig()
    for name in FIELDS:
        default = getattr(defaults, name)
        option = flag(name)
        if isinstance(default, bool):
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=default,
                                help=HELP[name])
            continue
        allowed = choices(name)
        shown = default
        if name.endswith("_layers"):  # the layers with their weights inline: relu1_1:4,...
            shown = layer_list(default, getattr(defaults, f"{name[:-1]}_weights"))
        elif name.endswith("_layer_weights"):  # (given with the layers' default above)
            shown = None
        parser.add_argument(option, *ALIASES.get(name, ()), type=_argument(name), default=shown,
                            choices=allowed, help=HELP[name],
                            metavar=None if allowed else name.upper())


def _argument(name: str) -> Callable[[str], Any]:
    """argparse's ``type=`` for an option: :func:`estilo.options.parse`, its message shown."""
    def convert(text: str) -> Any:
        try:
            return parse(name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = name
    return convert


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    """The StyleConfig named by parsed options.

    Raises:
        ConfigError: a bad value, the message naming the flag (``--noise-ratio``), not the field.
    """
    with flags_in_messages():
        return StyleConfig(**{name: getattr(args, name) for name in FIELDS})


@contextlib.contextmanager
def flags_in_messages() -> Iterator[None]:
    """Re-raise a :class:`ConfigError` with the fields it names written as flags."""
    try:
        yield
    except ConfigError as e:
        raise ConfigError(flag_message(str(e))) from None


def flag_message(message: str) -> str:
    """``message`` with StyleConfig field names written as the flags a user typed.

    Names with an underscore (``style_blend``) are replaced anywhere; one-word names
    (``size``, ``init``) only as the message's first word, where they name the option.
    """
    for name in sorted(FIELDS, key=len, reverse=True):
        if "_" in name:
            message = re.sub(rf"(?<![\w-]){name}(?![\w-])", flag(name), message)
        elif re.match(rf"{name}\b(?!-)", message):
            message = flag(name) + message[len(name):]
    return message


def guarded(action: Callable[[], int], *, debug: bool = False, quiet: bool = False) -> int:
    """Run a command's ``action``: user errors become one line on stderr and exit code 2.

    Library messages go to stderr as ``estilo: ...`` lines; ``quiet``: only errors.
    """
    logging.basicConfig(level=logging.WARNING, format="estilo: %(message)s")
    logger = logging.getLogger("estilo")
    level = logger.level
    logger.setLevel(logging.ERROR if quiet else level)
    try:
        return _mapped(action, debug)
    finally:
        logger.setLevel(level)


def _mapped(action: Callable[[], int], debug: bool) -> int:
    try:
        return action()
    except UserError as e:
        print(f"estilo: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before the run started (decoding, loading the network)
        print("estilo: interrupted before the run started; nothing saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # an estilo bug: still one line unless --debug
        if debug:
            raise
        print(f"estilo: internal error: {type(e).__name__}: {e} (rerun with --debug for "
              "details)", file=sys.stderr)
        return 1


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived inside :func:`sigterm_as_interrupt`."""


@dataclass
class Interruption:
    """What stopped a command inside :func:`sigterm_as_interrupt`: SIGTERM or Ctrl-C."""

    terminated: bool = False

    @property
    def status(self) -> int:
        """The exit status: 143 after SIGTERM, 130 after Ctrl-C."""
        return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Interruption]:
    """While inside, SIGTERM raises :class:`Terminated`, a ``KeyboardInterrupt``: the work in
    hand stops and keeps what it has exactly as on Ctrl-C. The yielded record says which of
    the two it was (``status``), also for code that catches the interrupt itself."""
    seen = Interruption()

    def handler(signum: int, frame: object) -> None:
        seen.terminated = True
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)
