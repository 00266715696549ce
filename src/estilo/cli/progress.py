"""Progress of the commands on stderr: a live bar on a terminal, plain lines in a log.

* On a terminal: one tqdm bar (carriage returns), its total known from the start, so no
  empty ``0it`` bar is ever drawn.
* When stderr is a file or a pipe (CI logs, ``2> log``): no bar; one line per group (a
  scale level, a grid row, a batch item), printed when the group ends.
* Quiet (``-q``): nothing; errors are printed by the commands themselves.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

NEVER = 1e12  # seconds: the bar's display delay while its total is still unknown


class Progress:
    """One progress display for a command (see the module docstring); close it at the end
    (``with contextlib.closing(Progress(...)) as progress:``)."""

    def __init__(self, total: int | None, *, unit: str = "it", quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and _is_terminal(self.stream)
        self._group: tuple[object, str] | None = None
        self._bar: Any = None
        if self.live:
            from tqdm import tqdm

            # With no total yet the bar waits, its clock already running, until step() has one.
            self._bar = tqdm(total=total, unit=unit, file=self.stream, dynamic_ncols=True,
                             mininterval=0.5, delay=0 if total is not None else NEVER)

    def step(self, description: str = "", postfix: str = "", *, total: int | None = None,
             n: int = 1) -> None:
        """Advance the bar by ``n``; ``total`` sets (or changes) the bar's total."""
        bar = self._bar
        if bar is None:
            return
        if total is not None and bar.total != total:
            bar.total = total
            bar.delay = 0
        if description:
            bar.set_description_str(description, refresh=False)
        if postfix:
            bar.set_postfix_str(postfix, refresh=False)
        bar.update(n)

    def group(self, key: object, summary: str) -> None:
        """The state of group ``key`` so far; in a log, printed once the group ends."""
        if self.live or self.quiet:
            return
        if self._group is not None and self._group[0] != key:
            self.line(self._group[1])
        self._group = (key, summary)

    def line(self, text: str) -> None:
        """Print ``text`` as a line of a log now (nothing on a terminal or when quiet)."""
        if not self.live and not self.quiet:
            print(text, file=self.stream, flush=True)

    @property
    def elapsed(self) -> float | None:
        """Seconds on the bar's clock (None without a bar)."""
        return float(self._bar.format_dict["elapsed"]) if self._bar is not None else None

    def close(self) -> None:
        """End the display: close the bar, or print the last group's line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._group is not None:
            self.line(self._group[1])
            self._group = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
