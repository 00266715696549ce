import itertools

import torch

from estilo.pyramid import Level, levels, scaled, style_side, upsample


def test_single_level_when_small_or_off():
    assert levels((200, 150), iterations=10) == [Level((200, 150), 10)]
    assert levels((1024, 768), iterations=10, scales=1) == [Level((1024, 768), 10)]


def test_automatic_levels_double_from_start_size():
    plan = levels((1024, 768), iterations=50, start_size=256, scale_iterations=20)
    assert [lv.size for lv in plan] == [(256, 192), (512, 384), (1024, 768)]
    assert [lv.iterations for lv in plan] == [20, 20, 50]


def test_explicit_level_count_keeps_aspect_and_grows():
    plan = levels((900, 300), iterations=5, scales=3, scale_iterations=7)
    sizes = [lv.size for lv in plan]
    assert sizes[-1] == (900, 300)
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(sizes))
    assert all(abs(w / h - 3) < 0.05 for w, h in sizes)


def test_zero_scale_iterations_drops_coarse_levels():
    assert levels((1024, 768), iterations=5, scale_iterations=0) == [Level((1024, 768), 5)]


def test_scaled_and_style_side():
    assert scaled((400, 300), 200) == (200, 150)
    # style follows the level's scale, capped at its own size
    assert style_side((1000, 500), (256, 192), (512, 384), None) == (256, 128)
    assert style_side((300, 150), (512, 384), (512, 384), 1000) == (300, 150)
    assert style_side((1000, 500), (512, 384), (512, 384), 400) == (400, 200)


def test_upsample_size_and_range():
    x = torch.rand(1, 3, 8, 10)
    y = upsample(x, (20, 16))
    assert y.shape == (1, 3, 16, 20)
    assert y.min() >= 0 and y.max() <= 1
    assert torch.equal(upsample(x, (10, 8)), x)


def test_style_scale_multiplies_the_style_size_within_limits():
    assert style_side((1000, 500), (512, 384), (512, 384), None, 0.5) == (256, 128)
    assert style_side((1000, 500), (512, 384), (512, 384), 400, 2.0) == (800, 400)
    assert style_side((1000, 500), (256, 192), (512, 384), None, 0.5) == (128, 64)
    assert style_side((300, 150), (512, 384), (512, 384), None, 4.0) == (300, 150)   # own size
    assert style_side((1000, 500), (64, 48), (512, 384), None, 0.1) == (64, 32)      # short >= 32
