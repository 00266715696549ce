"""What every command shares: the parser's errors, one-line errors and exit codes, SIGTERM."""

import argparse
import os
import signal

import pytest

from estilo.cli.shell import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Parser,
    Terminated,
    add_config_options,
    config_from_args,
    flag_message,
    guarded,
    sigterm_as_interrupt,
)
from estilo.config import ConfigError, StyleConfig


def test_flag_message_rewrites_field_names_only_where_they_name_an_option():
    assert flag_message("style_blend has 2 weights") == "--style-blend has 2 weights"
    assert flag_message("size must be positive") == "--size must be positive"
    assert flag_message("the size of style_size") == "the size of --style-size"
    assert flag_message("init must be one of content, content+noise") == \
        "--init must be one of content, content+noise"
    assert flag_message("seeds differ") == "seeds differ"


def test_usage_errors_are_one_line_that_points_to_help(capsys):
    parser = Parser(prog="estilo thing")
    parser.add_argument("--count", type=int)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--count", "x"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("estilo thing: error: argument --count") and "\n" not in err
    assert err.endswith("(see estilo thing --help)")


def test_config_options_come_back_as_the_config():
    parser = argparse.ArgumentParser()
    add_config_options(parser, StyleConfig(iterations=7))
    args = parser.parse_args(["--style-weight", "1e4", "--size", "40x32"])
    assert config_from_args(args) == StyleConfig(iterations=7, style_weight=1e4, size=(40, 32))
    with pytest.raises(ConfigError, match="^--noise-ratio must be between 0 and 1"):
        config_from_args(parser.parse_args(["--noise-ratio", "2"]))


@pytest.mark.parametrize(("error", "code", "said"), [
    (ConfigError("size must be positive"), 2, "estilo: error: size must be positive"),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted before the run started"),
    (ZeroDivisionError("boom"), 1, "internal error: ZeroDivisionError: boom (rerun with --debug"),
])
def test_guarded_maps_errors_to_one_line_and_an_exit_code(error, code, said, capsys):
    def action() -> int:
        raise error

    assert guarded(action) == code
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1


def test_sigterm_inside_is_an_interrupt_that_says_it_was_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as caught, sigterm_as_interrupt() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0) if hasattr(signal, "sigtimedwait") else None
    assert isinstance(caught.value, Terminated) and stop.status == EXIT_TERMINATED
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_ctrl_c_inside_keeps_its_own_status():
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt() as stop:
        raise KeyboardInterrupt
    assert stop.status == EXIT_INTERRUPTED
