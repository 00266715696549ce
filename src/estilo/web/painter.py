"""The page's mask painter: the photo under a canvas, a brush, a fill and an eraser in the
paintings' colours (a Gradio ``HTML`` component with its own script, ``painter.js``).

Its value is a :data:`~estilo.web.painted.PainterValue`: the server sets the photo (and
strokes to show: an uploaded mask, or a result's on "Re-run with changes"); the page sets
the painted layer, which :func:`estilo.web.painted.layer` reads back.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from .painted import BRUSHES

TITLE = "Where each painting goes (optional)"


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def template() -> str:
    """The painter's HTML: its title, tools, one colour per painting and the stage."""
    colours = "".join(
        f'<button type="button" class="colour" data-colour="{colour}" '
        f'style="--c:{colour};--t:{_text_on(colour)}" aria-pressed="{str(index == 0).lower()}" '
        f'title="painting {index + 1}: {name} brush">{index + 1} {name}</button>'
        for index, (name, colour) in enumerate(BRUSHES))
    return (
        f'<div class="painter no-photo"><div class="title">{TITLE}</div>'
        '<div class="tools" role="toolbar" aria-label="mask tools">'
        '<button type="button" class="tool" data-tool="brush" aria-pressed="true">Brush</button>'
        '<button type="button" class="tool" data-tool="fill" aria-pressed="false">Fill</button>'
        '<button type="button" class="tool" data-tool="eraser" aria-pressed="false">Eraser'
        f"</button>{colours}"
        '<label>size <input class="size" type="range" min="1" max="25" value="8"></label>'
        '<button type="button" class="undo">Undo</button>'
        '<button type="button" class="clear">Clear</button></div>'
        '<div class="stage"><div class="frame"><img class="photo" alt="your photo" '
        'draggable="false"><canvas class="strokes"></canvas></div>'
        '<p class="empty">Choose a photo first.</p></div></div>')


def _text_on(colour: str) -> str:
    """Black or white, whichever reads on ``colour`` (#rrggbb)."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#111" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#fff"


def build(gr: Any) -> Any:
    """The painter component (``elem_id="mask"``), empty until a photo is chosen."""
    return gr.HTML(value=None, html_template=template(), css_template=_asset("painter.css"),
                   js_on_load=_asset("painter.js"), elem_id="mask", apply_default_css=False)
