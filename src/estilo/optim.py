"""Optimisers over the image's pixels, the report's adaptive learning rate, and
:class:`PixelDescent`, which owns a run's optimiser and its special cases.

Learning rates are in the units of the optimised variable: RGB pixels in [0, 1]. The
report's rates (start 100, floor 0.1) were for 0-255 pixels; divided by 255 they are
0.39 and 0.00039, estilo's defaults for the adaptive schedule (``config.default_lr``).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from typing import get_args

import torch
from torch import Tensor

from .config import PIXEL_SCALE
from .config import Optimizer as OptimizerName
from .config import Schedule as ScheduleName

log = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)
LINE_SEARCH_EVALS = 10  # most forward+backward passes of one L-BFGS line search


def make_optimizer(name: str, params: Iterable[Tensor], lr: float, *,
                   line_search: bool = False, history: int = 50) -> torch.optim.Optimizer:
    """An optimiser by name: ``adam``, ``sgd`` or ``lbfgs`` (one iteration per step).

    ``line_search`` (L-BFGS only): a strong-Wolfe line search in every step, a few more
    forward+backward passes per step in exchange for steps that cannot blow up.
    ``history`` (L-BFGS only): curvature pairs kept, two image-sized vectors each.
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
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=history,
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
    """A learning-rate schedule by name: ``auto`` (``adaptive`` for Adam and SGD, none for
    L-BFGS, which sets its own step lengths), ``constant``, ``adaptive`` or ``plateau``."""
    lbfgs = isinstance(optimizer, torch.optim.LBFGS)
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
    if lbfgs and name in ("adaptive", "plateau"):
        log.warning("L-BFGS sets its own step lengths: lr schedule %r ignored", name)
    if name == "constant" or lbfgs:
        return ConstantLR(optimizer)
    if name in ("adaptive", "auto"):
        return AdaptiveLR(optimizer, patience=patience, factor=factor, min_lr=min_lr)
    return PlateauLR(optimizer, patience=patience, factor=factor, min_lr=min_lr)


JUMP = 1e3        # a step whose loss exceeds the best loss so far this many times diverged
RUNAWAY = 1e2     # ... or this many times, after growing RUNAWAY_STEPS steps in a row
RUNAWAY_STEPS = 2
GIVE_UP = 5       # consecutive diverging (or non-finite) steps before a run gives up
WORSE_AT_END = 10.0  # a level that ends this many times above its best goes back to the best


class NonFiniteError(RuntimeError):
    """The loss or the image diverged and lowering the rate did not help.

    ``image`` holds the last good image (1 x 3 x H x W, [0, 1]).
    """

    def __init__(self, message: str, image: Tensor) -> None:
        super().__init__(message)
        self.image = image


LossOf = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]
"""The loss of an image: the total (a scalar with a graph back to the image) and its weighted
terms by name."""

SGD_ELEMENTS = 3 * 256 * 256
"""The image size (elements) at which an SGD rate is the plain rate on [0, 1] pixels."""
UNITS: dict[str, Callable[[int], float]] = {
    "lbfgs": lambda elements: PIXEL_SCALE / elements,
    "sgd": lambda elements: math.sqrt(SGD_ELEMENTS / elements),
}
"""The optimised variable is ``image * UNITS[name](elements)`` (1 when absent: Adam's steps do
not depend on the gradient's scale). L-BFGS's first step is the gradient scaled to an L1 norm
of 1: in these units it moves pixels by about a grey level whatever the loss's scale. SGD's
rate then means the same at every size (a mean loss's per-pixel gradients shrink with it)."""


class PixelDescent:
    """Gradient descent on an image's pixels with the safety rails of a long run: the
    optimiser's units (:data:`UNITS`), divergence (back to the best image, then a line search
    or a tenth of the rate; :class:`NonFiniteError` after ``GIVE_UP``), L-BFGS stalls (a fresh
    history) and the end (the best image when the last is ``WORSE_AT_END`` above it).
    ``self.lbfgs`` says which kind of optimiser it drives: L-BFGS is never clamped.
    """

    def __init__(self, image: Tensor, name: str, lr: float, *, schedule: str = "constant",
                 patience: int = 5, factor: float = 0.7,
                 min_lr: float = 0.1 / PIXEL_SCALE, history: int = 50,
                 take: bool = False) -> None:
        """``take``: optimise ``image``'s own storage (it is changed) instead of a copy: one
        image-sized tensor less at print size."""
        self.name = name
        self.lbfgs = name == "lbfgs"
        self.history = history
        self.scale = UNITS[name](image.numel()) if name in UNITS else 1.0
        x = image.detach() if take else image.detach().clone()
        self.x = x.mul_(self.scale).requires_grad_(True)
        self._make_schedule = functools.partial(make_schedule, schedule, patience=patience,
                                                factor=factor, min_lr=min_lr)
        self.line_search = False
        self._restart(lr)
        self.best = self.x.detach().clone()
        self.best_loss = math.inf
        self.last_loss = math.inf
        self.rises = 0    # consecutive steps whose loss grew
        self.failures = 0
        self._restored = False
        # L-BFGS's (unclamped) point before a step, to detect a stall and keep the best point;
        # the others' is the picture shown after the step before.
        self._start = self.x.detach().clone() if self.lbfgs else self.x.new_empty(0)
        self._shown = self._picture(self.x)   # the last picture handed out by a step

    @property
    def lr(self) -> float:
        return self.schedule.lr

    @property
    def image(self) -> Tensor:
        """The current image, RGB in [0, 1] (detached)."""
        return self._picture(self.x)

    @property
    def shown(self) -> Tensor:
        """The picture after the last step, RGB in [0, 1]: one tensor updated in place by
        each step (clone it to keep it)."""
        return self._shown

    def step(self, loss_of: LossOf) -> tuple[float, dict[str, float]] | None:
        """One step on ``loss_of(image)``.

        Returns:
            The loss at the image before the step and its terms, or None when the step
            diverged and was undone (the caller should not count it).

        Raises:
            NonFiniteError: ``GIVE_UP`` steps in a row diverged.
        """
        if self.lbfgs:
            self._start.copy_(self.x.detach())
        loss, terms = self._take(loss_of)
        self.rises = self.rises + 1 if loss > self.last_loss else 0
        if self._diverged(loss):
            self._back_to_best(loss)
            return None
        if loss < self.best_loss and not self._restored:  # (restored: it starts from the best)
            if self.lbfgs:
                self.best.copy_(self._start)
            else:
                torch.mul(self._shown, self.scale, out=self.best)
            self.best_loss = loss
        self._restored = False
        self.failures = 0
        self.last_loss = loss
        if self.lbfgs and torch.equal(self.x.detach(), self._start):
            log.info("L-BFGS stalled: starting a fresh curvature history")
            self._restart(self.lr)
        self.schedule.step(loss)
        with torch.no_grad():
            torch.div(self.x, self.scale, out=self._shown).clamp_(0.0, 1.0)
        return loss, terms

    def _diverged(self, loss: float) -> bool:
        if not (math.isfinite(loss) and bool(torch.isfinite(self.x).all())):
            return True
        return loss > JUMP * self.best_loss or (self.rises >= RUNAWAY_STEPS
                                                and loss > RUNAWAY * self.best_loss)

    @property
    def ends_above_best(self) -> bool:
        """Whether the last loss is far (``WORSE_AT_END``) above the best: :meth:`result` is
        then the best image."""
        return self.last_loss > WORSE_AT_END * self.best_loss

    def result(self) -> Tensor:
        """The level's image: the final one, or the best one if the run ended far above it."""
        if self.ends_above_best:
            log.warning("the loss grew from %.4g to %.4g: going back to the best image",
                        self.best_loss, self.last_loss)
            return self._picture(self.best)
        return self.image

    def _take(self, loss_of: LossOf) -> tuple[float, dict[str, float]]:
        """One optimiser step; the loss and terms of its first evaluation (the image before
        the step; a line search evaluates more)."""
        evaluations: list[tuple[float, dict[str, float]]] = []

        def closure() -> Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            loss, terms = loss_of(self.x / self.scale if self.scale != 1.0 else self.x)
            loss.backward()
            if not evaluations:
                evaluations.append((float(loss.detach()),
                                    {k: float(v.detach()) for k, v in terms.items()}))
            return loss

        self.optimizer.step(closure)  # type: ignore[arg-type]  # torch: closure -> float
        if not self.lbfgs:  # clamping would break L-BFGS's curvature pairs
            with torch.no_grad():
                self.x.clamp_(0.0, self.scale)
        return evaluations[0]

    def _back_to_best(self, loss: float) -> None:
        self.failures += 1
        if self.failures > GIVE_UP:
            last = (self._shown.clone() if bool(torch.isfinite(self._shown).all())
                    else self._picture(self.best))
            raise NonFiniteError("the loss is not finite or diverges even at a much lower rate: "
                                 "lower --lr or the loss weights", last)
        why = (f"diverging step (loss {loss:.3g}, best {self.best_loss:.3g})"
               if math.isfinite(loss) and bool(torch.isfinite(self.x).all())
               else "non-finite loss or image")
        self.rises = 0
        self.last_loss = self.best_loss
        with torch.no_grad():
            if math.isfinite(self.best_loss):
                self.x.copy_(self.best)
            elif self.lbfgs:
                self.x.copy_(self._start)
            else:                              # no step has succeeded: the level's start
                torch.mul(self._shown, self.scale, out=self.x)
        self._restored = True
        if self.lbfgs and not self.line_search:
            # Routine in a level's first steps: the second step, scaled by the curvature of
            # the first, overshoots; a line search bounds every step instead.
            self.line_search = True
            log.info("%s: back to the best image, L-BFGS with line search", why)
            self._restart(self.lr)
        else:
            lr = self.lr / 10.0
            log.warning("%s: back to the best image, lr %.3g", why, lr)
            self._restart(lr)

    def _restart(self, lr: float) -> None:
        self.optimizer = make_optimizer(self.name, [self.x], lr, line_search=self.line_search,
                                        history=self.history)
        self.schedule = self._make_schedule(self.optimizer)

    def _picture(self, x: Tensor) -> Tensor:
        return (x.detach() / self.scale).clamp(0.0, 1.0)
