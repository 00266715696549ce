"""Shared fixtures: small generated images and tiny, fast configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from estilo import StyleConfig


def make_content(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A synthetic 'photo': a sky gradient, a ground and a few shapes."""
    w, h = size
    img = Image.new("RGB", size)
    px = img.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = (int(90 + 100 * y / h), int(140 + 80 * x / w), 230 - int(120 * y / h))
    draw = ImageDraw.Draw(img)
    draw.rectangle([w // 5, h // 3, w // 2, h - 4], fill=(200, 60, 40))
    draw.ellipse([int(w * 0.6), h // 6, int(w * 0.9), h // 2], fill=(250, 230, 90))
    return img


def make_style(size: tuple[int, int] = (64, 64)) -> Image.Image:
    """A strongly textured 'painting': coloured diagonal swirls."""
    w, h = size
    img = Image.new("RGB", size)
    px = img.load()
    for y in range(h):
        for x in range(w):
            t = math.sin(0.6 * x + 0.3 * math.sin(0.4 * y) * 6) * math.cos(0.5 * y)
            px[x, y] = (int(127 + 120 * t), int(60 + 50 * math.sin(0.9 * x)), int(127 - 120 * t))
    return img


@pytest.fixture
def content_path(tmp_path: Path) -> Path:
    path = tmp_path / "content.png"
    make_content().save(path)
    return path


@pytest.fixture
def style_path(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    make_style().save(path)
    return path


@pytest.fixture
def tiny() -> StyleConfig:
    """A fast config: random weights, one 64 px level, shallow layers, the report's raw style
    weight (the tests that need the default balance or `strength` say so)."""
    return StyleConfig(weights="random", size=64, iterations=8, scales=1, device="cpu",
                       style_layers=("conv1_1", "conv2_1", "conv3_1"), content_layers=("conv3_1",),
                       style_weight=1e5, init="content+noise", pooling="avg")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def quick() -> StyleConfig:
    """Faster than `tiny`: 48 px, two iterations, one layer."""
    return StyleConfig(weights="random", size=48, iterations=2, scales=1, device="cpu",
                       style_layers=("conv1_1",), content_layers=("conv1_1",))


@pytest.fixture
def images(tmp_path: Path) -> dict[str, list[Path]]:
    """Two contents (one a JPEG) in photos/, two styles in styles/, and an unreadable file."""
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    photos.mkdir()
    styles.mkdir()
    make_content((64, 48)).save(photos / "a.png")
    make_content((48, 64)).save(photos / "b.jpg")
    make_style((48, 48)).save(styles / "wave.png")
    make_style((56, 56)).rotate(90).save(styles / "swirl.png")
    (photos / "notes.txt").write_text("not an image, not picked from the folder")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return {"contents": [photos / "a.png", photos / "b.jpg"],
            "styles": [styles / "swirl.png", styles / "wave.png"], "broken": [broken]}
