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


def test_the_example_clip_is_a_short_camera_move_with_sound():
    from clips import streams
    from estilo.demo import example_clip
    from estilo.video import open_clip

    clip = open_clip(example_clip(), max_frames=100)
    assert clip.path.parent == example_folder()
    assert clip.frames == 60 and clip.fps == 24 and clip.size == (240, 160) and clip.audio
    assert streams(clip.path)["audio"][0] == "aac"


def test_every_bundled_image_has_its_origin_and_licence():
    """The report table's paintings too (public domain: painter, title, year)."""
    folder = example_folder()
    licences = (folder / "LICENSES.md").read_text(encoding="utf-8")
    images = sorted(p.name for p in folder.iterdir() if p.suffix == ".jpg")
    assert {"starry_night.jpg", "shipwreck.jpg", "the_scream.jpg"} <= set(images)
    assert [name for name in images if f"`{name}`" not in licences] == []
    assert "The Starry Night* (1889)" in licences and "The Shipwreck* (1805)" in licences
    assert "Edvard Munch, *The Scream* (1893)" in licences


def test_the_demo_paints_a_real_painting_that_the_web_app_also_offers():
    from estilo.demo import demo_paths
    from estilo.web.styles import PAINTINGS

    content, style = demo_paths()
    assert content == example_paths()[0] and style.name == "starry_night.jpg"
    assert style in [p.path for p in PAINTINGS]
    licences = (example_folder() / "LICENSES.md").read_text(encoding="utf-8")
    for painting in PAINTINGS:  # the page's credits match the licence file's
        assert f"{painting.painter}, *{painting.title}* ({painting.year})" in licences
        with Image.open(painting.path) as image:
            assert image.format == "JPEG" and max(image.size) == 640
