"""Grid rows: the preset of the report's table, --param products, TOML files, labels."""

import pytest

from estilo.config import ConfigError, StyleConfig
from estilo.grids import spec as grids

TABLE_TS = ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")   # 2,4,8,12,16
GATYS_TS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # 1,3,5,9,13
# (Ts, Tc, Ws, Wc, N, avg, size): the report's results table, section 4, row by row.
REPORT_TABLE = [
    (TABLE_TS, "conv4_1", 500.0, 5.0, False, False, 224),
    (TABLE_TS, "conv4_1", 1e5, 1.0, False, False, 224),
    (GATYS_TS, "conv2_1", 1e5, 1.0, False, False, 224),
    (GATYS_TS, "conv4_2", 500.0, 1.0, False, True, 224),
    (TABLE_TS, "conv4_1", 1e5, 1.0, True, True, 224),
    (TABLE_TS, "conv4_1", 1e5, 1.0, True, True, 512),
    (TABLE_TS, "conv4_1", 1e5, 5.0, True, True, 512),
    (GATYS_TS, "conv4_1", 1e5, 2.0, True, True, 512),
    (TABLE_TS, "conv4_1", 1e5, 5.0, True, True, 512),
]
TABLE_LABELS = [
    "Ts=2,4,8,12,16 Tc=9 Ws=500 Wc=5 224",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 224",
    "Ts=1,3,5,9,13 Tc=3 Ws=1e5 Wc=1 224",
    "Ts=1,3,5,9,13 Tc=10 Ws=500 Wc=1 avg 224",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 224",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=5 N avg 512",
    "Ts=1,3,5,9,13 Tc=9 Ws=1e5 Wc=2 N avg 512",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=5 N avg 512",
]


def test_preset_is_the_reports_table_with_indices_resolved():
    spec = grids.preset("report-table")
    configs = grids.configs(spec)
    got = [(c.style_layers, c.content_layers[0], c.style_weight, c.content_weight,
            c.init == "content+noise", c.pooling == "avg", c.size) for c in configs]
    assert got == REPORT_TABLE
    assert {c.init for c in configs} == {"noise", "content+noise"}
    assert all(c.noise_ratio == 0.6 and c.scales == 1 for c in configs)
    assert spec.notation == "conv-index"


def test_preset_labels_use_the_conv_index_notation():
    configs = grids.configs(grids.preset("report-table"))
    shown = grids.differing(configs)
    assert [grids.label(c, shown, "conv-index") for c in configs] == TABLE_LABELS


def test_unknown_preset():
    with pytest.raises(ConfigError, match="report-table"):
        grids.preset("nope")


def test_param_values_use_the_cli_converters():
    assert grids.parse_param("style_weight=1e3,1e5") == ("style_weight", [1e3, 1e5])
    assert grids.parse_param("size=224,40x32") == ("size", [224, (40, 32)])
    assert grids.parse_param("pooling=max,avg") == ("pooling", ["max", "avg"])
    assert grids.parse_param("upscale=true,false") == ("upscale", [True, False])
    assert grids.parse_param("lr=none,0.1") == ("lr", [None, 0.1])
    assert grids.parse_param("style-layers=1,3,5;conv4_1") == ("style_layers", ["1,3,5", "conv4_1"])
    with pytest.raises(ConfigError, match="bad value 'x' for iterations"):
        grids.parse_param("iterations=10,x")


def test_unknown_param_lists_the_valid_names():
    with pytest.raises(ConfigError) as info:
        grids.parse_param("stlye_weight=1,2")
    message = str(info.value)
    assert "'stlye_weight'" in message and "style_weight" in message and "noise_ratio" in message
    assert "\n" not in message


def test_cartesian_product_last_name_fastest():
    rows = grids.expand({"style_weight": [1e3, 1e5], "pooling": ["max", "avg"], "seed": [0]})
    assert rows == [
        {"style_weight": 1e3, "pooling": "max", "seed": 0},
        {"style_weight": 1e3, "pooling": "avg", "seed": 0},
        {"style_weight": 1e5, "pooling": "max", "seed": 0},
        {"style_weight": 1e5, "pooling": "avg", "seed": 0},
    ]
    spec = grids.spec_from(params={"style_layers": ["1,3", "conv2_1"], "size": [32, 48]})
    configs = grids.configs(spec)
    assert [(c.style_layers, c.size) for c in configs] == [
        (("conv1_1", "conv2_1"), 32), (("conv1_1", "conv2_1"), 48),
        (("conv2_1",), 32), (("conv2_1",), 48)]


def test_labels_show_only_what_differs():
    base = StyleConfig(weights="random")
    configs = [base.replace(style_weight=1e5, pooling="avg"),
               base.replace(style_weight=500.0, pooling="avg"),
               base.replace(style_weight=1e5, pooling="avg", size=(40, 32))]
    shown = grids.differing(configs)
    assert shown == ["size", "style_weight"]
    assert [grids.label(c, shown) for c in configs] == [
        "size=512 style_weight=1e5", "size=512 style_weight=500", "size=40x32 style_weight=1e5"]
    assert [grids.label(c, shown, "conv-index") for c in configs] == [
        "Ws=1e5 512", "Ws=500 512", "Ws=1e5 40x32"]
    assert grids.differing([base, base]) == [] and grids.label(base, []) == ""


def test_conv_index_notation_of_names_and_other_inits():
    config = StyleConfig(style_layers=("relu1_1", "conv2_1"), init="content", pooling="max")
    assert grids.label(config, ["style_layers", "init", "pooling", "lr_factor"], "conv-index") == \
        "Ts=relu1_1,conv2_1 init=content lr_factor=0.7"


def test_slugs_are_file_names():
    assert grids.slug("Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512") == \
        "ts-2-4-8-12-16-tc-9-ws-1e5-wc-1-n-avg-512"
    assert grids.slug("init=/tmp/a b.png") == "init-tmp-a-b.png"
    assert grids.slug("") == "row" and len(grids.slug("x" * 200)) == 60


def test_grid_file_rows_base_and_errors(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('notation = "conv-index"\n[base]\nstyle_weight = 1000\n'
                    '[[rows]]\ncontent_layers = "10"\n[[rows]]\ncontent_layers = [3]\n'
                    'size = "40x32"\n')
    spec = grids.load_spec(path)
    assert spec.notation == "conv-index" and spec.base == {"style_weight": 1000.0}
    configs = grids.configs(spec, {"seed": 3})
    assert [(c.content_layers, c.size, c.style_weight, c.seed) for c in configs] == [
        (("conv4_2",), 512, 1000.0, 3), (("conv2_1",), (40, 32), 1000.0, 3)]
    for bad, message in [("[[rows]]\nstyle_wieght = 1\n", "style_wieght"),
                         ("notation = 'x'\n[[rows]]\nseed = 1\n", "notation"),
                         ("[base]\nseed = 1\n", "no \\[\\[rows\\]\\]"),
                         ("rows = [", "grid file"), ("colour = 1\n[[rows]]\n", "colour")]:
        path.write_text(bad)
        with pytest.raises(ConfigError, match=message):
            grids.load_spec(path)
    with pytest.raises(ConfigError, match="cannot read"):
        grids.load_spec(tmp_path / "missing.toml")


def test_options_for_all_rows_replace_the_rows_values(caplog):
    configs = grids.configs(grids.preset("report-table"), {"size": 64, "iterations": 5})
    assert {c.size for c in configs} == {64} and {c.iterations for c in configs} == {5}
    assert "size set for all rows" in caplog.text


def test_spec_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one"):
        grids.spec_from()
    with pytest.raises(ConfigError, match="exactly one"):
        grids.spec_from(preset_name="seed-table", params={"seed": [1]})


def test_the_earlier_names_still_work():
    assert grids.preset("seed-table") == grids.preset("report-table")
    spec = grids.parse_spec('notation = "seed"\n[[rows]]\nstyle_weight = 1\n')
    assert spec.notation == "conv-index"
