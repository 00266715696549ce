"""Spatial control: mask parsing, per-layer masks, errors, and an end-to-end masked run."""

import io

import pytest
import torch
from PIL import Image, ImageDraw

from estilo import ConfigError, ImageError, Stylizer
from estilo.io.inputs import check_mask
from estilo.mask import colors, layer_masks, region_colors, region_maps
from estilo.vgg import VGG19Features
from estilo.weights import load_weights


def _mask(size=(64, 48), colours=((0, 0, 0), (255, 255, 255)), split=None):
    """Vertical bands of ``colours``, left to right."""
    img = Image.new("RGB", size, colours[0])
    draw = ImageDraw.Draw(img)
    w = size[0]
    for i, c in enumerate(colours[1:], start=1):
        draw.rectangle([split or i * w // len(colours), 0, w, size[1]], fill=c)
    return img


def test_regions_are_ordered_dark_to_light():
    mask = _mask(colours=((250, 250, 250), (200, 30, 30), (10, 10, 10)))
    found = region_colors(mask)
    assert [tuple(int(v) for v in c) for c in found] == [(10, 10, 10), (200, 30, 30), (250, 250, 250)]


def test_jpeg_noise_and_antialiased_edges_are_not_regions():
    mask = _mask(size=(400, 300))
    ImageDraw.Draw(mask).line([(0, 0), (399, 299)], fill=(128, 128, 128), width=1)  # a thin grey edge
    buffer = io.BytesIO()
    mask.save(buffer, "JPEG", quality=70)
    noisy = Image.open(io.BytesIO(buffer.getvalue()))
    assert len(region_colors(noisy)) == 2


def test_region_maps_are_one_hot_and_follow_the_mask():
    maps = region_maps(_mask(size=(128, 96)), (64, 48), 2)
    assert maps.shape == (2, 1, 48, 64)
    assert torch.equal(maps.sum(0), torch.ones(1, 48, 64))
    assert bool((maps[0, 0, :, :32] == 1).all()) and bool((maps[1, 0, :, 32:] == 1).all())


def test_layer_masks_match_vggs_resolutions_and_blend_at_borders():
    weights = load_weights("random", seed=0)
    layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    net = VGG19Features(weights.convs, weights.preprocessing, layers=layers)
    features = net(torch.rand(1, 3, 50, 70))          # odd sizes: pooling floors
    maps = region_maps(_mask(size=(70, 50), split=30), (70, 50), 2)
    pooled = layer_masks(maps, layers, {n: tuple(f.shape) for n, f in features.items()})
    for name in layers:
        assert pooled[name].shape[-2:] == features[name].shape[-2:], name
        assert torch.allclose(pooled[name].sum(0), torch.ones_like(pooled[name][0]))
    row = pooled["conv3_1"][0, 0, 0]                    # 1/4 resolution: 30/4 = 7.5
    assert row[6] == 1 and row[7] == 0.5 and row[8] == 0


def test_mask_errors(content_path):
    with Image.open(content_path) as content:
        content.load()
    with pytest.raises(ConfigError, match="2 colour region"):
        check_mask(_mask(), content.size, 3)
    with pytest.raises(ConfigError, match="3 colour region"):
        check_mask(_mask(colours=((0, 0, 0), (128, 128, 128), (255, 255, 255))), content.size, 2)
    with pytest.raises(ConfigError, match="at least two styles"):
        check_mask(_mask(), content.size, 1)
    with pytest.raises(ImageError, match="aspect ratio"):
        check_mask(_mask(size=(64, 64)), content.size, 2)
    check_mask(_mask(size=(128, 96)), content.size, 2)      # same aspect, other size: fine
    with pytest.raises(ConfigError):
        colors(Image.new("RGB", (64, 48)), 2)


def _mask_file(tmp_path, **kw):
    path = tmp_path / "mask.png"
    _mask(**kw).save(path)
    return path


def test_masked_run_errors_before_any_computation(content_path, style_path, tiny, tmp_path):
    mask = _mask_file(tmp_path)
    with pytest.raises(ConfigError, match="2 colour region"):
        Stylizer().job(content_path, [style_path] * 3, tiny.replace(mask=str(mask)))
    with pytest.raises(ConfigError, match="at least two styles"):
        Stylizer().job(content_path, style_path, tiny.replace(mask=str(mask)))
    with pytest.raises(ImageError):
        Stylizer().job(content_path, [style_path] * 2, tiny.replace(mask=str(tmp_path / "no.png")))


def _flat(path, colour):
    Image.new("RGB", (64, 64), colour).save(path)
    return path


def _stripes(path):
    img = Image.new("RGB", (64, 64), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    for x in range(0, 64, 4):
        draw.rectangle([x, 0, x + 1, 63], fill=(255, 255, 255))
    img.save(path)
    return path


def test_each_style_paints_only_its_region(content_path, tiny, tmp_path):
    """Left: a flat grey style, right: stripes. Starting from noise, the left half must end
    smoother than the right half, also next to the border; swapping the styles swaps it."""
    flat, stripes = _flat(tmp_path / "flat.png", (128, 128, 128)), _stripes(tmp_path / "s.png")
    config = tiny.replace(mask=str(_mask_file(tmp_path)), init="noise", content_weight=0,
                          iterations=40, style_layers=("conv1_1", "conv2_1"), lr=0.05,
                          lr_schedule="constant")

    def roughness(image):
        dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=(0, 1, 2))
        return dx[20:30].mean(), dx[33:43].mean()   # 10 columns each side of the border (32)

    left, right = roughness(Stylizer().run(content_path, [flat, stripes], config).tensor)
    assert left < 0.5 * right
    left, right = roughness(Stylizer().run(content_path, [stripes, flat], config).tensor)
    assert right < 0.5 * left


def test_mask_is_recorded(content_path, style_path, tiny, tmp_path):
    result = Stylizer().run(content_path, [style_path, style_path],
                            tiny.replace(mask=str(_mask_file(tmp_path)), iterations=1))
    assert result.parameters["config"]["mask"].endswith("mask.png")
    assert result.parameters["inputs"]["mask"]["name"] == "mask.png"
