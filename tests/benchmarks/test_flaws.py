"""The quality panel's flaw measures (benchmarks/flaws.py): they fire on what they name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from estilo.demo import example_paths

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def flaws():
    spec = importlib.util.spec_from_file_location("flaws", ROOT / "benchmarks" / "flaws.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def painted() -> Image.Image:
    """A clean painted picture: the bundled generated painting (brush strokes), 256 px."""
    style = Image.open(example_paths()[1]).convert("RGB")
    style.thumbnail((256, 256))
    return style


def _with_noise(image: Image.Image, *, colour: bool, amount: float = 12.0) -> Image.Image:
    """``image`` with pixel-scale noise: in the colour (I/Q, luminance kept) or in the grey."""
    rgb = np.asarray(image, dtype=np.float64)
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, amount, rgb.shape[:2] + (2 if colour else 1,))
    if colour:  # YIQ -> RGB columns of I and Q: the luminance stays as it was
        delta = noise @ np.array([[0.956, -0.272, -1.106], [0.621, -0.647, 1.703]])
    else:
        delta = np.repeat(noise, 3, axis=-1)
    return Image.fromarray(np.clip(rgb + delta, 0, 255).astype(np.uint8))


def test_chroma_speckle_fires_on_pixel_scale_colour_noise(flaws, painted):
    clean = flaws.chroma_speckle(painted)
    speckled = flaws.chroma_speckle(_with_noise(painted, colour=True))
    assert speckled > 2.0 * clean, (clean, speckled)


def test_chroma_speckle_ignores_grey_grain_and_smooth_colour(flaws, painted):
    clean = flaws.chroma_speckle(painted)
    assert flaws.chroma_speckle(_with_noise(painted, colour=False)) < 1.25 * clean
    ramp = np.zeros((64, 64, 3), dtype=np.uint8)  # a smooth colour ramp has no grain
    ramp[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :]
    ramp[..., 2] = np.linspace(255, 0, 64, dtype=np.uint8)[:, None]
    assert flaws.chroma_speckle(Image.fromarray(ramp)) < 0.5


def test_lab_agrees_with_known_values(flaws):
    lab = flaws.lab(np.array([[[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]))
    np.testing.assert_allclose(lab[0, 0], [100.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(lab[0, 1], [53.24, 80.09, 67.20], atol=0.1)
    np.testing.assert_allclose(lab[0, 2], [0.0, 0.0, 0.0], atol=0.05)


def test_palette_kept_is_the_ratio_to_the_photo(flaws):
    assert flaws.palette_kept(5.0, 10.0) == 0.5
