"""Inputs: style folders, blend weights against the number of styles, alpha."""

import pytest
from PIL import Image

from estilo import ConfigError, ImageError, StyleConfig, Stylizer
from estilo.io.inputs import folder_images, prepare


def test_a_folder_is_one_style_made_of_its_images_sorted(content_path, style_path, tmp_path):
    folder = tmp_path / "styles"
    folder.mkdir()
    for name in ("b.png", "a.jpg", ".hidden.png", "notes.txt"):
        (folder / name).write_bytes(b"")
    Image.open(style_path).save(folder / "b.png")
    Image.open(style_path).convert("RGB").save(folder / "a.jpg")
    assert [p.name for p in folder_images(folder)] == ["a.jpg", "b.png"]
    inputs = prepare(content_path, [folder, style_path], StyleConfig(style_blend=(1, 3)))
    assert [s.name for s in inputs.styles] == ["a.jpg", "b.png", "style.png"]
    assert inputs.groups == (0, 0, 1) and inputs.style_count == 2


def test_an_empty_style_folder_is_an_error(content_path, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no images"):
        prepare(content_path, tmp_path / "empty", StyleConfig())


def test_blend_weights_must_match_the_styles(content_path, style_path):
    with pytest.raises(ConfigError, match="2 weights but 3 styles were given"):
        prepare(content_path, [style_path] * 3, StyleConfig(style_blend=(1, 1)))
    assert prepare(content_path, [style_path] * 2, StyleConfig(style_blend=(3, 7))).style_count == 2


def test_keep_alpha_loads_the_contents_alpha(content_path, style_path, tiny, tmp_path):
    rgba = Image.open(content_path).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    path = tmp_path / "alpha.png"
    rgba.save(path)
    result = Stylizer().run(path, style_path, tiny.replace(keep_alpha=True, iterations=1))
    assert result.image.mode == "RGBA" and result.image.size == (64, 48)
    assert result.image.getchannel("A").getextrema() != (255, 255)
    assert Stylizer().run(path, style_path, tiny.replace(iterations=1)).image.mode == "RGB"
    opaque = Stylizer().run(content_path, style_path, tiny.replace(keep_alpha=True, iterations=1))
    assert opaque.image.mode == "RGB"


def test_a_small_photo_at_the_default_size_says_nothing(tmp_path, style_path, caplog):
    """The default size is not something the user asked for: the photo's own size is used
    without a warning (``make demo``'s first impression); a size asked for is warned about."""
    small = tmp_path / "small.png"
    Image.new("RGB", (120, 90), (90, 140, 200)).save(small)
    assert prepare(small, style_path, StyleConfig()).size == (120, 90)
    assert "larger than the image" not in caplog.text
    assert prepare(small, style_path, StyleConfig(size=200)).size == (120, 90)
    assert "target size 200x150 is larger than the image (120x90)" in caplog.text
