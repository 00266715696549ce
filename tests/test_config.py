import dataclasses
import re

import pytest

from estilo.cli.stylize import build_parser
from estilo.config import (
    CONV_NAMES,
    FIELDS,
    LAYER_NAMES,
    USEFUL,
    ConfigError,
    LayerError,
    StyleConfig,
    parse_colour,
    parse_layers,
    resolve_layer,
)


def test_defaults_are_those_picked_on_the_quality_panel():
    c = StyleConfig()
    # benchmarks/quality.py (issue 12): ReLU Gram matrices with the fine layers weighted up,
    # content relu4_2, max pooling, the content as the start, the style by strength.
    assert c.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert c.style_layer_weights == (4.0, 2.0, 1.0, 1.0, 0.25)
    # Issue 25 (the preference panel): no colour grain (grey start noise, the colour's total
    # variation), the painting's palette at the start, relu5_1 down (copied faces and eyes).
    assert (c.noise, c.palette, c.chroma_tv_weight, c.tv_weight) == ("grey", "painting", 30.0, 0.0)
    assert c.content_layers == ("relu4_2",) and c.content_layer_weights is None
    assert (c.pooling, c.init, c.noise_ratio, c.style_loss) == ("max", "content+noise", 0.2, "gram")
    assert c.style_weight is None and c.strength == 1.0 and c.content_weight == 1.0
    # The optimiser default is L-BFGS, chosen by measurement (issue 4, benchmarks/): the
    # seed's Adam + adaptive rate stays one option away, with the seed's rates.
    assert c.optimizer == "lbfgs" and c.lr_schedule == "auto" and c.learning_rate == 1.0
    adam = c.replace(optimizer="adam")
    assert adam.learning_rate == pytest.approx(100 / 255) and adam.lr_min == pytest.approx(0.1 / 255)


def test_defaults_are_two_levels_from_256_px():
    c = StyleConfig()
    assert (c.start_size, c.scale_iterations, c.iterations) == (256, 40, 30)


def test_new_layers_drop_the_old_layers_weights():
    c = StyleConfig()
    assert c.replace(style_layers="1,3").style_layer_weights is None
    assert c.replace(style_layers="1:2,3").style_layer_weights == (2.0, 1.0)
    assert StyleConfig(style_layers="2,4,8,12,16").style_layer_weights is None
    assert c.replace(strength=2).style_layer_weights == (4.0, 2.0, 1.0, 1.0, 0.25)


def test_layer_weights_in_the_layer_list():
    assert StyleConfig(style_layers="relu1_1:2,relu2_1").style_layer_weights == (2.0, 1.0)


def test_index_notation_gives_an_equal_config():
    by_index = StyleConfig(style_layers="1,3,5,9,13", content_layers="10")
    by_name = StyleConfig(style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
                          content_layers=("conv4_2",))
    assert by_index == by_name


@pytest.mark.parametrize("change,fragment", [
    ({"pooling": "min"}, "pooling must be one of max, avg"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of adam, sgd, lbfgs"),
    ({"style_weight": -1}, "style_weight"),
    ({"noise_ratio": 1.5}, "noise_ratio"),
    ({"size": 0}, "size"),
    ({"size": (10, -2)}, "size"),
    ({"lr": 0}, "lr"),
    ({"lr_factor": 1.0}, "lr_factor"),
    ({"iterations": float("nan")}, "iterations"),
    ({"style_layers": "1,2", "style_layer_weights": (1.0,)}, "style_layer_weights"),
])
def test_validation_names_the_option(change, fragment):
    with pytest.raises(ConfigError, match=fragment):
        StyleConfig(**change)


def test_unknown_layer_is_an_error():
    with pytest.raises(ValueError, match="valid layers"):
        StyleConfig(style_layers="conv9_9")


def test_dict_round_trip():
    c = StyleConfig(size=(300, 200), style_layers="2,4", init="content", seed=7)
    assert StyleConfig.from_dict(c.to_dict()) == c


def test_every_config_field_is_a_cli_option_with_the_same_default():
    parser = build_parser()
    dests = {a.dest: a.default for a in parser._actions}
    defaults = StyleConfig()
    for name in FIELDS:
        assert name in dests, name
        default = dests[name]
        if name.endswith("_layers"):  # the layers' weights are shown inline: relu1_1:4,...
            names, weights = parse_layers(default)
            assert names == getattr(defaults, name), name
            assert weights == getattr(defaults, f"{name[:-1]}_weights"), name
        elif name.endswith("_layer_weights"):
            assert default is None, name
        else:
            assert default == getattr(defaults, name), name


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        StyleConfig().size = 3  # type: ignore[misc]


@pytest.mark.parametrize("good", ["white", "black", "#102030", "#fff", "rgb(1, 2, 3)"])
def test_background_accepts_opaque_colours(good):
    assert StyleConfig(background=good).background == good


@pytest.mark.parametrize("bad", ["nocolour", "#12345", "#ff000080", ""])
def test_background_refuses_other_values_in_one_line(bad):
    with pytest.raises(ConfigError, match="background") as info:
        StyleConfig(background=bad)
    assert "\n" not in str(info.value) and "#rrggbb" in str(info.value)


def test_style_blend_is_normalised_and_checked():
    from estilo import StyleConfig as C
    assert C(style_blend=(3, 7)).style_blend == pytest.approx((0.3, 0.7))
    assert C(style_blend=[1, 1, 2]).style_blend == pytest.approx((0.25, 0.25, 0.5))
    for bad in ((0, 0), (-1, 2), (float("nan"), 1), ()):
        with pytest.raises(ConfigError, match="style_blend"):
            C(style_blend=bad)


def test_new_choices_are_validated():
    from estilo import StyleConfig as C
    for field, value in (("style_loss", "lap"), ("layer_weighting", "depth"),
                         ("preserve_color", "hue"), ("style_scale", 0), ("mask", "")):
        with pytest.raises(ConfigError, match=field):
            C(**{field: value})


def test_layer_table_has_vgg19_shape():
    assert len(CONV_NAMES) == 16
    assert len(LAYER_NAMES) == 16 * 2 + 5
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-1] == "pool5"


@pytest.mark.parametrize("index,name", [(1, "conv1_1"), (2, "conv1_2"), (3, "conv2_1"),
                                        (4, "conv2_2"), (5, "conv3_1"), (8, "conv3_4"),
                                        (9, "conv4_1"), (10, "conv4_2"), (12, "conv4_4"),
                                        (13, "conv5_1"), (16, "conv5_4")])
def test_conv_index_notation(index, name):
    assert resolve_layer(str(index)) == name
    assert resolve_layer(index) == name


def test_names_pass_through_case_insensitively():
    assert resolve_layer("ReLU4_2") == "relu4_2"
    assert resolve_layer("pool3") == "pool3"


@pytest.mark.parametrize("bad", ["conv6_1", "17", "0", "relu", "fc7", ""])
def test_unknown_layer_lists_valid_names(bad):
    with pytest.raises(LayerError) as info:
        resolve_layer(bad)
    assert "conv" in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_layers_with_and_without_weights():
    assert parse_layers("1,3,5,9,13") == (("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"), None)
    assert parse_layers("relu1_1:0.5, 10") == (("relu1_1", "conv4_2"), (0.5, 1.0))
    with pytest.raises(LayerError):
        parse_layers("1,1")
    with pytest.raises(LayerError):
        parse_layers("conv1_1:heavy")


@pytest.mark.parametrize(
    ("text", "rgb"),
    [("white", (255, 255, 255)), ("Black", (0, 0, 0)), ("#102030", (16, 32, 48)), ("#fff", (255,) * 3),
     ("#ff0000ff", (255, 0, 0))],
)
def test_parse_colour(text: str, rgb: tuple[int, int, int]):
    assert parse_colour(text) == rgb


@pytest.mark.parametrize("text", ["", "nocolour", "#12345", "#ff000080", "transparent"])
def test_parse_colour_refuses_non_colours_and_transparency(text: str):
    with pytest.raises(ValueError, match="opaque colour"):
        parse_colour(text)


@pytest.mark.parametrize(("option", "value"), [("style_weight", 1e15), ("style_weight", 1e30),
                                               ("strength", 1e11)])
def test_style_weights_that_cannot_be_meant_are_refused(option, value):
    with pytest.raises(ConfigError, match=re.escape(f"{option} {value:g} is beyond what estilo "
                                                    "can optimise") + ".* its useful range is"):
        StyleConfig(**{option: value})
    below = USEFUL[option][2] / 10   # far above its useful range, but taken (with a warning
    assert getattr(StyleConfig(**{option: below}), option) == below  # if nothing moves)
