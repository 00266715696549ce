"""Tiled losses and gradients equal the untiled ones (estilo.tiling)."""

import pytest
import torch
import torch.nn.functional as F

from estilo import Stylizer, mask
from estilo.losses import Objective
from estilo.tiling import GRID, halo_of, image_moments, loss, tiles
from estilo.vgg import TORCHVISION, VGG19Features
from estilo.weights import load_weights

STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT = ("relu4_2",)
SIZE = (184, 136)   # (w, h): no multiple of the tile or of 16


@pytest.fixture(scope="module")
def convs():
    return load_weights("random", seed=0).convs


def test_halo_is_the_error_front_of_the_deepest_layer():
    assert halo_of(STYLE) == 80
    assert halo_of(("relu1_1",)) == GRID
    assert halo_of(("relu5_4",)) > halo_of(STYLE)


def test_tiles_cover_the_image_once_with_origins_on_the_grid():
    layout = tiles((200, 150), 64, 80)
    covered = torch.zeros(150, 200)
    for t in layout:
        top, bottom, left, right = t.interior
        covered[top:bottom, left:right] += 1
        assert t.crop[0] % GRID == 0 and t.crop[2] % GRID == 0
        assert t.crop[0] == max(0, top - 80) and t.crop[3] == min(200, right + 80)
    assert bool((covered == 1).all())
    assert len(layout) == 4 * 3


def _regions(size):
    w, h = size
    left = (torch.arange(w).view(1, w) < w * 0.4).float().expand(h, w)
    return torch.stack([left, 1 - left]).unsqueeze(1)   # 2 x 1 x H x W


@pytest.mark.parametrize(("pooling", "kind"), [("max", "gram"), ("avg", "meancov")])
def test_tiled_gradient_equals_untiled(convs, pooling, kind):
    torch.manual_seed(1)
    net = VGG19Features(convs, TORCHVISION, layers=STYLE + CONTENT, pooling=pooling)
    content = torch.rand(1, 3, SIZE[1], SIZE[0])
    styles = [torch.rand(1, 3, 150, 170), torch.rand(1, 3, 120, 140)]
    image = (0.5 * content + 0.5 * torch.rand_like(content))
    features_of = net.forward
    # the targets of the image whole: one tile
    whole_moments, whole = image_moments(features_of, content, STYLE + CONTENT, tile=None,
                                         keep=CONTENT)
    style_features = [image_moments(features_of, s, STYLE + CONTENT, tile=None)[0]
                      for s in styles]
    shapes = {n: (1, whole_moments[n].outer.shape[-1], *net(content)[n].shape[-2:])
              for n in STYLE}
    masks = mask.layer_masks(_regions(SIZE), STYLE, shapes)
    options = {"content_weights": {"relu4_2": 1.0}, "style_weights": dict.fromkeys(STYLE, 1.0),
               "tv_weight": 0.5, "chroma_tv_weight": 2.0, "style_loss": kind, "masks": masks}
    plain = Objective.from_moments(whole, whole_moments, style_features, **options)
    plain.weigh_style_by_strength(10.0)
    halo, tile = halo_of(STYLE + CONTENT), 64
    # the targets tile by tile too (content and styles larger than a tile)
    content_moments, kept = image_moments(features_of, content, STYLE + CONTENT, tile=tile,
                                          halo=halo, keep=CONTENT)
    style_moments = [image_moments(features_of, s, STYLE + CONTENT, tile=tile, halo=halo)[0]
                     for s in styles]
    assert torch.allclose(kept["relu4_2"], whole["relu4_2"], rtol=1e-4, atol=1e-5)
    tiled = Objective.from_moments(kept, content_moments, style_moments, **options)
    tiled.weigh_style_by_strength(10.0)

    x = image.clone().requires_grad_(True)
    terms = plain(net(x), x)
    expected = sum(terms.values())
    (expected_grad,) = torch.autograd.grad(expected, x)

    y = image.clone().requires_grad_(True)
    total, recorded = loss(features_of, tiled, y, tile=tile, halo=halo)
    total.backward()
    assert len(tiles(SIZE, tile, halo)) == 9
    assert float(total.detach()) == pytest.approx(float(expected.detach()), rel=1e-4)
    for name in ("content", "style", "tv"):
        assert float(recorded[name]) == pytest.approx(float(terms[name].detach()), rel=1e-4)
    cosine = F.cosine_similarity(y.grad.flatten(), expected_grad.flatten(), dim=0)
    assert float(cosine) >= 0.9999
    assert float(y.grad.norm()) == pytest.approx(float(expected_grad.norm()), rel=1e-3)


def test_a_crop_without_enough_halo_is_not_exact(convs):
    """The halo is the least that works: one grid step less changes relu5_1 at tile edges."""
    net = VGG19Features(convs, TORCHVISION, layers=STYLE)
    image = torch.rand(1, 3, SIZE[1], SIZE[0])
    with torch.no_grad():
        whole = net(image)["relu5_1"]
        _, short = image_moments(net.forward, image, STYLE, tile=64, halo=halo_of(STYLE) - GRID,
                                 keep=("relu5_1",))
        _, exact = image_moments(net.forward, image, STYLE, tile=64, halo=halo_of(STYLE),
                                 keep=("relu5_1",))
    assert torch.equal(exact["relu5_1"], whole)
    assert float((short["relu5_1"] - whole).abs().max()) > 1e-3 * float(whole.abs().max())


def test_a_tiled_run_paints_what_an_untiled_run_paints(content_path, style_path, tiny):
    """Through the whole loop (targets tile by tile, L-BFGS steps): the same picture."""
    config = tiny.replace(size=128, upscale=True, iterations=3, tv_weight=1.0, precision="float32")
    plain = Stylizer().run(content_path, style_path, config)
    tiled_job = Stylizer().job(content_path, style_path, config.replace(tile=64))
    assert tiled_job.memory_plan().tile == 64
    tiled = tiled_job.run()
    assert [h["loss"] for h in tiled.history] == pytest.approx(
        [h["loss"] for h in plain.history], rel=1e-3)
    assert float((tiled.tensor - plain.tensor).abs().max()) < 1e-3


def test_extra_terms_are_added_to_a_tiled_loss(content_path, style_path, tiny):
    """Job.extra_loss (video's temporal term) works on tiled levels too."""
    config = tiny.replace(size=128, upscale=True, iterations=1, precision="float32", tile=64)

    def extra(image):
        return {"temporal": 5.0 * image.square().mean()}

    plain = Stylizer().job(content_path, style_path, config.replace(tile=None),
                           extra_loss=extra).run()
    tiled = Stylizer().job(content_path, style_path, config, extra_loss=extra).run()
    assert set(tiled.history[0]["terms"]) == {"content", "style", "tv", "temporal"}
    assert tiled.history[0]["loss"] == pytest.approx(plain.history[0]["loss"], rel=1e-4)
    assert tiled.history[0]["terms"]["temporal"] > 0


def test_a_level_whose_plan_takes_adam_refines_at_adams_fallback_rate(content_path, style_path,
                                                                      tiny, monkeypatch):
    """A memory plan that gives the output's level Adam instead of L-BFGS: that level runs
    Adam at FALLBACK_LR (a refinement of the level below), the coarse one L-BFGS at its rate."""
    from estilo import memory, transfer

    real = memory.level_plans

    def leaner(*args, **kwargs):
        plans = real(*args, **kwargs)
        return plans[:-1] + [memory.Plan(False, 64, "adam", 0, plans[-1].peak)]

    monkeypatch.setattr(memory, "level_plans", leaner)
    config = tiny.replace(size=128, upscale=True, scales=2, start_size=64, iterations=2,
                          scale_iterations=2, optimizer="lbfgs", precision="float32")
    steps = list(Stylizer().job(content_path, style_path, config).steps())
    coarse = [s for s in steps if s.level == 0]
    fine = [s for s in steps if s.level == 1]
    assert coarse and fine
    assert all(s.lr == 1.0 for s in coarse)                 # L-BFGS's rate
    assert fine[0].lr == pytest.approx(transfer.FALLBACK_LR["adam"])
