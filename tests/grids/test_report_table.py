"""The report-table preset: every option that decides its pictures is pinned (no default of
estilo's reaches it), its optimiser is the report's, and row 9 takes the second style."""

import logging

import pytest

from estilo.config import FIELDS, PIXEL_SCALE, ConfigError, StyleConfig
from estilo.grids import spec as grids
from estilo.grids.runner import Evaluator, Grid
from estilo.transfer import Stylizer
from imaging import read_csv

FREE = {"device", "checkpointing", "max_memory", "tile"}
"""Where a row runs, whether VGG segments are recomputed, whether it runs in tiles (exact)
and under what memory cap (it could only replace the rows' Adam by SGD at sizes far above
the table's): not what is computed."""

OTHER_DEFAULTS = {
    "size": 300, "style_size": 200, "style_scale": 2.0, "upscale": True, "background": "black",
    "content_layers": ("relu3_1",), "style_layers": ("relu1_2", "relu2_2"),
    "content_layer_weights": (3.0,), "style_layer_weights": (2.0, 0.5),
    "content_weight": 7.0, "strength": 3.0, "style_weight": 42.0, "tv_weight": 1e-3,
    "chroma_tv_weight": 5.0, "feature_norm": "none", "gram_norm": "hw", "style_loss": "meancov",
    "layer_weighting": "channels", "style_blend": (1.0, 3.0), "preserve_color": "match",
    "mask": "mask.png", "keep_alpha": True, "weights": "torchvision", "pooling": "avg",
    "init": "style", "noise_ratio": 0.9, "noise": "colour", "palette": "photo",
    "seed": 7, "optimizer": "sgd", "lr": 0.05,
    "lr_schedule": "plateau", "lr_patience": 9, "lr_factor": 0.5, "lr_min": 1e-6,
    "iterations": 999, "scales": 3, "start_size": 64, "scale_iterations": 11,
    "device": "cpu", "precision": "float32", "checkpointing": "on", "max_memory": "4GB",
    "tile": 128,
}
"""A valid value for every StyleConfig field, each different from its default."""


def test_other_defaults_change_every_field():
    """A new StyleConfig field needs a value here (and a pin in the preset)."""
    assert set(OTHER_DEFAULTS) == set(FIELDS)
    defaults, other = StyleConfig().to_dict(), StyleConfig(**OTHER_DEFAULTS).to_dict()
    assert [n for n in FIELDS if defaults[n] == other[n]] == []


def test_no_default_reaches_the_table():
    """The rows are the same whatever the defaults: every field but FREE is pinned."""
    spec = grids.preset("report-table")
    ours = grids.configs(spec)
    theirs = grids.configs(spec, defaults=StyleConfig(**OTHER_DEFAULTS))
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        mine, other = a.to_dict(), b.to_dict()
        leaked = [n for n in FIELDS if n not in FREE and mine[n] != other[n]]
        assert leaked == [], f"row {index} takes {leaked} from the defaults: pin them in [base]"


def test_the_reports_optimiser():
    for config in grids.configs(grids.preset("report-table")):
        assert (config.optimizer, config.lr_schedule) == ("adam", "adaptive")
        assert config.learning_rate == 100 / PIXEL_SCALE and config.lr_min == 0.1 / PIXEL_SCALE
        assert (config.scales, config.iterations > 0, config.upscale) == (1, True, True)
        assert (config.feature_norm, config.gram_norm, config.style_loss) == ("rms", "chw", "gram")
        assert config.style_weight is not None and config.style_layer_weights is None


def test_row_nine_takes_the_second_style():
    assert grids.preset("report-table").styles == (1,) * 8 + (2,)


TINY = {"weights": "random", "iterations": 1, "scales": 1, "device": "cpu", "size": 48,
        "style_layers": "1,3", "content_layers": "3", "style_weight": 1e3}


def test_preset_rows_use_the_style_they_name(content_path, style_path, images, tmp_path):
    second = images["styles"][0]
    runner = Grid(content_path, [style_path, second], grids.preset("report-table"),
                  tmp_path / "t.png", overrides=TINY)
    # TINY's size and layers for every row make rows 3 and 6 repeat rows 2 and 5: run once
    assert [row.index for row in runner.rows] == [1, 2, 4, 5, 7, 8, 9]
    assert [job.inputs.styles[0].name for job in runner.jobs] == ["style.png"] * 6 + ["swirl.png"]
    assert [row.style for row in runner.rows] == ["style.png"] * 6 + ["swirl.png"]
    # rows 7 and 9 had the same caption; now the style tells them apart
    seventh, ninth = runner.rows[4], runner.rows[6]
    assert seventh.label.endswith("style 1") and ninth.label.endswith("style 2")
    assert seventh.path != ninth.path


def test_one_style_for_all_rows_with_a_warning(content_path, style_path, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        runner = Grid(content_path, style_path, grids.preset("report-table"), tmp_path / "t.png",
                      overrides=TINY)
    assert {job.inputs.styles[0].name for job in runner.jobs} == {"style.png"}
    assert "row 9 uses style 2, but 1 style image(s) were given" in caplog.text
    # with one style, row 9 is row 7 again: one run
    assert "rows 7 and 9 are the same run" in caplog.text and runner.rows[-1].index == 8
    assert not runner.styled and all("style" not in row.label for row in runner.rows)


def test_grid_file_styles_by_path_and_number(content_path, style_path, images, tmp_path):
    """A path is relative to the grid file; a row without ``style`` blends all the styles
    given; the sheet's tables get a style column and each row's loss its own style."""
    folder = tmp_path / "grid"
    folder.mkdir()
    (folder / "paint.png").write_bytes(images["styles"][1].read_bytes())
    (folder / "g.toml").write_text('[[rows]]\nseed = 1\nstyle = "paint.png"\n'
                                   '[[rows]]\nseed = 2\nstyle = 1\n[[rows]]\nseed = 3\n')
    runner = Grid(content_path, [style_path, images["styles"][0]],
                  grids.load_spec(folder / "g.toml"), tmp_path / "s.png", overrides=TINY)
    assert [row.style for row in runner.rows] == ["paint.png", "style.png",
                                                  "style.png + swirl.png"]
    result = runner.run()
    table = read_csv(tmp_path / "s.csv")
    assert [r["style"] for r in table] == ["paint.png", "style.png", "style.png + swirl.png"]
    assert [r["label"] for r in table] == ["seed=1 style 1", "seed=2 style 2", "seed=3 style 3"]
    markdown = (tmp_path / "s.md").read_text()
    assert "| style |" in markdown and "styles 1 `paint.png`, 2 `style.png`" in markdown
    # the fixed measure compares each row with its own style images
    first, second = (runner.jobs[i].inputs.styles for i in (0, 1))
    evaluator = Evaluator(runner.jobs[0], size=48, weights="random", stylizer=Stylizer())
    assert result.rows[0].losses == pytest.approx(evaluator(result.rows[0].image, first))
    assert evaluator(result.rows[0].image, first) != evaluator(result.rows[0].image, second)


def test_rows_given_in_python_may_name_styles(content_path, style_path, images, tmp_path):
    spec = grids.spec_from(rows=[{"seed": 1, "style": 2}, {"seed": 2, "style": str(style_path)}])
    assert spec.styles == (2, style_path)
    runner = Grid(content_path, [style_path, images["styles"][1]], spec, tmp_path / "p.png",
                  overrides=TINY)
    assert [row.style for row in runner.rows] == ["wave.png", "style.png"]


@pytest.mark.parametrize("bad", ["0", "-1", "[1, 2]", "''", "true"])
def test_bad_style_entries(bad):
    with pytest.raises(ConfigError, match="style"):
        grids.parse_spec(f"[[rows]]\nseed = 1\nstyle = {bad}\n")


def test_a_shared_style_in_base_and_a_row_of_its_own(tmp_path):
    spec = grids.parse_spec('[base]\nstyle = 2\n[[rows]]\nseed = 1\n[[rows]]\nstyle = "a.png"\n',
                            folder=tmp_path)
    assert spec.styles == (2, tmp_path / "a.png") and spec.base == {}
