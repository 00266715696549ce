import pytest
import torch

from estilo.config import default_lr
from estilo.optim import (
    SGD_ELEMENTS,
    AdaptiveLR,
    ConstantLR,
    NonFiniteError,
    PixelDescent,
    PlateauLR,
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


def test_a_schedule_that_lbfgs_ignores_is_a_warning(caplog):
    lbfgs = make_optimizer("lbfgs", [torch.zeros(1, requires_grad=True)], 1.0)
    make_schedule("auto", lbfgs, patience=1, factor=0.5, min_lr=0.1)
    assert caplog.text == ""
    schedule = make_schedule("adaptive", lbfgs, patience=1, factor=0.5, min_lr=0.1)
    assert isinstance(schedule, ConstantLR) and "ignored" in caplog.text


def test_schedule_factory_and_seed_units():
    opt = _opt()
    assert isinstance(make_schedule("adaptive", opt, patience=1, factor=0.5, min_lr=0.1), AdaptiveLR)
    assert isinstance(make_schedule("constant", opt, patience=1, factor=0.5, min_lr=0.1), ConstantLR)
    lbfgs = make_optimizer("lbfgs", [torch.zeros(1, requires_grad=True)], 1.0)
    assert isinstance(make_schedule("auto", lbfgs, patience=1, factor=0.5, min_lr=0.1), ConstantLR)
    assert isinstance(make_schedule("auto", opt, patience=1, factor=0.5, min_lr=0.1), AdaptiveLR)
    with pytest.raises(ValueError):
        make_schedule("cosine", opt, patience=1, factor=0.5, min_lr=0.1)
    assert default_lr("adam", "adaptive") == pytest.approx(100 / 255)


# ---------------------------------------------------------------- PixelDescent
def _image(value=0.5, size=8):
    return torch.full((1, 3, size, size), value)


def _quadratic(target=0.2):
    """An ill-conditioned quadratic (curvatures 1 to 100): no optimiser solves it in a step."""
    def loss_of(image):
        curvature = torch.linspace(1.0, 100.0, image.numel()).view_as(image)
        return (curvature * (image - target).pow(2)).sum()

    return loss_of


def _alone(loss_of):
    """A loss without terms, as PixelDescent takes it: ``(loss, {})``."""
    return lambda image: (loss_of(image), {})


def _steps(descent, loss_of, n):
    """The losses of ``n`` steps (None: undone)."""
    return [None if (evaluated := descent.step(_alone(loss_of))) is None else evaluated[0]
            for _ in range(n)]


def _sgd_rate(plain: float, image: torch.Tensor) -> float:
    """The SGD rate that moves ``image``'s pixels by ``plain`` times their gradient."""
    return plain * SGD_ELEMENTS / image.numel()


@pytest.mark.parametrize("name,lr", [("lbfgs", 1.0), ("adam", 0.05), ("sgd", 0.004)])
def test_descent_lowers_a_quadratic_and_keeps_the_image_in_range(name, lr):
    image = _image()
    d = PixelDescent(image, name, _sgd_rate(lr, image) if name == "sgd" else lr)
    losses = _steps(d, _quadratic(), 20)
    assert None not in losses and losses[-1] < 0.1 * losses[0]
    assert 0.0 <= float(d.image.min()) and float(d.image.max()) <= 1.0
    assert torch.allclose(d.result(), d.image)


def test_a_loss_growing_tenfold_each_step_is_caught_and_the_rate_lowered(caplog):
    # SGD on x^2 with lr 2.08 multiplies the error by -3.16 a step: the loss grows 10x a step,
    # which a check against the previous step's loss (1000x) never saw (issue 16).
    caplog.set_level("INFO", logger="estilo.optim")
    image = torch.full((1, 3, 4, 4), 0.49)
    d = PixelDescent(image, "sgd", _sgd_rate(2.0811, image))
    losses = _steps(d, lambda image: (image - 0.5).pow(2).sum(), 12)
    assert None in losses[:4]                        # a growing step was undone
    assert d.lr == pytest.approx(_sgd_rate(0.20811, image))  # and the rate lowered tenfold
    kept = [v for v in losses if v is not None]
    assert max(kept) <= 100.1 * kept[0] and kept[-1] < 0.01 * kept[0]  # caught within 3 steps
    assert "diverging step" in caplog.text


def test_a_diverging_lbfgs_step_goes_back_and_searches_its_lines():
    # Seed-table row 6 at 512 px: L-BFGS's second step, scaled by the first step's curvature,
    # jumps to a loss 1e15 times higher; a restart overshoots the same way.
    d = PixelDescent(_image(), "lbfgs", 1.0)
    calls = {"n": 0}

    def loss_of(image):
        calls["n"] += 1
        loss = _quadratic()(image)
        return loss * 1e9 if calls["n"] == 3 else loss

    losses = _steps(d, loss_of, 8)
    assert losses[2] is None and d.line_search
    kept = [v for v in losses if v is not None]
    assert all(v < 1e3 * kept[0] for v in kept) and kept[-1] < kept[1]


def test_a_non_finite_step_goes_back_to_the_best_image_with_adam():
    d = PixelDescent(_image(), "adam", 0.05)
    calls = {"n": 0}

    def loss_of(image):
        calls["n"] += 1
        return _quadratic()(image) * (float("nan") if calls["n"] == 3 else 1.0)

    losses = _steps(d, loss_of, 6)
    assert losses[2] is None and all(v is not None for v in losses[3:])
    assert torch.isfinite(d.image).all() and d.lr == pytest.approx(0.005)


def test_permanent_divergence_raises_with_the_last_good_image():
    d = PixelDescent(_image(), "lbfgs", 1.0)
    calls = {"n": 0}

    def loss_of(image):
        calls["n"] += 1
        return _quadratic()(image) * (1.0 if calls["n"] < 3 else float("inf"))

    with pytest.raises(NonFiniteError) as info:
        _steps(d, loss_of, 20)
    assert torch.isfinite(info.value.image).all() and info.value.image.shape == (1, 3, 8, 8)


def test_a_level_that_ends_far_above_its_best_goes_back_to_the_best(caplog):
    d = PixelDescent(_image(0.2), "sgd", 1e-3)
    best = d.image.clone()
    for value in (1.0, 3.0, 9.0, 12.0):  # no jump a divergence, but 12x the best at the end
        d.step(_alone(lambda image, v=value: image.sum() * 0 + v))
        with torch.no_grad():
            d.x.add_(0.1)   # the picture drifts while the loss grows
    assert not torch.allclose(d.image, best)
    assert torch.allclose(d.result(), best)
    assert "going back to the best image" in caplog.text


def test_a_stalled_lbfgs_starts_a_fresh_history(monkeypatch):
    # When the history gives no descent direction (float32 round-off), torch's L-BFGS returns
    # without moving, and (nothing having changed) would do so for every later step.
    real = torch.optim.LBFGS.step
    instances = []

    def step(self, closure):
        if not instances or instances[0] is not self:
            instances.append(self)
        if self is instances[0] and self.state_dict()["state"]:  # the first one stalls
            return closure()
        return real(self, closure)

    monkeypatch.setattr(torch.optim.LBFGS, "step", step)
    d = PixelDescent(_image(), "lbfgs", 1.0)
    losses = _steps(d, _quadratic(), 6)
    assert len(instances) >= 2 and losses[-1] < 0.5 * losses[1]


def test_an_sgd_rate_moves_pixels_alike_at_every_size():
    # A loss that is a mean over positions has per-pixel gradients that shrink with the image;
    # SGD's rate makes up for it, so one default rate serves 96 px and 1024 px alike.
    moves = []
    for side in (8, 64):
        image = torch.full((1, 3, side, side), 0.5)
        d = PixelDescent(image, "sgd", 100.0)
        d.step(_alone(lambda image: (image - 0.25).pow(2).mean()))
        moves.append(float((image - d.image).mean()))
    assert moves[0] > 0 and moves[1] == pytest.approx(moves[0], rel=1e-4)


def test_a_step_returns_the_loss_and_terms_of_the_image_before_it():
    d = PixelDescent(_image(), "lbfgs", 1.0)

    def loss_of(image):
        a, b = (image - 0.2).pow(2).sum(), image.mean()
        return a + b, {"a": a, "b": b}

    before = _image()
    loss, terms = d.step(loss_of)
    assert loss == pytest.approx(float((before - 0.2).pow(2).sum() + before.mean()))
    assert terms == pytest.approx({"a": float((before - 0.2).pow(2).sum()), "b": 0.5})
