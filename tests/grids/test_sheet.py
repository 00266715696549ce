"""Contact-sheet layout and drawing, CSV and Markdown writers."""

import csv

from PIL import Image

from estilo.grids import sheet


def test_layout_rows_of_cells():
    size, corners = sheet.layout(11, columns=4, cell=(100, 80), margin=10)
    assert size == (10 + 4 * 110, 10 + 3 * 90)
    assert corners[:5] == [(10, 10), (120, 10), (230, 10), (340, 10), (10, 100)]
    assert corners[-1] == (230, 190) and len(corners) == 11
    assert sheet.layout(0, columns=3, cell=(10, 10), margin=2) == ((14, 2), [])
    assert sheet.layout(2, columns=5, cell=(10, 10), margin=2)[0] == (26, 14)  # clamped to 2


def test_columns_are_about_square():
    assert [sheet.columns_for(n) for n in (1, 2, 4, 5, 11)] == [1, 2, 2, 3, 4]


def _box(image, colour):
    pixels = [(x, y) for y in range(image.height) for x in range(image.width)
              if image.getpixel((x, y)) == colour]
    xs, ys = [p[0] for p in pixels], [p[1] for p in pixels]
    return min(xs), min(ys), max(xs) + 1 - min(xs), max(ys) + 1 - min(ys)


def test_tiles_of_different_sizes_are_shown_at_one_size():
    small = Image.new("RGB", (224, 168), (255, 0, 0))
    large = Image.new("RGB", (512, 384), (0, 0, 255))
    square = Image.new("RGB", (30, 30), (0, 255, 0))
    image = sheet.contact_sheet([("a", small), ("b", large), ("c", square)], tile=60, columns=3)
    assert _box(image, (255, 0, 0))[2:] == (60, 45)
    assert _box(image, (0, 0, 255))[2:] == (60, 45)
    assert _box(image, (0, 255, 0))[2:] == (60, 60)
    assert image.width == sheet.MARGIN + 3 * (60 + sheet.MARGIN)


def test_captions_wrap_to_the_tile_width():
    face = sheet.font()
    lines = sheet.wrap("Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512", 120, face)
    assert len(lines) > 1 and all(face.getlength(line) <= 120 for line in lines)
    assert " ".join(lines) == "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512"
    long = sheet.wrap("x" * 200, 50, face)
    assert len(long) == sheet.MAX_LINES and long[-1].endswith("…")


def test_csv_and_markdown(tmp_path):
    path = sheet.write_csv(tmp_path / "t.csv", ["a", "b"], [[1, "x,y"], [2, "z"]])
    with open(path, newline="") as fh:
        assert list(csv.reader(fh)) == [["a", "b"], ["1", "x,y"], ["2", "z"]]
    assert sheet.markdown(["a", "b"], [[1, "p|q"]]) == "| a | b |\n|---|---|\n| 1 | p\\|q |\n"
    md = sheet.write_markdown(tmp_path / "t.md", "T", ["para"], ["a"], [[1]]).read_text()
    assert md.startswith("# T\n\npara\n\n| a |")
