"""Optical flow between frames, warping, and where the flow can be trusted.

Ruder, Dosovitskiy and Brox (2016, *Artistic style transfer for videos*), section 3: the
previous stylised frame, warped by the flow into the current frame, is where the current
frame starts and what the temporal loss holds it to, on the pixels where the flow is
reliable. Flow here is OpenCV's DIS (Kroeger et al. 2016; no model weights), computed both
ways; their consistency gives the masks, with the paper's thresholds:

* **disocclusion**: following the backward flow, then the forward flow, must come back
  where it started: ``|w~ + w^|^2 <= 0.01 (|w~|^2 + |w^|^2) + 0.5``;
* **motion boundaries**: ``|grad u^|^2 + |grad v^|^2 <= 0.01 |w^|^2 + 0.002``;
* and, beyond the paper, pixels whose source lies outside the previous frame (what a pan
  brings into view) are never reliable.

Conventions: frames are ``H x W x 3`` uint8 RGB arrays (NumPy); a flow is ``H x W x 2``
float32 (dx, dy) on the grid of its first frame: ``flow(a, b)[y, x]`` is where pixel (x, y)
of ``a`` moved to in ``b``, minus (x, y). Images to warp are torch ``N x C x H x W`` tensors.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

OCCLUSION_RELATIVE, OCCLUSION_ABSOLUTE = 0.01, 0.5   # Ruder et al.'s consistency check
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002   # ... and motion-boundary check
PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
# Warps resample the previous picture; a bilinear one blurs it a little every frame, and the
# blur adds up (measured on the bundled clip at 120 px: after 10 frames the fine texture,
# mean |Laplacian|, fell to 45 % of a still's with bilinear, 78 % with bicubic).
WARP_MODE = "bicubic"


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The optical flow from frame ``a`` to frame ``b`` (DIS, medium preset), ``H x W x 2``."""
    dis = cv2.DISOpticalFlow_create(PRESET)  # type: ignore[attr-defined]
    grey_a, grey_b = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (a, b))
    return dis.calc(grey_a, grey_b, None).astype(np.float32)


def sample(image: Tensor, displacement: np.ndarray | Tensor, mode: str = "bilinear") -> Tensor:
    """``image`` read at (x, y) + ``displacement[y, x]`` for every pixel (``mode``: a
    :func:`torch.nn.functional.grid_sample` mode).

    Args:
        image: N x C x H x W.
        displacement: H x W x 2 (dx, dy) in pixels, on ``image``'s grid.

    Returns:
        N x C x H x W; points outside the image take the nearest border pixel.
    """
    d = (displacement.float() if isinstance(displacement, Tensor)
         else torch.from_numpy(np.array(displacement, dtype=np.float32))).to(image.device)
    h, w = d.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h, device=d.device, dtype=torch.float32),
                            torch.arange(w, device=d.device, dtype=torch.float32), indexing="ij")
    gx = (xs + d[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0   # align_corners=True coordinates
    gy = (ys + d[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(0).expand(image.shape[0], -1, -1, -1)
    return F.grid_sample(image.float(), grid, mode=mode, padding_mode="border",
                         align_corners=True)


def warp(previous: Tensor, backward: np.ndarray) -> Tensor:
    """The previous frame's picture moved into the current frame.

    Args:
        previous: N x C x H x W, the picture on the previous frame's grid.
        backward: the flow from the current frame to the previous one (``flow(cur, prev)``).
    """
    return sample(previous, backward, WARP_MODE)


def inside(backward: np.ndarray) -> np.ndarray:
    """H x W bool: pixels whose source in the previous frame lies inside it (not new)."""
    h, w = backward.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xs + backward[..., 0], ys + backward[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def reliable(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """H x W float32 weights (1 reliable, 0 not) on the current frame's grid.

    Args:
        forward: ``flow(previous, current)``.
        backward: ``flow(current, previous)``.

    Returns:
        0 where a pixel is disoccluded, on a motion boundary, or new (its source outside the
        previous frame); 1 elsewhere.
    """
    fwd = torch.from_numpy(np.ascontiguousarray(forward)).permute(2, 0, 1).unsqueeze(0)
    followed = sample(fwd, backward)[0].permute(1, 2, 0).numpy()   # w~(x) = w(x + w^(x))
    round_trip = ((followed + backward) ** 2).sum(-1)
    size = (followed ** 2).sum(-1) + (backward ** 2).sum(-1)
    occluded = round_trip > OCCLUSION_RELATIVE * size + OCCLUSION_ABSOLUTE
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    gradient = du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2
    boundary = gradient > BOUNDARY_RELATIVE * (backward ** 2).sum(-1) + BOUNDARY_ABSOLUTE
    return (~occluded & ~boundary & inside(backward)).astype(np.float32)


def warping_error(current: Tensor, previous: Tensor, backward: np.ndarray,
                  weights: np.ndarray) -> float:
    """Mean colour difference between ``current`` and ``previous`` warped into it, over the
    reliable pixels: the temporal warping error (0-255 units, mean absolute, per channel).
    The warp here is always bicubic, whatever :data:`WARP_MODE`, so that it measures alike.

    Args:
        current, previous: 1 x 3 x H x W in [0, 1].
        backward: ``flow(current, previous)``.
        weights: H x W, 1 where the flow is reliable.
    """
    diff = (current.float() - sample(previous, backward, "bicubic")).abs().mean(dim=1)[0]
    w = torch.as_tensor(weights, dtype=torch.float32, device=diff.device)
    return float(255.0 * (diff * w).sum() / w.sum().clamp_min(1.0))
