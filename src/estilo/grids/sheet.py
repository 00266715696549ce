"""Contact sheets and result tables: the output side of :mod:`estilo.grids`.

Pure layout arithmetic, Pillow drawing, and CSV/Markdown writers; nothing here knows how a
row was computed.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..files import write_atomic

TILE = 320          # default display size of a tile (long side, px)
MARGIN = 12         # px around and between tiles
FONT_SIZE = 15
LINE = FONT_SIZE + 4
MAX_LINES = 3       # caption lines per tile
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def columns_for(count: int) -> int:
    """Tiles per line for ``count`` tiles: about square (1 -> 1, 4 -> 2, 11 -> 4)."""
    return max(1, math.ceil(math.sqrt(count)))


def layout(count: int, *, columns: int, cell: tuple[int, int],
           margin: int = MARGIN) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """Canvas size and the top-left corner of each of ``count`` cells, row by row.

    Args:
        count: number of cells.
        columns: cells per line (clamped to 1..count).
        cell: (width, height) of a cell, caption included.
    """
    columns = max(1, min(columns, count or 1))
    lines = math.ceil(count / columns) if count else 0
    w, h = cell
    canvas = (margin + columns * (w + margin), margin + lines * (h + margin))
    corners = [(margin + (i % columns) * (w + margin), margin + (i // columns) * (h + margin))
               for i in range(count)]
    return canvas, corners


def font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` (a bitmap font where FreeType is missing)."""
    return ImageFont.load_default(size=size)


def wrap(text: str, width: int, face: ImageFont.FreeTypeFont | ImageFont.ImageFont,
         *, max_lines: int = MAX_LINES) -> list[str]:
    """Split ``text`` at spaces (or anywhere, for long words) into lines at most ``width`` px."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and face.getlength(candidate) <= width:
            lines[-1] = candidate
            continue
        while face.getlength(word) > width and len(word) > 1:
            cut = max(k for k in range(1, len(word) + 1) if face.getlength(word[:k]) <= width
                      or k == 1)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-1] + "…"
    return lines


def contact_sheet(tiles: Sequence[tuple[str, Image.Image]], *, tile: int = TILE,
                  columns: int = 0) -> Image.Image:
    """One captioned tile per image, every image fitted to the same ``tile`` x ``tile`` box.

    Images of different sizes (224 and 512 px rows) are scaled to the same display size;
    each is centred above its caption.
    """
    face = font()
    fitted = [ImageOps.contain(_on_background(im), (tile, tile), Image.Resampling.LANCZOS)
              for _, im in tiles]
    captions = [wrap(text, tile, face) for text, _ in tiles]
    image_h = max((f.height for f in fitted), default=tile)
    text_h = LINE * max((len(c) for c in captions), default=1)
    size, corners = layout(len(tiles), columns=columns or columns_for(len(tiles)),
                           cell=(tile, image_h + 6 + text_h))
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for im, lines, (x, y) in zip(fitted, captions, corners):
        canvas.paste(im, (x + (tile - im.width) // 2, y + (image_h - im.height) // 2))
        for k, line in enumerate(lines):
            draw.text((x, y + image_h + 6 + k * LINE), line, fill=INK, font=face)
    return canvas


def _on_background(image: Image.Image) -> Image.Image:
    """``image`` as RGB, a transparent one (``keep_alpha`` rows) shown on the sheet's colour."""
    if "A" not in image.getbands():
        return image.convert("RGB")
    canvas = Image.new("RGBA", image.size, BACKGROUND)
    return Image.alpha_composite(canvas, image.convert("RGBA")).convert("RGB")


def write_csv(path: str | os.PathLike[str], header: Sequence[str],
              rows: Sequence[Sequence[object]]) -> Path:
    """Write a CSV table atomically (a temporary file, then a rename)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_atomic(path, buffer.getvalue())


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (``|`` in cells escaped)."""
    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]) + "\n"


def write_markdown(path: str | os.PathLike[str], title: str, paragraphs: Sequence[str],
                   header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """A Markdown file: a title, paragraphs, then the table."""
    body = f"# {title}\n\n" + "".join(p + "\n\n" for p in paragraphs) + markdown(header, rows)
    return write_atomic(path, body)
