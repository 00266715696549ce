"""Running a grid: the fixed loss measure, stopping from the consumer, the Python API."""

import pytest
from PIL import Image

import estilo
from estilo.config import StyleConfig
from estilo.grids import spec
from estilo.grids.runner import Evaluator, Grid
from imaging import read_csv

TINY = {"weights": "random", "iterations": 2, "scales": 1, "device": "cpu",
        "style_layers": "1,3", "content_layers": "3", "size": 48}


def test_losses_are_one_fixed_measure(content_path, style_path, tmp_path):
    """Rows with different objectives are measured with the same network and layers."""
    estilo.grid(content_path, style_path, tmp_path / "s.png", params={"content_layers": ["1", "3"]},
                **{**TINY, "style_layers": "1,3"})
    job = estilo.Stylizer().job(content_path, style_path, StyleConfig(weights="random", size=48))
    evaluator = Evaluator(job, size=48, weights="random", stylizer=estilo.Stylizer())
    for row in read_csv(tmp_path / "s.csv"):
        with Image.open(tmp_path / row["file"]) as im:
            measured = evaluator(im.convert("RGB"))
        assert float(row["content_loss"]) == pytest.approx(measured["content"], rel=1e-5)
        assert float(row["style_loss"]) == pytest.approx(measured["style"], rel=1e-5)
    with Image.open(content_path) as im:
        assert evaluator(im.convert("RGB"))["content"] == pytest.approx(0.0, abs=1e-6)


def test_ctrl_c_in_the_consumer_still_writes(content_path, style_path, tmp_path):
    runner = Grid(content_path, style_path, spec.spec_from(params={"seed": [1, 2]}),
                        tmp_path / "g.png", overrides=TINY)
    steps = runner.steps()
    for item in steps:
        if item.row.index == 2:
            break
    steps.close()
    assert [r["index"] for r in read_csv(tmp_path / "g.csv")] == ["1"]


def test_python_api(content_path, style_path, tmp_path):
    result = estilo.grid(content_path, style_path, tmp_path / "api.png",
                         params={"style_weight": [1e3, 1e5]}, weights="random", size=48,
                         iterations=2, scales=1, device="cpu", style_layers="1,3",
                         content_layers="3", tile_size=40)
    assert [r.row.label for r in result.rows] == ["style_weight=1000", "style_weight=1e5"]
    assert result.sheet.exists() and result.csv.exists() and result.markdown.exists()
    assert all(r.status == "done" and r.iterations == 2 for r in result.rows)


def test_rows_made_identical_by_the_options_for_every_row_run_once(content_path, style_path,
                                                                  tmp_path, caplog):
    """The report's rows 5 and 6 differ only in size: a size for every row makes them one run."""
    rows = [{"size": 40, "seed": 1}, {"size": 56, "seed": 1}, {"size": 40, "seed": 2}]
    result = estilo.grid(content_path, style_path, tmp_path / "d.png", rows=rows,
                         **{**TINY, "size": 48})
    assert [r.row.index for r in result.rows] == [1, 3]   # row 3 keeps its number
    assert "rows 1 and 2 are the same run once --size applies to every row: row 2 is left " \
        "out" in caplog.text
    labels = [r.row.label for r in result.rows]
    assert len(set(labels)) == len(labels)


def test_keep_alpha_rows_are_transparent(style_path, tmp_path):
    """A transparent content with keep_alpha: every row image is RGBA (no internal error)."""
    content = tmp_path / "alpha.png"
    picture = Image.new("RGBA", (64, 48), (200, 120, 40, 255))
    picture.paste((0, 0, 0, 0), (0, 0, 20, 48))
    picture.save(content)
    result = estilo.grid(content, style_path, tmp_path / "ka.png",
                         params={"pooling": ["max", "avg"]}, keep_alpha=True, **TINY)
    assert [r.status for r in result.rows] == ["done", "done"]
    for row in result.rows:
        with Image.open(row.row.path) as image:
            assert image.mode == "RGBA" and image.getpixel((2, 20))[3] == 0
    with Image.open(result.sheet) as sheet:   # shown on the sheet's white
        assert sheet.mode == "RGB"
