"""The quality panel's structure measure (benchmarks/quality.py): SSIM's structure part."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from estilo.demo import example_paths

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("quality", module)  # its dataclasses look their module up
    spec.loader.exec_module(sys.modules["quality"])
    return sys.modules["quality"]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    image = Image.open(example_paths()[0]).convert("RGB")
    image.thumbnail((256, 256))
    return image


def test_a_darker_picture_keeps_the_structure_part(quality, photo):
    # The photo made darker (every pixel 60 lower, a painting's darker palette): its structure
    # is the photo's, so the contrast-structure part stays near 1 (the dark pixels clipped
    # at 0 lose a little), though the whole SSIM counts the darker mean.
    darker = Image.fromarray(np.clip(np.asarray(photo, dtype=np.int16) - 60, 0, 255).astype(np.uint8))
    assert quality.blurred_ssim(darker, photo, luminance_term=False) > 0.97
    assert quality.blurred_ssim(photo, photo, luminance_term=False) == pytest.approx(1.0)


def test_scrambled_structure_lowers_the_structure_part(quality, photo):
    # The photo's rows in another order: the same pixels, the structure gone.
    rows = np.asarray(photo)[np.random.default_rng(0).permutation(photo.height)]
    assert quality.blurred_ssim(Image.fromarray(rows), photo, luminance_term=False) < 0.5
