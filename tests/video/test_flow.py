"""Flow, warping and reliability masks on synthetic motion whose flow is known exactly."""

import numpy as np
import pytest
import torch

from clips import panning, texture
from estilo.io.image import to_tensor
from estilo.video import flow


def test_flow_finds_a_known_translation_both_ways():
    a, b = (np.asarray(f) for f in panning(2, size=(96, 64), step=(3, 2)))
    forward, backward = flow.flow(a, b), flow.flow(b, a)
    inner = (slice(8, -8), slice(8, -8))
    # the camera moves by (+3, +2): the content moves by (-3, -2)
    assert np.allclose(np.median(forward[inner], axis=(0, 1)), (-3, -2), atol=0.1)
    assert np.allclose(np.median(backward[inner], axis=(0, 1)), (3, 2), atol=0.1)
    assert np.abs(forward[inner] - (-3, -2)).mean() < 0.3


def test_warp_moves_the_previous_frame_onto_the_current_one():
    frames = panning(2, size=(96, 64), step=(3, 2))
    a, b = (to_tensor(f) for f in frames)
    known = np.broadcast_to(np.array([3, 2], np.float32), (64, 96, 2))  # current -> previous
    warped = flow.warp(a, known)
    inner = (..., slice(0, -3), slice(0, -4))  # the last rows/columns come from outside a
    assert float((warped - b)[inner].abs().mean()) < 1 / 255
    assert float((a - b)[inner].abs().mean()) > 5 / 255  # the frames do differ
    # the estimated flow does nearly as well
    estimated = flow.warp(a, flow.flow(np.asarray(frames[1]), np.asarray(frames[0])))
    assert float((estimated - b)[inner].abs().mean()) < 3 / 255


def test_new_pixels_are_not_reliable():
    a, b = (np.asarray(f) for f in panning(2, size=(96, 64), step=(3, 2)))
    weights = flow.reliable(flow.flow(a, b), flow.flow(b, a))
    assert weights.shape == (64, 96) and set(np.unique(weights)) <= {0.0, 1.0}
    assert weights[:, -2:].max() == 0 and weights[-1:, :].max() == 0  # came into view
    assert weights[4:-6, 4:-6].mean() > 0.97


def occluded_pair() -> tuple[np.ndarray, np.ndarray]:
    """A still background and a textured square moving 6 px to the right."""
    background, square = texture((96, 64), seed=1), texture((20, 20), seed=2)
    frames = []
    for x in (30, 36):
        frame = background.copy()
        frame[22:42, x:x + 20] = square
        frames.append(frame)
    return frames[0], frames[1]


def test_occlusion_mask_marks_what_the_occluder_uncovers():
    a, b = occluded_pair()
    weights = flow.reliable(flow.flow(a, b), flow.flow(b, a))
    uncovered = weights[24:40, 31:35]      # behind the square's trailing edge (x 30..35)
    assert uncovered.mean() < 0.2
    far = np.ones_like(weights, dtype=bool)
    far[14:50, 20:66] = False               # away from the square and its path
    far[:3], far[-3:], far[:, :3], far[:, -3:] = False, False, False, False
    assert weights[far].mean() > 0.95
    assert weights[28:36, 44:50].mean() > 0.7  # inside the moving square: reliable


@pytest.mark.parametrize("shift", [0, 2])
def test_warping_error_is_zero_for_a_perfect_warp(shift):
    frames = panning(2, size=(64, 48), step=(shift, 0))
    a, b = (to_tensor(f) for f in frames)
    known = np.broadcast_to(np.array([shift, 0], np.float32), (48, 64, 2))
    weights = flow.inside(known).astype(np.float32)
    assert flow.warping_error(b, a, known, weights) < 0.5
    assert flow.warping_error(b, torch.zeros_like(a), known, weights) > 50


def test_the_bundled_clip_moves_as_its_script_says():
    """examples/make_clip.py's exact flow, against DIS on the clip it filmed."""
    import importlib.util
    from pathlib import Path

    from clips import decoded
    from estilo.demo import example_clip

    script = Path(__file__).resolve().parents[2] / "examples" / "make_clip.py"
    spec = importlib.util.spec_from_file_location("make_clip", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frames = decoded(example_clip())
    photo = (451, 300)
    times = module.times(len(frames))
    for i in (0, 29, 58):
        exact = module.true_flow(times[i], times[i + 1], photo, module.SIZE)
        found = flow.flow(frames[i], frames[i + 1])
        assert np.median(np.abs(found - exact)[8:-8, 8:-8]) < 0.1
