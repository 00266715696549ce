"""Progress on stderr: a bar on a terminal, a line per level (row, item) in a log, -q silent."""

from __future__ import annotations

import io
import sys
from contextlib import closing

import pytest

from estilo import cli
from estilo.cli.progress import Progress

FAST = ["--weights", "random", "--size", "48", "--iterations", "2", "--scales", "1",
        "--style-layers", "1", "--content-layers", "1", "--device", "cpu"]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_its_total_from_the_start():
    stream = Terminal()
    with closing(Progress(3, stream=stream)) as bar:
        assert "0/3" in stream.getvalue() and "0it" not in stream.getvalue()
        for _ in range(3):
            bar.step("64x48", "loss=1")
        bar.group(0, "never printed on a terminal")
    text = stream.getvalue()
    assert "\r" in text and "3/3" in text and "never printed" not in text


def test_an_unknown_total_shows_nothing_until_known_but_the_clock_runs_from_the_start(
        monkeypatch: pytest.MonkeyPatch):
    now = [1000.0]
    monkeypatch.setattr("tqdm.std.time", lambda: now[0])  # the bar's clock, moved by hand
    stream = Terminal()
    bar = Progress(None, unit="img", stream=stream)
    assert stream.getvalue() == ""  # no "0it" bar
    now[0] += 30.0
    bar.step(postfix="done: a.png", total=4)
    elapsed = bar.elapsed
    bar.close()
    assert elapsed == 30.0 and "1/4" in stream.getvalue() and "0it" not in stream.getvalue()


def test_a_log_gets_one_line_per_group_and_no_carriage_returns():
    stream = io.StringIO()
    with closing(Progress(4, stream=stream)) as bar:
        for level, text in [(0, "a1"), (0, "a2"), (1, "b1"), (1, "b2")]:
            bar.step("x", "loss=1")
            bar.group(level, text)
        bar.line("item line")
    assert stream.getvalue() == "a2\nitem line\nb2\n"


def test_quiet_prints_nothing():
    stream = Terminal()
    with closing(Progress(2, quiet=True, stream=stream)) as bar:
        bar.step("x")
        bar.group(0, "level")
        bar.line("item")
    assert stream.getvalue() == ""


def test_the_batch_clock_starts_with_the_batch(content_path, style_path, tmp_path, capsys,
                                               monkeypatch: pytest.MonkeyPatch):
    """The bar is made before the first item runs (it used to start when it finished)."""
    seen: dict[str, float] = {}
    real_close = Progress.close

    def close(self: Progress) -> None:
        if self.elapsed is not None:
            seen["bar"] = self.elapsed
        real_close(self)

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # what Progress draws on: a terminal here
    monkeypatch.setattr(Progress, "close", close)
    out = tmp_path / "out"
    assert cli.main(["batch", str(content_path), "--style", str(style_path), "-o", str(out),
                     "--workers", "1", *FAST]) == 0
    import json

    batch = json.loads((out / "batch-summary.json").read_text())
    item = batch["items"][0]["seconds"]
    assert seen["bar"] >= item > 0  # the one item's run time is inside the bar's clock
    assert "1/1" in terminal.getvalue()
