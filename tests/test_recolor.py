"""Colour preservation: luminance transfer, colour matching, the recolor command."""

from PIL import Image

from estilo import cli
from estilo.recolor import recolor_image


def test_recolor_image_api_resizes_the_content():
    image = Image.new("RGB", (40, 30), (200, 40, 40))
    content = Image.new("RGB", (80, 60), (40, 40, 200))
    out = recolor_image(image, content, "match")
    assert out.size == (40, 30) and out.getpixel((0, 0))[2] > 150


def test_recolor_warns_about_a_content_of_another_shape(content_path, style_path, tmp_path,
                                                        caplog):
    out, new, square = tmp_path / "out.png", tmp_path / "new.png", tmp_path / "square.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), "--weights", "random",
                     "--size", "48", "--iterations", "1", "--scales", "1", "-q"]) == 0
    Image.open(content_path).resize((48, 48)).save(square)
    assert cli.main(["recolor", str(out), str(content_path), "-o", str(new)]) == 0
    assert "another shape" not in caplog.text  # the photo it was made from: no warning
    assert cli.main(["recolor", str(out), str(square), "-o", str(new), "--overwrite"]) == 0
    assert "the content is 48x48 but the image is 48x36, another shape" in caplog.text
