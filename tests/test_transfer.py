from typing import Any

import pytest
import torch

import estilo
from estilo import Stylizer
from estilo.transfer import NonFiniteError
from imaging import fault_in_the_network


def _run(content, style, config):
    return list(Stylizer().steps(content, style, config))


def test_loss_falls_and_steps_are_numbered(content_path, style_path, tiny):
    steps = _run(content_path, style_path, tiny.replace(iterations=12, init="noise"))
    assert [s.iteration for s in steps] == list(range(1, 13))
    assert all(s.total == 12 for s in steps)
    assert steps[-1].loss < steps[0].loss
    assert set(steps[0].terms) == {"content", "style", "tv"}
    assert steps[-1].image.shape == (1, 3, 48, 64)
    assert 0 <= float(steps[-1].image.min()) and float(steps[-1].image.max()) <= 1


def test_same_seed_same_run_different_seed_different_run(content_path, style_path, tiny):
    a = Stylizer().run(content_path, style_path, tiny)
    b = Stylizer().run(content_path, style_path, tiny)
    c = Stylizer().run(content_path, style_path, tiny.replace(seed=1))
    assert torch.equal(a.tensor, b.tensor)
    assert not torch.equal(a.tensor, c.tensor)


def test_index_and_name_notation_give_the_same_run(content_path, style_path, tiny):
    by_index = tiny.replace(style_layers="1,3,5", content_layers="5")
    by_name = tiny.replace(style_layers="conv1_1,conv2_1,conv3_1", content_layers="conv3_1")
    a = Stylizer().run(content_path, style_path, by_index)
    b = Stylizer().run(content_path, style_path, by_name)
    assert torch.equal(a.tensor, b.tensor)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_breaking_out_stops_the_run(content_path, style_path, tiny):
    seen = []
    for step in Stylizer().steps(content_path, style_path, tiny.replace(iterations=100)):
        seen.append(step.iteration)
        if step.iteration == 3:
            break
    assert seen == [1, 2, 3]


@pytest.mark.parametrize("init", ["content", "noise", "content+noise", "style"])
def test_initialisations(content_path, style_path, tiny, init):
    config = tiny.replace(init=init, palette="photo", lr=1e-6, lr_schedule="constant")
    first = next(iter(Stylizer().steps(content_path, style_path, config)))
    image = first.image
    from estilo.io.image import load_image, to_tensor
    content = to_tensor(load_image(content_path))
    diff = float((image - content).abs().mean())
    if init == "content":
        assert diff < 1e-3
    else:
        assert diff > 0.05


def _start(content_path, style_path, config):
    """The first level's start image, as good as: one step at a negligible rate."""
    steps = Stylizer().steps(content_path, style_path, config.replace(lr=1e-9, optimizer="adam",
                                                                      lr_schedule="constant"))
    return next(iter(steps)).image.clone()


def test_grey_noise_is_the_same_in_every_channel(content_path, style_path, tiny):
    from estilo.io.image import load_image, to_tensor
    content = to_tensor(load_image(content_path))
    plain = tiny.replace(palette="photo", noise_ratio=0.5)
    grey = _start(content_path, style_path, plain.replace(noise="grey")) - 0.5 * content
    colour = _start(content_path, style_path, plain.replace(noise="colour")) - 0.5 * content
    assert float((grey[:, 0] - grey[:, 1]).abs().max()) < 1e-3
    assert float((grey[:, 1] - grey[:, 2]).abs().max()) < 1e-3
    assert float((colour[:, 0] - colour[:, 1]).abs().mean()) > 0.05


def test_palette_painting_starts_from_the_photo_in_the_paintings_colours(content_path, style_path,
                                                                        tiny):
    from estilo.color import color_statistics
    from estilo.io.image import load_image, to_tensor
    photo, painting = (to_tensor(load_image(p)) for p in (content_path, style_path))
    config = tiny.replace(init="content")
    start = _start(content_path, style_path, config.replace(palette="painting"))
    kept = _start(content_path, style_path, config.replace(palette="photo"))
    assert float((kept - photo).abs().max()) < 1e-3
    mean = color_statistics(start)[0]
    assert torch.allclose(mean, color_statistics(painting)[0], atol=0.03)
    assert not torch.allclose(mean, color_statistics(photo)[0], atol=0.1)
    # the run keeps the photo's colours where it is asked to
    for mode in ("luminance", "match"):
        same = _start(content_path, style_path, config.replace(palette="painting",
                                                               preserve_color=mode))
        assert not torch.allclose(color_statistics(same)[0], mean, atol=0.03)


def test_init_from_an_image_file(content_path, style_path, tiny, tmp_path):
    from PIL import Image
    init = tmp_path / "init.png"
    Image.new("RGB", (32, 24), (255, 0, 0)).save(init)
    first = next(iter(Stylizer().steps(content_path, style_path,
                                       tiny.replace(init=str(init), lr=1e-6, lr_schedule="constant"))))
    assert float(first.image[0, 0].mean()) > 0.99 and float(first.image[0, 2].mean()) < 0.01


def test_multi_scale_levels_and_sizes(content_path, style_path, tiny):
    config = tiny.replace(size=64, scales=2, start_size=32, scale_iterations=3, iterations=2)
    steps = _run(content_path, style_path, config)
    assert [s.level for s in steps] == [0, 0, 0, 1, 1]
    assert steps[0].size == (32, 24) and steps[-1].size == (64, 48)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("schedule", ["constant", "adaptive", "plateau"])
def test_every_optimizer_and_schedule_runs(content_path, style_path, tiny, optimizer, schedule):
    steps = _run(content_path, style_path, tiny.replace(optimizer=optimizer, lr_schedule=schedule,
                                                        iterations=4, init="noise"))
    assert len(steps) == 4 and all(torch.isfinite(torch.tensor(s.loss)) for s in steps)


def test_stylize_returns_a_pil_image_and_parameters(content_path, style_path, tiny):
    image = estilo.stylize(content_path, style_path, **{**tiny.to_dict(), "size": 48})
    assert image.size == (48, 36) and image.mode == "RGB"
    result = Stylizer().run(content_path, style_path, tiny)
    p = result.parameters
    assert p["config"]["weights"] == "random" and p["seed"] == 0
    assert p["inputs"]["content"]["name"] == "content.png" and len(p["inputs"]["content"]["sha256"]) == 64
    assert p["iterations_done"] == tiny.iterations and "torch" in p["versions"]


def test_several_styles_are_accepted(content_path, style_path, tiny):
    result = Stylizer().run(content_path, [style_path, style_path], tiny)
    assert result.image.size == (64, 48)


def test_content_smaller_than_size_is_not_upscaled(content_path, style_path, tiny):
    result = Stylizer().run(content_path, style_path, tiny.replace(size=512))
    assert result.image.size == (64, 48)
    result = Stylizer().run(content_path, style_path, tiny.replace(size=96, upscale=True))
    assert result.image.size == (96, 72)


def test_exact_size(content_path, style_path, tiny):
    assert Stylizer().run(content_path, style_path, tiny.replace(size=(40, 40))).image.size == (40, 40)


def _scaled(by: float, *, at: int | None = None, after: int | None = None) -> Any:
    """A fault: every feature times ``by`` at evaluation ``at``, or from ``after`` on."""
    def fault(k: int, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        if k == at or (after is not None and k >= after):
            return {name: f * by for name, f in features.items()}
        return None

    return fault


def test_non_finite_step_goes_back_and_lowers_the_rate(content_path, style_path, tiny, monkeypatch):
    fault_in_the_network(monkeypatch, _scaled(float("nan"), at=3))
    steps = _run(content_path, style_path, tiny.replace(optimizer="adam", iterations=5,
                                                        lr_schedule="constant", lr=0.05))
    assert len(steps) == 5
    assert all(torch.isfinite(s.image).all() for s in steps)
    assert steps[-1].lr == pytest.approx(0.005)


def test_a_diverging_lbfgs_step_goes_back_and_searches_its_lines(content_path, style_path, tiny,
                                                                  monkeypatch, caplog):
    # The report's table, row 6 at 512 px: L-BFGS's second step, scaled by the first step's
    # curvature, jumps to a loss 1e15 times higher; a restart overshoots the same way.
    fault_in_the_network(monkeypatch, _scaled(1e3, at=3))  # losses x 1e6 (content) to 1e12
    caplog.set_level("INFO", logger="estilo.optim")
    steps = _run(content_path, style_path, tiny.replace(optimizer="lbfgs", iterations=8))
    assert [s.iteration for s in steps] == list(range(1, 9))
    assert all(s.loss < 1e3 * steps[0].loss for s in steps)  # the huge loss was not kept
    assert steps[-1].loss < steps[1].loss
    assert "diverging step" in caplog.text and "L-BFGS with line search" in caplog.text


def test_permanent_divergence_raises_with_the_last_good_image(content_path, style_path, tiny,
                                                                monkeypatch):
    fault_in_the_network(monkeypatch, _scaled(float("inf"), after=3))
    with pytest.raises(NonFiniteError) as info:
        _run(content_path, style_path, tiny.replace(iterations=20))
    assert torch.isfinite(info.value.image).all()


def test_start_image_replaces_init_at_any_size(content_path, style_path, tiny):
    start = torch.zeros(1, 3, 24, 32)
    start[..., :, 16:] = 1.0  # black left half, white right half, half the output's size
    config = tiny.replace(lr=1e-9, lr_schedule="constant", optimizer="adam", iterations=1)
    step = next(iter(Stylizer().job(content_path, style_path, config, start_image=start).steps()))
    image = step.image
    assert image.shape == (1, 3, 48, 64)
    assert float(image[..., :, :28].mean()) < 0.05 and float(image[..., :, 36:].mean()) > 0.95


def test_extra_loss_terms_are_added_and_optimised(content_path, style_path, tiny):
    target = torch.full((1, 3, 48, 64), 0.5)

    def pull(image):
        return {"temporal": 1e3 * ((image - target) ** 2).mean()}

    config = tiny.replace(iterations=10)
    plain = Stylizer().job(content_path, style_path, config).run().tensor
    steps = list(Stylizer().job(content_path, style_path, config, extra_loss=pull).steps())
    assert set(steps[0].terms) == {"content", "style", "tv", "temporal"}
    assert steps[0].loss == pytest.approx(sum(steps[0].terms.values()))
    pulled = steps[-1].image
    assert float(((pulled - target) ** 2).mean()) < 0.25 * float(((plain - target) ** 2).mean())


def test_a_level_that_goes_back_to_its_best_reports_the_best(content_path, style_path, tiny,
                                                            caplog):
    """The last step of a level that ends far above its best carries the best picture and
    its loss and terms (what the level hands on and a command saves), not the worse last."""
    ramp = iter([1e3, 3e3, 9e3, 1.2e4])  # 12x the best at the end: no divergence on the way

    def growing(image):
        return {"ramp": image.sum() * 0 + next(ramp)}

    config = tiny.replace(iterations=4, optimizer="sgd", lr=1e-9)
    steps = list(Stylizer().job(content_path, style_path, config, extra_loss=growing).steps())
    assert "going back to the best image" in caplog.text
    first, last = steps[0], steps[-1]
    assert last.loss == pytest.approx(first.loss) and last.terms == first.terms
    assert last.terms["ramp"] == 1e3


def test_a_run_that_hands_back_its_start_image_says_so(content_path, style_path, tiny, caplog):
    """No silent no-progress: a run whose picture did not change warns, naming a weight far
    outside its useful range when there is one; a run that paints says nothing."""
    stuck = tiny.replace(optimizer="sgd", lr=1e-12, iterations=2)
    list(Stylizer().job(content_path, style_path, stuck).steps())
    assert "the picture hardly changed in 2 iterations" in caplog.text
    assert "the optimiser made no progress" in caplog.text
    caplog.clear()
    list(Stylizer().job(content_path, style_path, stuck.replace(style_weight=1e9)).steps())
    assert "--style-weight 1e+09 is far above its useful range, about 100 (a hint of the " \
        "painting) to 1e+07 (the painting alone)" in caplog.text
    caplog.clear()
    list(Stylizer().job(content_path, style_path, tiny).steps())
    assert "hardly changed" not in caplog.text
