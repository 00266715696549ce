import pytest
import torch

from estilo.losses import (Objective, blend_grams, content_loss, gram_matrix, layer_scale,
                           style_loss, tv_loss)


def test_gram_matrix_hand_computed():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(f), expected)
    assert torch.allclose(gram_matrix(f, norm="hw"), expected * 2)


def test_gram_normalisation_makes_it_size_independent_for_a_stationary_pattern():
    tile = torch.rand(1, 8, 4, 4)
    small, big = tile.repeat(1, 1, 2, 2), tile.repeat(1, 1, 8, 8)
    assert torch.allclose(gram_matrix(small), gram_matrix(big), atol=1e-6)


def test_content_and_style_losses():
    a, b = torch.rand(1, 4, 3, 3), torch.rand(1, 4, 3, 3)
    assert content_loss(a, a) == 0
    assert torch.isclose(content_loss(a, b), ((a - b) ** 2).mean())
    assert style_loss(a, gram_matrix(a)) == 0
    assert torch.isclose(style_loss(a, gram_matrix(b)), ((gram_matrix(a) - gram_matrix(b)) ** 2).mean())


def test_tv_loss():
    assert tv_loss(torch.full((1, 3, 4, 4), 0.3)) == 0
    x = torch.zeros(1, 1, 2, 2)
    x[..., 0, 0] = 1.0  # one bright corner: dx has 1 of 2 nonzero, dy 1 of 2
    assert torch.isclose(tv_loss(x), torch.tensor(0.5 + 0.5))


def test_style_loss_gradcheck():
    f = torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    target = gram_matrix(torch.rand(1, 3, 2, 2, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda x: style_loss(x, target), (f,))


def test_blend_grams_normalises_weights():
    a, b = torch.ones(1, 2, 2), torch.zeros(1, 2, 2)
    assert torch.allclose(blend_grams([a, b], [3, 7]), torch.full((1, 2, 2), 0.3))


def _objective(content, style, norm="rms"):
    return Objective.from_features(content, [style], content_weights={"c": 1.0},
                                   style_weights={"c": 1e5, "s": 1e5}, feature_norm=norm)


def _features(seed):
    g = torch.Generator().manual_seed(seed)
    return {"c": torch.rand(1, 8, 6, 6, generator=g), "s": torch.rand(1, 4, 12, 12, generator=g)}


@pytest.mark.parametrize("k", [1 / 255, 4.4, 255.0])
def test_rms_normalisation_makes_losses_invariant_to_activation_scale(k):
    content, style, current = _features(0), _features(1), _features(2)
    image = torch.rand(1, 3, 8, 8)
    base = _objective(content, style)(current, image)
    scaled = _objective(*({n: t * k for n, t in f.items()} for f in (content, style)))(
        {n: t * k for n, t in current.items()}, image)
    for term in ("content", "style"):
        assert torch.isclose(base[term], scaled[term], rtol=1e-4), term


def test_without_normalisation_style_grows_with_fourth_power():
    content, style, current = _features(0), _features(1), _features(2)
    image = torch.rand(1, 3, 8, 8)
    base = _objective(content, style, "none")(current, image)
    k = 10.0
    scaled = _objective(*({n: t * k for n, t in f.items()} for f in (content, style)), "none")(
        {n: t * k for n, t in current.items()}, image)
    assert torch.isclose(scaled["content"], base["content"] * k**2, rtol=1e-4)
    assert torch.isclose(scaled["style"], base["style"] * k**4, rtol=1e-4)


def test_objective_equals_the_pure_functions():
    content, style, current = _features(0), _features(1), _features(2)
    image = torch.rand(1, 3, 8, 8)
    obj = Objective.from_features(content, [style], content_weights={"c": 2.0},
                                  style_weights={"s": 3.0}, tv_weight=0.5)
    s_c = layer_scale(content["c"], style["c"]) if "c" in style else layer_scale(content["c"])
    s_s = layer_scale(content["s"], style["s"])
    terms = obj(current, image)
    assert torch.isclose(terms["content"], 2.0 * content_loss(current["c"] / s_c, content["c"] / s_c))
    assert torch.isclose(terms["style"], 3.0 * style_loss(current["s"] / s_s, gram_matrix(style["s"] / s_s)))
    assert torch.isclose(terms["tv"], 0.5 * tv_loss(image))


def test_objective_is_zero_at_its_targets():
    content = _features(0)
    terms = _objective(content, content)(content, torch.zeros(1, 3, 4, 4))
    assert terms["content"] == 0 and terms["style"] == 0 and terms["tv"] == 0
