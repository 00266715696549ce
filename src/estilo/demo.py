"""The bundled example photo and paintings (``estilo demo`` paints the photo in the style of
The Starry Night: :mod:`estilo.cli.demo`).

The images are package data (``estilo/data/examples/``, licences in ``LICENSES.md`` there),
so a wheel install has them too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

EXAMPLE_NAMES = ("content.jpg", "style.jpg")
"""The example photo and painting, in the order ``estilo CONTENT STYLE`` takes them."""
DEMO_STYLE = "starry_night.jpg"
"""The painting ``estilo demo`` uses: Vincent van Gogh, The Starry Night (1889), public domain."""
EXAMPLE_CLIP = "pan.mp4"
"""A 2.5 s camera move over the example photo, with sound (``examples/make_clip.py``)."""


def example_folder() -> Path:
    """The installed folder of the bundled example images."""
    return Path(str(resources.files("estilo").joinpath("data/examples")))


def example_paths() -> tuple[Path, Path]:
    """(photo, painting): the bundled example images, from the installed package."""
    folder = example_folder()
    content, style = (folder / name for name in EXAMPLE_NAMES)
    return content, style


def demo_paths() -> tuple[Path, Path]:
    """(photo, painting) that ``estilo demo`` paints: the example photo, The Starry Night."""
    return example_paths()[0], example_folder() / DEMO_STYLE


def example_clip() -> Path:
    """The bundled example clip (``estilo video`` paints it: ``make video-demo``)."""
    return example_folder() / EXAMPLE_CLIP
