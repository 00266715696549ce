import pytest
import torch

from estilo.optim import (
    AdaptiveLR,
    ConstantLR,
    PlateauLR,
    default_lr,
    make_optimizer,
    make_schedule,
)


def _opt(lr=1.0):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def _feed(schedule, losses):
    rates = []
    for loss in losses:
        schedule.step(loss)
        rates.append(schedule.lr)
    return rates


def test_adaptive_keeps_rate_while_loss_falls():
    s = AdaptiveLR(_opt(), patience=2, factor=0.5, min_lr=0.01)
    assert _feed(s, [10, 9, 8, 7, 6, 5]) == [1.0] * 6


def test_adaptive_lowers_rate_after_patience_worse_steps():
    s = AdaptiveLR(_opt(), patience=2, factor=0.5, min_lr=0.01)
    # worse at 11 (1), 12 (2) -> lower; then count restarts
    assert _feed(s, [10, 11, 12, 11, 12, 13]) == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_adaptive_counts_worse_than_previous_not_than_best():
    # Oscillating but improving overall: every other step is worse than the previous one.
    adaptive = AdaptiveLR(_opt(), patience=3, factor=0.5, min_lr=0.01)
    plateau = PlateauLR(_opt(), patience=3, factor=0.5, min_lr=0.01)
    losses = [10, 11, 9, 10, 8, 9, 7, 8]
    assert _feed(adaptive, losses)[-1] == 0.5  # three worse-than-previous steps
    assert _feed(plateau, losses)[-1] == 1.0  # a new best every other step


def test_adaptive_floor():
    s = AdaptiveLR(_opt(), patience=1, factor=0.1, min_lr=0.05)
    assert _feed(s, [1, 2, 3, 4, 5])[-1] == pytest.approx(0.05)


def test_plateau_lowers_when_no_new_best():
    s = PlateauLR(_opt(), patience=2, factor=0.5, min_lr=0.01)
    assert _feed(s, [5, 6, 6, 6, 6])[-1] < 1.0


def test_adaptive_rejects_bad_factor():
    with pytest.raises(ValueError):
        AdaptiveLR(_opt(), factor=1.5)


def test_make_optimizer_choices():
    p = [torch.zeros(2, requires_grad=True)]
    assert isinstance(make_optimizer("adam", p, 0.1), torch.optim.Adam)
    assert isinstance(make_optimizer("sgd", p, 0.1), torch.optim.SGD)
    assert isinstance(make_optimizer("lbfgs", p, 1.0), torch.optim.LBFGS)
    with pytest.raises(ValueError, match="adam, sgd, lbfgs"):
        make_optimizer("rmsprop", p, 0.1)


def test_lbfgs_evaluates_once_per_step():
    x = torch.tensor([3.0, -2.0], requires_grad=True)
    opt = make_optimizer("lbfgs", [x], 1.0)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (x ** 2).sum()
        loss.backward()
        calls.append(float(loss.detach()))
        return loss

    for _ in range(4):
        opt.step(closure)
    assert len(calls) == 4
    assert calls[-1] < calls[0]


def test_schedule_factory_and_seed_units():
    opt = _opt()
    assert isinstance(make_schedule("adaptive", opt, patience=1, factor=0.5, min_lr=0.1), AdaptiveLR)
    assert isinstance(make_schedule("constant", opt, patience=1, factor=0.5, min_lr=0.1), ConstantLR)
    lbfgs = make_optimizer("lbfgs", [torch.zeros(1, requires_grad=True)], 1.0)
    assert isinstance(make_schedule("adaptive", lbfgs, patience=1, factor=0.5, min_lr=0.1), ConstantLR)
    with pytest.raises(ValueError):
        make_schedule("cosine", opt, patience=1, factor=0.5, min_lr=0.1)
    assert default_lr("adam", "adaptive") == pytest.approx(100 / 255)
