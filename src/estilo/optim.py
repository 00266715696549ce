"""Optimisers over the image's pixels and the seed report's adaptive learning rate.

Learning rates are in the units of the optimised variable: RGB pixels in [0, 1]. The seed
report's rates (start 100, floor 0.1) were for 0-255 pixels; divided by 255 they are
0.39 and 0.00039, estilo's defaults for the adaptive schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

OPTIMIZERS = ("adam", "sgd", "lbfgs")
SCHEDULES = ("constant", "adaptive", "plateau")
PIXEL_SCALE = 255.0  # the seed's rates were for 0-255 pixels
LINE_SEARCH_EVALS = 10  # most forward+backward passes of one L-BFGS line search


def default_lr(optimizer: str, schedule: str) -> float:
    """The learning rate used when none is given (in [0, 1] pixel units)."""
    if optimizer == "lbfgs":
        return 1.0
    if optimizer == "sgd":
        return 1e3  # a plain gradient step; the loss gradients per pixel are tiny
    return 100.0 / PIXEL_SCALE if schedule == "adaptive" else 0.02


def make_optimizer(name: str, params: Iterable[Tensor], lr: float, *,
                   line_search: bool = False) -> torch.optim.Optimizer:
    """An optimiser by name: ``adam``, ``sgd`` or ``lbfgs`` (one iteration per step).

    ``line_search`` (L-BFGS only): a strong-Wolfe line search in every step, a few more
    forward+backward passes per step in exchange for steps that cannot blow up.
    """
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "lbfgs":
        # One L-BFGS iteration per step() call, so every step costs one forward+backward
        # (without line search) and yields a progress record; the curvature history
        # persists between calls.
        # (max_eval: torch's default, 1.25 * max_iter, leaves the line search no evaluation.)
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=50,
                                 tolerance_grad=0.0, tolerance_change=0.0,
                                 line_search_fn="strong_wolfe" if line_search else None,
                                 max_eval=1 + LINE_SEARCH_EVALS if line_search else None)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")


class AdaptiveLR:
    """The seed report's schedule: count steps whose loss got worse than the step before;
    after ``patience`` of them multiply the rate by ``factor`` and start counting again;
    never go below ``min_lr``.

    Unlike ``torch.optim.lr_scheduler.ReduceLROnPlateau``, which counts steps that fail to
    beat the best loss so far, this compares each loss with the previous one: it reacts to
    oscillation (the symptom the seed saw with a too-high rate), not to slow progress.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, patience: int = 5,
                 factor: float = 0.7, min_lr: float = 0.1 / PIXEL_SCALE) -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), not {factor}")
        self.optimizer = optimizer
        self.patience = patience
        self.factor = factor
        self.min_lr = min_lr
        self.worse = 0
        self.previous = math.inf

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, loss: float) -> None:
        """Record this step's loss and lower the rate if it has got worse too often."""
        if loss > self.previous:
            self.worse += 1
        self.previous = loss
        if self.worse >= self.patience:
            self.worse = 0
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)

    def state_dict(self) -> dict[str, float]:
        return {"worse": self.worse, "previous": self.previous}


class ConstantLR:
    """No schedule (same interface as :class:`AdaptiveLR`)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, loss: float) -> None:
        """Nothing to do."""


class PlateauLR(ConstantLR):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau`` behind the same interface."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, patience: int = 5,
                 factor: float = 0.7, min_lr: float = 0.1 / PIXEL_SCALE) -> None:
        super().__init__(optimizer)
        self.inner = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, patience=patience, factor=factor, min_lr=min_lr)

    def step(self, loss: float) -> None:
        self.inner.step(loss)


Schedule = AdaptiveLR | ConstantLR


def make_schedule(name: str, optimizer: torch.optim.Optimizer, *, patience: int, factor: float,
                  min_lr: float) -> Schedule:
    """A learning-rate schedule by name (``constant``, ``adaptive``, ``plateau``)."""
    if name == "constant" or isinstance(optimizer, torch.optim.LBFGS):
        return ConstantLR(optimizer)  # L-BFGS sets its own step lengths
    if name == "adaptive":
        return AdaptiveLR(optimizer, patience=patience, factor=factor, min_lr=min_lr)
    if name == "plateau":
        return PlateauLR(optimizer, patience=patience, factor=factor, min_lr=min_lr)
    raise ValueError(f"unknown lr schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
