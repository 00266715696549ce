"""Small helpers shared by the image and output tests."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pixel(im: Image.Image) -> tuple[int, int, int]:
    return im.getpixel((0, 0))


def close_to(a: tuple[int, ...], b: tuple[int, ...], tol: int = 3) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))
