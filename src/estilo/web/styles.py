"""The bundled paintings the page offers as styles: file, painter, title, year.

The files are package data (``estilo/data/examples/``); their origin and licence are in
``LICENSES.md`` there, and the page credits each painting under its thumbnail.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..demo import example_folder


@dataclass(frozen=True)
class Painting:
    """A bundled public-domain painting."""

    file: str
    painter: str
    title: str
    year: int

    @property
    def path(self) -> Path:
        """The installed file."""
        return example_folder() / self.file

    @property
    def credit(self) -> str:
        """``Vincent van Gogh, The Starry Night (1889), public domain``."""
        return f"{self.painter}, {self.title} ({self.year}), public domain"


PAINTINGS = (
    Painting("starry_night.jpg", "Vincent van Gogh", "The Starry Night", 1889),
    Painting("the_scream.jpg", "Edvard Munch", "The Scream", 1893),
    Painting("shipwreck.jpg", "J. M. W. Turner", "The Shipwreck", 1805),
)
"""The page's bundled styles, in the order of its gallery."""


def credits() -> str:
    """One line crediting every bundled painting (shown on the page)."""
    return "; ".join(p.credit for p in PAINTINGS) + "."
