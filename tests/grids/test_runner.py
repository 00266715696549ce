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
