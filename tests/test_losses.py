import pytest
import torch

from estilo.losses import (
    COV_SHRINK,
    MEANCOV_SCALE,
    Objective,
    channel_weights,
    chroma,
    content_loss,
    covariance,
    moments,
    sqrtm,
    statistics,
    tv_loss,
    wasserstein2,
)


def gram(features, norm="chw", mask=None):
    """The engine's (guided) Gram matrix: the statistic of the features' moments."""
    return statistics(moments(features, mask), "gram", norm=norm)[0]


def by_definition(f):
    """The Gram matrix by its definition, F F^T / (C H W)."""
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def from_features(content, styles, **options):
    """An objective whose targets are the moments of whole feature maps."""
    return Objective.from_moments(content, {n: moments(f) for n, f in content.items()},
                                  [{n: moments(f) for n, f in s.items()} for s in styles],
                                  **options)


def test_gram_matrix_hand_computed():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    assert torch.allclose(gram(f), expected)
    assert torch.allclose(gram(f, norm="hw"), expected * 2)


def test_gram_normalisation_makes_it_size_independent_for_a_stationary_pattern():
    tile = torch.rand(1, 8, 4, 4)
    small, big = tile.repeat(1, 1, 2, 2), tile.repeat(1, 1, 8, 8)
    assert torch.allclose(gram(small), gram(big), atol=1e-6)


def test_content_and_style_losses():
    a, b = torch.rand(1, 4, 3, 3), torch.rand(1, 4, 3, 3)
    assert content_loss(a, a) == 0
    assert torch.isclose(content_loss(a, b), ((a - b) ** 2).mean())
    obj = from_features({"s": a}, [{"s": b}], content_weights={}, style_weights={"s": 1.0},
                        feature_norm="none")
    image = torch.rand(1, 3, 4, 4)
    assert obj({"s": b}, image)["style"] == 0
    expected = ((by_definition(a) - by_definition(b)) ** 2).mean()
    assert torch.isclose(obj({"s": a}, image)["style"], expected)


def test_tv_loss():
    assert tv_loss(torch.full((1, 3, 4, 4), 0.3)) == 0
    x = torch.zeros(1, 1, 2, 2)
    x[..., 0, 0] = 1.0  # one bright corner: dx has 1 of 2 nonzero, dy 1 of 2
    assert torch.isclose(tv_loss(x), torch.tensor(0.5 + 0.5))


def test_chroma_is_the_colour_without_the_luminance():
    g = torch.Generator().manual_seed(0)
    grey_texture = torch.rand(1, 1, 8, 8, generator=g).expand(1, 3, 8, 8)
    assert float(chroma(grey_texture).abs().max()) < 1e-6   # grey strokes have no chroma
    assert tv_loss(chroma(grey_texture)) < 1e-12 < tv_loss(grey_texture)
    speckle = torch.rand(1, 3, 8, 8, generator=g)            # coloured pixel noise has
    assert tv_loss(chroma(speckle)) > 0.01


def test_smoothness_adds_the_chroma_total_variation():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 8, 8, generator=g)
    objective = Objective(content_targets={}, style_targets={}, scales={}, content_weights={},
                          style_weights={}, tv_weight=0.5, chroma_tv_weight=3.0)
    expected = 0.5 * tv_loss(image) + 3.0 * tv_loss(chroma(image))
    assert torch.isclose(objective({}, image)["tv"], expected)


@pytest.mark.parametrize("kind", ["gram", "meancov"])
def test_the_style_terms_gradient_is_right(kind):
    g = torch.Generator().manual_seed(0)
    style = {"s": torch.rand(1, 3, 4, 4, dtype=torch.float64, generator=g)}
    obj = from_features(style, [style], content_weights={}, style_weights={"s": 1.0},
                        style_loss=kind)
    f = torch.rand(1, 3, 4, 4, dtype=torch.float64, generator=g, requires_grad=True)
    image = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: obj({"s": x}, image)["style"], (f,))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_moments_in_either_layout_match_the_definition_and_their_gradient(layout):
    # The network hands over channels-last activations; the outer products then work on
    # their N x HW x C view with their own backward, which must agree with F F^T.
    f = torch.rand(2, 5, 3, 4, dtype=torch.float64).contiguous(memory_format=layout)
    flat = f.reshape(2, 5, 12)
    assert torch.allclose(moments(f).outer, flat @ flat.transpose(1, 2))
    weights = torch.rand(2, 5, 5, dtype=torch.float64)
    x = f.clone().requires_grad_(True)
    (moments(x).outer * weights).sum().backward()
    expected = ((weights + weights.transpose(1, 2)) @ flat).reshape(2, 5, 3, 4)
    assert torch.allclose(x.grad, expected)
    assert x.grad.is_contiguous(memory_format=layout)
    assert torch.autograd.gradcheck(lambda t: moments(t).outer, (f.clone().requires_grad_(True),))


def test_a_statistics_scale_divides_the_features():
    f, scale = torch.rand(1, 4, 3, 3), torch.tensor(2.5)
    for kind in ("gram", "meancov"):
        for got, expected in zip(statistics(moments(f), kind, scale=scale),
                                 statistics(moments(f / scale), kind)):
            assert torch.allclose(got, expected)


def _objective(content, style, norm="rms"):
    return from_features(content, [style], content_weights={"c": 1.0},
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


def _rms(*features):
    """The per-layer normaliser by its definition: the RMS of the activations of all images."""
    return torch.stack([f.pow(2).mean() for f in features]).mean().sqrt()


def test_objective_equals_the_pure_functions():
    content, style, current = _features(0), _features(1), _features(2)
    image = torch.rand(1, 3, 8, 8)
    obj = from_features(content, [style], content_weights={"c": 2.0},
                        style_weights={"s": 3.0}, tv_weight=0.5)
    s_c = _rms(content["c"], style["c"]) if "c" in style else _rms(content["c"])
    s_s = _rms(content["s"], style["s"])
    terms = obj(current, image)
    assert torch.isclose(terms["content"], 2.0 * content_loss(current["c"] / s_c, content["c"] / s_c))
    expected = ((by_definition(current["s"] / s_s) - by_definition(style["s"] / s_s)) ** 2).mean()
    assert torch.isclose(terms["style"], 3.0 * expected)
    assert torch.isclose(terms["tv"], 0.5 * tv_loss(image))


def test_objective_is_zero_at_its_targets():
    content = _features(0)
    terms = _objective(content, content)(content, torch.zeros(1, 3, 4, 4))
    assert terms["content"] == 0 and terms["style"] == 0 and terms["tv"] == 0


# --- guided Gram matrices, meancov, layer weighting, blends -----------------------------------

def test_guided_gram_with_a_full_mask_is_the_gram_and_a_region_sees_only_itself():
    f = torch.rand(1, 4, 6, 8)
    assert torch.allclose(gram(f, mask=torch.ones(1, 1, 6, 8)), gram(f))
    left = torch.zeros(1, 1, 6, 8)
    left[..., :4] = 1.0
    assert torch.allclose(gram(f, mask=left), gram(f[..., :4]), atol=1e-6)
    assert torch.allclose(gram(f, norm="hw", mask=left), gram(f[..., :4], norm="hw"), atol=1e-6)


def test_guided_style_term_gradient_stays_inside_its_region_up_to_the_border():
    f = torch.rand(1, 4, 6, 8, requires_grad=True)
    mask = torch.zeros(1, 1, 6, 8)
    mask[..., :3] = 1.0
    ((gram(f, mask=mask) - gram(torch.rand(1, 4, 5, 5))) ** 2).mean().backward()
    per_column = f.grad.abs().sum(dim=(0, 1, 2))
    assert (per_column[:3] > 0).all()          # up to the last column of the region ...
    assert (per_column[3:] == 0).all()         # ... and nothing from the first column outside


def test_moments_match_the_definition_and_weight_by_the_roots():
    f = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    mean, second = statistics(moments(f), "meancov")
    flat = f.reshape(2, 3, 20)
    assert torch.allclose(mean, flat.mean(-1))
    assert torch.allclose(second, flat @ flat.transpose(1, 2) / 20)
    roots = torch.zeros(2, 1, 4, 5, dtype=torch.float64)
    roots[..., 1:3, :] = 1.0
    assert torch.allclose(statistics(moments(f, roots), "meancov")[0],
                          f[..., 1:3, :].reshape(2, 3, -1).mean(-1))


def test_wasserstein2_known_values():
    # Diagonal Gaussians: |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2
    m1, m2 = torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 1.0]])
    c1, c2 = torch.diag(torch.tensor([4.0, 1.0]))[None], torch.diag(torch.tensor([1.0, 9.0]))[None]
    expected = 4.0 + (2 - 1) ** 2 + (1 - 3) ** 2
    assert torch.allclose(wasserstein2(m1, c1, m2, c2), torch.tensor([expected]), atol=1e-4)
    assert torch.allclose(wasserstein2(m1, c1, m1, c1), torch.zeros(1), atol=1e-4)


def test_sqrtm_squares_back_and_its_gradient_is_right():
    b = torch.rand(4, 4, dtype=torch.float64)
    a = b @ b.T + torch.eye(4, dtype=torch.float64)
    assert torch.allclose(sqrtm(a) @ sqrtm(a), a)
    x = torch.rand(4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: sqrtm(m @ m.T + torch.eye(4, dtype=m.dtype)), (x,))


def test_channel_weights_are_one_over_c_squared_averaging_one():
    w = channel_weights([64, 128, 256])
    assert sum(w) == pytest.approx(3.0)
    assert w[0] / w[1] == pytest.approx(4.0) and w[1] / w[2] == pytest.approx(4.0)
    assert channel_weights([512, 512]) == pytest.approx((1.0, 1.0))


def test_objective_blends_style_targets_with_normalised_weights():
    content, a, b = _features(0), _features(1), _features(2)
    obj = from_features(content, [a, b], content_weights={"c": 1.0},
                        style_weights={"s": 1.0}, style_blend=[3, 7], feature_norm="none")
    expected = 0.3 * by_definition(a["s"]) + 0.7 * by_definition(b["s"])
    assert torch.allclose(obj.style_targets["s"][0][0], expected)


def test_a_group_of_images_shares_its_styles_weight():
    content, a, b, c = _features(0), _features(1), _features(2), _features(3)
    obj = from_features(content, [a, b, c], content_weights={"c": 1.0},
                        style_weights={"s": 1.0}, style_blend=[0.5, 0.5],
                        groups=[0, 0, 1], feature_norm="none")
    expected = (0.25 * by_definition(a["s"]) + 0.25 * by_definition(b["s"])
                + 0.5 * by_definition(c["s"]))
    assert torch.allclose(obj.style_targets["s"][0][0], expected)


def _mean_and_cov(f):
    """A feature map's mean (N x C) and covariance (N x C x C) over positions, by definition."""
    flat = f.reshape(f.shape[0], f.shape[1], -1)
    centred = flat - flat.mean(-1, keepdim=True)
    return flat.mean(-1), centred @ centred.transpose(1, 2) / flat.shape[-1]


def test_meancov_objective_is_the_wasserstein_distance_and_zero_at_target():
    content, style = _features(0), _features(1)
    obj = from_features(content, [style], content_weights={"c": 1.0},
                        style_weights={"s": 2.0}, style_loss="meancov")
    s = obj.scales["s"]
    mean, cov = _mean_and_cov(style["s"] / s)
    shrink = COV_SHRINK * float(cov.diagonal(dim1=-2, dim2=-1).mean())  # of the style's variance
    eye = torch.eye(cov.shape[-1])
    current = _features(2)
    own_mean, own_cov = _mean_and_cov(current["s"] / s)
    expected = 2.0 * MEANCOV_SCALE * wasserstein2(own_mean, own_cov + shrink * eye, mean,
                                                  cov + shrink * eye) / cov.shape[-1]
    assert torch.isclose(obj(current, torch.rand(1, 3, 8, 8))["style"], expected[0], rtol=1e-4)
    assert float(obj(style, torch.rand(1, 3, 8, 8))["style"]) < 1e-6
    assert torch.allclose(covariance(*statistics(moments(style["s"] / s), "meancov")), cov,
                          atol=1e-6)


def test_masked_objective_is_zero_when_each_region_shows_its_own_style():
    p, q = torch.rand(1, 4, 6, 4), torch.rand(1, 4, 6, 4) * 3
    current = {"s": torch.cat([p, q], dim=-1)}      # left: style 0's pattern, right: style 1's
    mask = torch.zeros(2, 1, 6, 8)
    mask[0, ..., :4], mask[1, ..., 4:] = 1.0, 1.0
    obj = from_features({"s": current["s"]}, [{"s": p}, {"s": q}], content_weights={},
                        style_weights={"s": 1.0}, feature_norm="none", masks={"s": mask})
    assert float(obj(current, torch.rand(1, 3, 8, 8))["style"]) < 1e-12
    swapped = from_features({"s": current["s"]}, [{"s": q}, {"s": p}],
                            content_weights={}, style_weights={"s": 1.0},
                            feature_norm="none", masks={"s": mask})
    assert float(swapped(current, torch.rand(1, 3, 8, 8))["style"]) > 1e-3


def _strength_objective(kind, k=1.0, strength=2.0, layers=("s", "t")):
    content, style = _features(0), _features(1)
    content["t"], style["t"] = content["s"][:, :2] * 3, style["s"][:, :2] ** 2  # a 2nd layer
    scaled = [{n: f * k for n, f in fs.items()} for fs in (content, style)]
    obj = from_features(scaled[0], [scaled[1]], content_weights={"c": 1.0},
                        style_weights={n: 1.0 + i for i, n in enumerate(layers)},
                        style_loss=kind, feature_norm="none")
    obj.weigh_style_by_strength(strength)
    return obj, scaled


@pytest.mark.parametrize("kind", ["gram", "meancov"])
def test_strength_makes_each_style_layer_a_relative_error(kind):
    obj, (content, style) = _strength_objective(kind)
    blank = {n: torch.zeros_like(f) for n, f in content.items()}
    image = torch.zeros(1, 3, 4, 4)
    assert float(obj(blank, image)["style"]) == pytest.approx(2.0, rel=1e-4)  # = strength
    assert float(obj(style, image)["style"]) < 1e-5                           # zero at the style
    assert sum(obj.style_weights.values()) > 0
    # the layers' relative weights (1 and 2) are kept: layer t counts twice, blank or not
    per_layer = {n: obj.style_weights[n] * float(obj.layer_style(n, moments(blank[n])))
                 for n in ("s", "t")}
    assert per_layer["t"] == pytest.approx(2 * per_layer["s"], rel=1e-4)


@pytest.mark.parametrize("kind", ["gram", "meancov"])
def test_strength_means_the_same_whatever_the_activation_scale(kind):
    # Without any feature normalisation, a raw weight's meaning moves with the 4th power of
    # the activations' scale (Gram); a strength does not.
    terms = []
    for k in (1.0, 255.0):
        obj, _ = _strength_objective(kind, k=k)
        current = {n: f * k for n, f in _features(2).items()}
        current["t"] = current["s"][:, :2] * 2
        terms.append(float(obj(current, torch.zeros(1, 3, 4, 4))["style"]))
    assert terms[0] == pytest.approx(terms[1], rel=1e-3)
