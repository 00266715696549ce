"""Multi-scale (coarse-to-fine) schedule: which sizes to optimise at, and for how long.

Most of the work happens at low resolution, where a step is cheap; each finer level starts
from the upsampled result of the level below, so it only has to add detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Level:
    """One scale: the working size (width, height) and its number of iterations."""

    size: tuple[int, int]
    iterations: int


def scaled(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """``size`` (w, h) scaled so that its long side is ``long_side`` (aspect kept)."""
    w, h = size
    factor = long_side / max(w, h)
    return max(1, round(w * factor)), max(1, round(h * factor))


def levels(final: tuple[int, int], *, iterations: int, scales: int = 0, start_size: int = 256,
           scale_iterations: int = 40) -> list[Level]:
    """Levels from coarse to fine, ending at ``final`` with ``iterations`` iterations.

    Args:
        final: the output size (w, h).
        scales: number of levels; 0 picks them automatically: the long side doubles from
            ``start_size`` (at least) up to the output's; 1 means a single level.
        scale_iterations: iterations at each coarser level.
    """
    long_side = max(final)
    if scales == 0:
        scales = 1
        while long_side / 2 ** scales >= start_size:
            scales += 1
    sides = [round(long_side / 2 ** k) for k in range(scales - 1, 0, -1)]
    coarse = [Level(scaled(final, s), scale_iterations) for s in sides if scale_iterations > 0]
    return coarse + [Level(final, iterations)]


class Schedule(Protocol):
    """The options that set the levels (a :class:`~estilo.config.StyleConfig` has them)."""

    @property
    def iterations(self) -> int: ...
    @property
    def scales(self) -> int: ...
    @property
    def start_size(self) -> int: ...
    @property
    def scale_iterations(self) -> int: ...


def schedule(final: tuple[int, int], config: Schedule) -> list[Level]:
    """The levels of a run of ``config`` whose output is ``final`` (w, h) px."""
    return levels(final, iterations=config.iterations, scales=config.scales,
                  start_size=config.start_size, scale_iterations=config.scale_iterations)


def describe(schedule: Sequence[Level]) -> str:
    """The schedule in words: ``3 levels: 128x96 px x 60, 256x192 px x 60, 512x384 px x 20
    iterations (140 in all)``."""
    total = sum(level.iterations for level in schedule)
    steps = ", ".join(f"{w}x{h} px x {level.iterations}" for level in schedule
                      for w, h in [level.size])
    count = f"{len(schedule)} level{'s' if len(schedule) > 1 else ''}"
    word = "iteration" if total == 1 else "iterations"
    return f"{count}: {steps} {word}" + (f" ({total} in all)" if len(schedule) > 1 else "")


def upsample(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize an N x C x H x W image to ``size`` (w, h), bicubic, clamped to [0, 1]."""
    w, h = size
    if image.shape[-2:] == (h, w):
        return image.detach().clone()
    out = F.interpolate(image.detach(), size=(h, w), mode="bicubic", align_corners=False)
    return out.clamp_(0.0, 1.0)


def style_side(style_size: tuple[int, int], level: tuple[int, int], final: tuple[int, int],
               target: int | None, scale: float = 1.0, *, min_side: int = 32) -> tuple[int, int]:
    """The style image's size at a level: its long side follows the level's scale.

    ``target`` is the style's long side at the output size (None: the output's long side),
    multiplied by ``scale`` (``style_scale``: 2 paints with strokes twice as large). The
    style is never upscaled beyond its own size, nor shrunk below a short side of
    ``min_side`` (VGG19's deepest layers need it) unless it is smaller itself.
    """
    long_side = (target or max(final)) * scale * max(level) / max(final)
    long_side = max(long_side, min_side * max(style_size) / min(style_size))
    long_side = min(long_side, max(style_size))
    return scaled(style_size, max(1, round(long_side)))
