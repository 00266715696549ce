"""Options as a user writes them: one text grammar, one help and one set of choices each."""

import pytest

from estilo import StyleConfig
from estilo.config import FIELDS, ConfigError, choices
from estilo.options import (
    HELP,
    LIST_OPTIONS,
    check_names,
    flag,
    help_text,
    number,
    parse,
    parse_size,
    text,
    value,
    values,
)


def test_every_option_has_help_and_nothing_else_does():
    assert list(HELP) == list(FIELDS)
    assert all(HELP[name].strip() for name in FIELDS)


def test_flags_and_help_without_the_default():
    assert flag("style_blend") == "--style-blend"
    assert help_text("noise_ratio") == "share of noise for init content+noise"
    assert "%(default)" not in help_text("lr_min")


@pytest.mark.parametrize(("name", "written", "expected"), [
    ("style_weight", "1e5", 1e5), ("iterations", " 20 ", 20), ("size", "640x480", (640, 480)),
    ("size", "512", 512), ("style_blend", "3,7", (3.0, 7.0)), ("upscale", "yes", True),
    ("keep_alpha", "off", False), ("lr", "none", None), ("style_size", "default", None),
    ("style_layers", "1,3,5", "1,3,5"), ("pooling", "max", "max"), ("init", "none", "none"),
])
def test_text_is_parsed_by_the_options_kind(name, written, expected):
    assert parse(name, written) == expected


@pytest.mark.parametrize(("name", "written", "message"), [
    ("style_weight", "3,7", "expected one number, e.g. 1e5, not '3,7' (the weight of each style"),
    ("iterations", "many", "expected a whole number, not 'many'"),
    ("style_blend", "3;7", "expected comma-separated numbers"),
    ("upscale", "maybe", "expected true or false, not 'maybe'"),
    ("size", "0", "invalid size '0'"),
])
def test_bad_text_says_what_is_expected(name, written, message):
    with pytest.raises(ValueError) as info:
        parse(name, written)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_values_from_text_toml_json_and_forms_mean_the_same():
    assert value("size", "40x32") == value("size", [40, 32]) == (40, 32)
    assert value("style_weight", 100000) == value("style_weight", "1e5") == 1e5
    assert isinstance(value("style_weight", 100000), float)
    assert value("iterations", 64.0) == 64 and isinstance(value("iterations", 64.0), int)
    assert value("style_layers", [2, 4]) == ("2", "4")
    assert values({"pooling": "max", "seed": 3}) == {"pooling": "max", "seed": 3}
    with pytest.raises(ConfigError, match="bad value 'x' for iterations"):
        value("iterations", "x")
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        value("seed", 1.5)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown option 'stlye_weight'; valid names: size"):
        check_names(["style_weight", "stlye_weight"])


def test_choices_come_from_the_config_types():
    assert choices("pooling") == ("max", "avg") and choices("optimizer") == ("adam", "sgd", "lbfgs")
    assert choices("size") is None and choices("init") is None


def test_text_round_trips_through_parse():
    config = StyleConfig(size=(40, 32), style_blend=(1, 3), lr=None, upscale=True)
    for name in FIELDS:
        written = text(name, getattr(config, name))
        separator = ";" if name in LIST_OPTIONS else None
        assert separator is None or separator not in written
        assert StyleConfig(**{name: value(name, written)}) == StyleConfig(**{
            name: getattr(config, name)}), name


@pytest.mark.parametrize(("value", "text"), [(100000, "1e5"), (1e5, "1e5"), (500, "500"),
                                             (0.7, "0.7"), (1e-4, "1e-4"), (0.001, "0.001"),
                                             (1000, "1000"), (12345.5, "12345.5"), (2.5e-7, "2.5e-7")])
def test_numbers_are_short_and_exact(value, text):
    assert number(value) == text
    assert float(text) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512", 512), (" 640x480 ", (640, 480)), ("640X480", (640, 480)), ("640 × 480", (640, 480))],
)
def test_parse_size_good(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "0", "-5", "1.5", "640x", "x480", "640x0", "1x2x3"])
def test_parse_size_bad(text):
    with pytest.raises(ValueError, match="640x480"):
        parse_size(text)
