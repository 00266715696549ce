"""The web app without a server: options, limits, the job loop, stop, errors, the command."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from conftest import make_content
from estilo import ConfigError, ImageError, StyleConfig
from estilo.config import FIELDS
from estilo.io.output import read_parameters
from estilo.web import (
    UI_FIELDS,
    Limits,
    Studio,
    coerce,
    ui_fields,
)


@pytest.fixture
def studio(tiny: StyleConfig) -> Studio:
    return Studio(tiny, Limits(max_size=96, max_iterations=50, max_pixels=200_000,
                               preview_every=0.0))


def test_import_estilo_does_not_import_gradio() -> None:
    code = "import estilo, estilo.web, estilo.cli, sys; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_page_options_follow_the_config() -> None:
    assert set(ui_fields()) <= set(FIELDS)
    assert ("preserve_color" in ui_fields()) == ("preserve_color" in FIELDS)
    assert ui_fields() == tuple(n for n in UI_FIELDS if n in FIELDS)


def test_run_yields_previews_then_a_png_with_parameters(studio: Studio, content_path: Path,
                                                         style_path: Path) -> None:
    updates = []
    for update in studio.run(str(content_path), str(style_path), {"iterations": 5, "seed": 3},
                             threading.Event()):
        updates.append(update)
        if update.download:  # read it now: the temporary folder goes when the run ends
            params = read_parameters(update.download)
    previews = [u for u in updates if isinstance(u.image, Image.Image)]
    assert len(previews) == 5 and previews[0].image.size == (64, 48)
    assert "Iteration 5/5" in previews[-1].status and "left" in previews[-1].status
    assert updates[-1].status.startswith("**Done** after 5/5")
    assert updates[-1].image == updates[-1].download
    assert params["config"]["seed"] == 3 and params["iterations_done"] == 5
    assert params["inputs"]["content"]["name"] == "content.png"
    assert params["interrupted"] is False
    assert not Path(updates[-1].download).exists()


def test_stop_ends_the_run_within_one_step_and_keeps_the_image(
        studio: Studio, content_path: Path, style_path: Path) -> None:
    stop = threading.Event()
    updates = studio.run(str(content_path), str(style_path), {"iterations": 50}, stop)
    seen = []
    for update in updates:
        seen.append(update)
        if "Iteration 3/" in update.status:
            stop.set()
        if update.download:
            params = read_parameters(update.download)
    assert seen[-1].status.startswith("**Stopped** after 4/50")  # the step in flight finishes
    assert params["interrupted"] is True and params["iterations_done"] == 4


def test_time_limit_stops_a_run(tiny: StyleConfig, content_path: Path, style_path: Path) -> None:
    studio = Studio(tiny, Limits(time_limit=1e-9, preview_every=0.0))
    updates = list(studio.run(str(content_path), str(style_path), {}, threading.Event()))
    assert "time limit" in updates[-1].status and "after 1/" in updates[-1].status


@pytest.mark.parametrize(("values", "message"), [
    ({"size": 97}, "size must be at most 96 px on this server"),
    ({"iterations": 51}, "iterations must be between 1 and 50"),
    ({"iterations": 0}, "iterations must be between 1 and 50"),
    ({"weights": "/etc/passwd"}, "not settable from the web page: weights"),
    ({"init": "/etc/passwd"}, "init must be one of content, content+noise"),
    ({"pooling": "median"}, "pooling must be one of max, avg"),
    ({"seed": "1; rm"}, "bad value '1; rm' for seed: expected a whole number"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"strength": -1.0}, "strength must be a non-negative number"),
])
def test_the_job_rechecks_every_option(studio: Studio, content_path: Path, style_path: Path,
                                       values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        next(studio.run(str(content_path), str(style_path), values, threading.Event()))


def test_coerce_keeps_types() -> None:
    assert coerce("size", 64.0) == 64 and isinstance(coerce("size", 64.0), int)
    assert coerce("style_weight", "1e4") == 1e4
    assert coerce("pooling", "max") == "max"


def _heic(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)


def _truncated(path: Path) -> None:
    make_content((96, 72)).save(path.with_suffix(".full.png"))
    path.write_bytes(path.with_suffix(".full.png").read_bytes()[:300])


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b"hello, not an image"), "not a supported image|cannot identify"),
    (_heic, "HEIC/HEIF/AVIF is not supported"),
    (_truncated, "truncated|broken|cannot"),
    (lambda p: make_content((40, 20)).save(p, "PNG"), "too small"),
    (lambda p: Image.new("RGB", (600, 400)).save(p, "PNG"), "image too large"),
    (lambda p: None, "not found"),
])
def test_bad_uploads_give_estilo_messages(studio: Studio, tmp_path: Path, make: object,
                                          message: str, style_path: Path) -> None:
    path = tmp_path / "upload.png"
    make(path)  # type: ignore[operator]
    with pytest.raises(ImageError, match=message) as info:
        studio.check_upload(path)
    assert str(tmp_path) not in str(info.value)  # the upload's name, not the server's path
    with pytest.raises(ImageError, match=message):  # and again inside the job
        next(studio.run(str(path), str(style_path), {}, threading.Event()))


def test_missing_uploads_are_asked_for(studio: Studio) -> None:
    with pytest.raises(ImageError, match="upload a content image and a style image"):
        next(studio.run(None, None, {}, threading.Event()))


def test_flags_are_per_session(studio: Studio) -> None:
    studio.stop("a")
    assert studio.flag("a").is_set() and not studio.flag("b").is_set()
    studio.arm("a")
    assert not studio.flag("a").is_set()
    flag = studio.flag("c")
    studio.forget("c")
    assert flag.is_set() and "c" not in studio._flags


def test_examples_are_copied_for_gradio() -> None:
    studio = Studio()
    content, style = studio.examples()
    assert Path(content).name == "content.jpg" and studio.check_upload(style).size[0] > 0
