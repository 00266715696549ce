"""This session's results: what each was made from, to show, download or run again.

A :class:`History` lives in the page's session state (server side); the PNGs stay in the
session's folder until they leave the history or the tab closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .words import choice, label

MAX_ENTRIES = 12
"""Results kept per session; the oldest leaves (and its PNG is removed) beyond this."""


@dataclass(frozen=True)
class Entry:
    """One result: the PNG (parameters embedded), the photo at its size, the painting(s) with
    their weights, the page's option values, its mask (the library's format) if painted,
    and what it continued (Continue, Enlarge), if anything."""

    png: str
    before: str
    content: str
    styles: tuple[str, ...]
    weights: tuple[float, ...]
    values: dict[str, Any]
    status: str
    mask: str | None = None
    number: int = 0
    made: str = ""  # "continued" or "enlarged" when it went further with an earlier one

    @property
    def caption(self) -> str:
        """A short caption under the thumbnail: its number and paintings."""
        names = " + ".join(Path(s).stem.replace("_", " ") for s in self.styles)
        return f"#{self.number} {names}" + (f" ({self.made})" if self.made else "")

    def describe(self) -> str:
        """The options used, as Markdown, in the page's words (the PNG's embedded
        parameters say everything)."""
        made = f" ({self.made})" if self.made else ""
        lines = [f"**#{self.number} {Path(self.png).name}**{made}: {Path(self.content).name} in "
                 "the style of " + ", ".join(f"{Path(s).name} (weight {choice('strength', w)})"
                                             for s, w in zip(self.styles, self.weights))]
        lines += [f"- {label(name)}: `{choice(name, value)}`"
                  for name, value in self.values.items()]
        if self.mask:
            lines.append("- Where each painting goes: painted")
        return "\n".join(lines)


@dataclass
class History:
    """The session's entries, newest first."""

    entries: list[Entry] = field(default_factory=list)

    def add(self, entry: Entry) -> list[Entry]:
        """Put ``entry`` first; return the entries that left (their files may go)."""
        self.entries.insert(0, entry)
        dropped, self.entries = self.entries[MAX_ENTRIES:], self.entries[:MAX_ENTRIES]
        return dropped

    def gallery(self) -> list[tuple[str, str]]:
        """(image, caption) of each entry, for a gallery."""
        return [(e.png, e.caption) for e in self.entries]

    def get(self, index: int | None) -> Entry | None:
        """The entry at ``index`` (a gallery's selection), or None."""
        if index is None or not 0 <= index < len(self.entries):
            return None
        return self.entries[index]
