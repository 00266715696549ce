"""The bundled example images, from the installed package."""

from PIL import Image

from estilo.demo import EXAMPLE_NAMES, example_folder, example_paths


def test_the_example_photo_and_painting_are_package_data():
    content, style = example_paths()
    assert (content.name, style.name) == EXAMPLE_NAMES
    assert content.parent == style.parent == example_folder()
    for path in (content, style):
        with Image.open(path) as image:
            assert image.format == "JPEG" and min(image.size) >= 64
