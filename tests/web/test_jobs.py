"""The web app without a server: options, limits, the job loop, stop, errors, the command."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import make_content
from estilo import ConfigError, ImageError, StyleConfig
from estilo.config import FIELDS, INITS
from estilo.files import sha256
from estilo.io.output import read_parameters
from estilo.pyramid import Level
from estilo.transfer import Step
from estilo.web import (
    UI_FIELDS,
    Limits,
    Studio,
    coerce,
    ui_fields,
)
from estilo.web.jobs import TimeLeft, enlarged, progress_text


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
    assert _opened(updates[-1].before).size == _opened(updates[-1].download).size
    studio.discard(updates[-1].download)  # it left the history: its folder goes
    assert not Path(updates[-1].download).exists() and not Path(updates[-1].before).exists()


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
    ({"iterations": 0}, "iterations must be a whole number of at least 1"),
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
    with pytest.raises(ImageError, match="choose a photo and at least one painting"):
        next(studio.run(None, None, {}, threading.Event()))
    with pytest.raises(ConfigError, match="at most 3 styles"):
        next(studio.run("c.png", ["a.png"] * 4, {}, threading.Event()))


def test_flags_are_per_session(studio: Studio) -> None:
    studio.stop("a")
    assert studio.flag("a").is_set() and not studio.flag("b").is_set()
    studio.arm("a")
    assert not studio.flag("a").is_set()
    flag = studio.flag("c")
    studio.forget("c")
    assert flag.is_set() and studio.flag("c") is not flag


def test_forgetting_a_session_removes_its_files(studio: Studio, content_path: Path,
                                                style_path: Path) -> None:
    prepared = studio.prepare(content_path, "tab-1")
    *_, last = studio.run(prepared, str(style_path), {"iterations": 2}, threading.Event(),
                          session="tab-1")
    assert Path(prepared).exists() and Path(last.download).exists()
    studio.forget("tab-1")
    assert not Path(prepared).exists() and not Path(last.download).exists()


def test_a_phone_photo_comes_out_upright_and_downsized(tiny: StyleConfig, tmp_path: Path) -> None:
    """A 4000x3000 camera JPEG whose EXIF says 'rotate 90' (Orientation 6)."""
    studio = Studio(tiny, Limits(max_size=96))
    photo = Image.new("RGB", (4000, 3000), "white")
    photo.paste((200, 30, 30), (0, 0, 4000, 1000))  # a red band along the sensor's top
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "IMG_0001.JPG"
    photo.save(path, "JPEG", exif=exif, quality=80)
    prepared = studio.prepare(path, "phone")
    image = _opened(prepared)
    assert image.size == (72, 96)  # upright (portrait) and within the page's largest size
    assert image.getpixel((68, 48))[1] < 100 < image.getpixel((4, 48))[1]  # the band: right
    assert Path(prepared).name == "IMG_0001.png"


def test_an_uploaded_painting_keeps_up_to_twice_the_largest_size(tiny: StyleConfig,
                                                                 tmp_path: Path) -> None:
    studio = Studio(tiny, Limits(max_size=96))
    make_content((400, 300)).save(tmp_path / "mine.png")
    assert _opened(studio.prepare(tmp_path / "mine.png", "s", style=True)).size == (192, 144)


def test_transparency_survives_the_upload(tiny: StyleConfig, tmp_path: Path) -> None:
    studio = Studio(tiny, Limits(max_size=96))
    image = make_content((120, 90)).convert("RGBA")
    image.putalpha(0)
    image.paste((0, 0, 0, 255), (0, 0, 60, 90))
    image.save(tmp_path / "cut-out.png")
    prepared = _opened(studio.prepare(tmp_path / "cut-out.png", "s"))
    assert prepared.mode == "RGBA" and prepared.getpixel((5, 5))[3] == 255
    assert prepared.getpixel((90, 40))[3] == 0


def test_keep_transparency_gives_a_transparent_png(studio: Studio, style_path: Path,
                                                   tmp_path: Path) -> None:
    image = make_content((120, 90)).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 30, 90))
    image.save(tmp_path / "cut-out.png")
    for update in studio.run(str(tmp_path / "cut-out.png"), str(style_path),
                             {"iterations": 2, "keep_alpha": True}, threading.Event()):
        if update.download:  # read it now: the temporary folder goes when the run ends
            saved = _opened(update.download)
    assert saved.mode == "RGBA" and saved.getpixel((2, 20))[3] == 0
    assert saved.getpixel((saved.width - 5, 20))[3] == 255


def test_two_styles_with_weights_and_a_painted_mask(studio: Studio, content_path: Path,
                                                   style_path: Path, tmp_path: Path) -> None:
    from estilo.web.painted import BRUSHES, region_mask

    other = tmp_path / "other.png"
    make_content((64, 64)).save(other)
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    layer.paste(BRUSHES[1][1], (32, 0, 64, 48))  # the right half: the second style's brush
    mask = region_mask([layer], 2, (64, 48))
    assert mask is not None and mask.getpixel((5, 5)) == 0 and mask.getpixel((60, 5)) == 255
    *_, last = studio.run(str(content_path), [str(style_path), str(other)],
                          {"iterations": 2, "style_blend": (3.0, 1.0)}, threading.Event(),
                          mask=mask)
    params = read_parameters(last.download)
    assert params["config"]["style_blend"] == [0.75, 0.25]
    assert [s["name"] for s in params["inputs"]["styles"]] == ["style.png", "other.png"]
    assert params["inputs"]["mask"]["name"] == "mask.png"


def test_a_painted_mask_needs_a_region_per_style() -> None:
    from estilo.web.painted import BRUSHES, region_mask

    empty = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    assert region_mask([empty], 2, (40, 30)) is None  # nothing painted: blend everywhere
    blue = empty.copy()
    blue.paste(BRUSHES[1][1], (0, 0, 20, 30))
    assert region_mask([blue], 1, (40, 30)) is None  # one style: no mask
    with pytest.raises(ConfigError, match="no region for the yellow brush"):
        region_mask([blue], 3, (40, 30))
    yellow = blue.copy()
    yellow.paste(BRUSHES[2][1], (30, 0, 40, 30))
    mask = region_mask([yellow], 3, (80, 60))
    assert mask is not None and mask.size == (80, 60)
    assert [mask.getpixel((x, 10)) for x in (5, 50, 75)] == [128, 0, 255]


def _opened(path: str | Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def test_the_history_keeps_the_last_results_newest_first() -> None:
    from estilo.web.history import MAX_ENTRIES, Entry, History

    history = History()
    entries = [Entry(f"/r/{i}.png", f"/r/{i}-photo.png", "/u/cat.png", ("/s/starry_night.jpg",),
                     (5.0,), {"strength": 0.5, "iterations": i}, "Done") for i in range(13)]
    dropped = [gone for entry in entries for gone in history.add(entry)]
    assert dropped == [entries[0]] and len(history.entries) == MAX_ENTRIES
    assert history.entries[0] is entries[12] and history.get(0) is entries[12]
    assert history.get(MAX_ENTRIES) is None and history.get(None) is None
    assert history.gallery()[0] == ("/r/12.png", "#0 starry night")
    assert "- Iterations: `12`" in entries[12].describe()
    assert "- Strength: `0.5`" in entries[12].describe()


def test_entries_are_numbered_and_described_in_the_pages_words() -> None:
    from estilo.web.history import Entry

    entry = Entry("/r/cat-starry_night-3.png", "/r/p.png", "/u/cat.png",
                  ("/s/starry_night.jpg", "/s/the_scream.jpg"), (5.0, 2.0),
                  {"preserve_color": "none", "keep_alpha": True, "init": "content+noise"},
                  "Done", mask="/r/mask.png", number=3, made="enlarged")
    assert entry.caption == "#3 starry night + the scream (enlarged)"
    text = entry.describe()
    assert text.startswith("**#3 cat-starry_night-3.png** (enlarged): cat.png in the style of")
    assert "the_scream.jpg (weight 2)" in text
    assert "- Keep the photo's colours: `off`" in text and "- Keep transparency: `on`" in text
    assert "- Start from: `the photo with noise`" in text and "painted" in text


# --- the server's files: a closed tab, stopping, dead servers --------------------------------


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder of Studios made in the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_closed_tab_run_stops_and_keeps_nothing(tiny: StyleConfig, temp: Path,
                                                  content_path: Path, style_path: Path) -> None:
    studio = Studio(tiny, Limits(preview_every=0.0))
    prepared = studio.prepare(content_path, "tab")
    session = Path(prepared).parent.parent
    updates = studio.run(prepared, str(style_path), {"iterations": 50}, studio.flag("tab"),
                         session="tab")
    assert "Iteration 2/" in [next(updates) for _ in range(3)][-1].status
    studio.forget("tab")  # the tab closes while its job runs: the folder stays till it ends
    assert session.exists()
    rest = list(updates)
    assert [u.download for u in rest] == [None] * len(rest) and len(rest) <= 1
    assert not session.exists()
    assert sorted(p.name for p in temp.iterdir()) == [studio.root.name]  # no orphan PNG
    assert list(studio.run(prepared, str(style_path), {}, threading.Event(),
                           session="tab")) == []  # a closed tab's queued job never starts


def test_closing_the_studio_stops_its_runs_and_removes_everything(
        tiny: StyleConfig, temp: Path, content_path: Path, style_path: Path) -> None:
    studio = Studio(tiny, Limits(preview_every=0.0))
    prepared = studio.prepare(content_path, "tab")
    started, seen = threading.Event(), []

    def run() -> None:
        for update in studio.run(prepared, str(style_path), {"iterations": 50},
                                 studio.flag("tab"), session="tab"):
            seen.append(update)
            started.set()

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(60)
    studio.close(wait=60)  # the run ends within a step; then the folder goes
    worker.join(60)
    assert not worker.is_alive() and all(u.download is None for u in seen)
    assert list(temp.iterdir()) == []
    studio.close()  # again: nothing to do


def test_a_new_studio_removes_the_folders_of_dead_servers(tiny: StyleConfig,
                                                          temp: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = temp / f"estilo-web-{dead.pid}-abc"
    (left / "session").mkdir(parents=True)
    (left / "session" / "photo.png").write_bytes(b"someone's photo")
    alive = temp / f"estilo-web-{os.getppid()}-def"  # a server still running
    alive.mkdir()
    other = temp / "estilo-web-notapid"
    other.mkdir()
    studio = Studio(tiny)
    assert not left.exists() and alive.exists() and other.exists()
    assert studio.root.name.startswith(f"estilo-web-{os.getpid()}-")


# --- results: names, transparency, the uploads' own hashes, going further -----------------------


def test_results_carry_the_uploads_own_names_and_hashes(studio: Studio, tmp_path: Path,
                                                        style_path: Path) -> None:
    upload = tmp_path / "holiday.jpg"
    make_content((80, 60)).save(upload, quality=90)
    prepared = studio.prepare(upload, "s")
    assert Path(prepared).name == "holiday.png"
    *_, last = studio.run(prepared, str(style_path), {"iterations": 2}, threading.Event(),
                          session="s")
    assert Path(last.download).name == "holiday-style-1.png" and last.number == 1
    content = read_parameters(last.download)["inputs"]["content"]
    assert content["name"] == "holiday.png" and content["sha256"] == sha256(prepared)
    assert content["upload"] == {"name": "holiday.jpg", "sha256": sha256(upload)}
    *_, again = studio.run(prepared, str(style_path), {"iterations": 1}, threading.Event(),
                           session="s")
    assert Path(again.download).name == "holiday-style-2.png"


def test_keep_transparency_gives_the_photos_alpha(studio: Studio, tmp_path: Path,
                                                  style_path: Path) -> None:
    image = make_content((64, 48)).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 32, 48))  # the left half transparent
    image.save(tmp_path / "cut-out.png")
    prepared = studio.prepare(tmp_path / "cut-out.png", "s")
    *_, last = studio.run(prepared, str(style_path), {"iterations": 1, "keep_alpha": True},
                          threading.Event(), session="s")
    result = _opened(last.download)
    assert result.mode == "RGBA"
    assert result.getpixel((4, 24))[3] == 0 and result.getpixel((60, 24))[3] == 255


def test_continue_and_enlarge_go_further_from_a_result(studio: Studio, content_path: Path,
                                                       style_path: Path) -> None:
    *_, first = studio.run(str(content_path), str(style_path), {"iterations": 2},
                           threading.Event(), session="s")
    *_, more = studio.further(first.download, 3, threading.Event(), session="s")
    params = read_parameters(more.download)
    assert params["iterations_done"] == 5 and params["size"] == [64, 48]
    assert params["resumed_from"]["iterations_done"] == 2
    assert enlarged(64, 96) == 96 and enlarged(96, 96) is None and enlarged(40, 96) == 80
    *_, bigger = studio.further(more.download, 2, threading.Event(), session="s", size=96)
    assert read_parameters(bigger.download)["size"] == [96, 72]
    with pytest.raises(ConfigError, match="iterations must be between 1 and 50"):
        next(studio.further(more.download, 51, threading.Event(), session="s"))
    with pytest.raises(ConfigError, match="size must be at most 96 px"):
        next(studio.further(more.download, 2, threading.Event(), session="s", size=192))


def test_the_time_left_comes_from_the_second_step_of_a_level() -> None:
    levels = [Level((32, 24), 10), Level((64, 48), 10)]
    left = TimeLeft(levels)

    def step(iteration: int, level: int, elapsed: float) -> Step:
        size = levels[level].size
        return Step(iteration, 20, level, 2, size, 1.0, {}, 1.0, elapsed, torch.zeros(1))

    first = step(1, 0, 30.0)  # the first step also loaded the network: not a pace
    assert left(first) is None and "estimating the time left" in progress_text(first, None)
    # 1 s a step at 32x24 from then on: 9 steps here, 10 four times as large after.
    assert left(step(2, 0, 31.0)) == pytest.approx(8 + 10 * 4)
    assert left(step(11, 1, 50.0)) == pytest.approx(9 * 4)  # still the coarse level's pace
    assert left(step(12, 1, 52.0)) == pytest.approx(8 * 2)  # this level's own pace
    assert "about 16 s left" in progress_text(step(12, 1, 52.0), 16.0)


# --- the mask painter's values, the commands, the page's words ----------------------------------


def test_the_painters_layer_and_a_mask_image_as_strokes(tmp_path: Path) -> None:
    from estilo.web.painted import BRUSHES, data_url, layer, painter_value, region_mask

    photo = tmp_path / "photo.png"
    make_content((64, 48)).save(photo)
    assert painter_value(None) is None
    value = painter_value(photo)
    assert (value["width"], value["height"], value["mask"]) == (64, 48, None)
    assert layer(value, 10_000) is None
    halves = Image.new("L", (128, 96), 0)  # a mask in the library's format, twice the size
    halves.paste(255, (64, 0, 128, 96))
    value = painter_value(photo, halves, 2)
    strokes = layer(value, 10_000)
    assert strokes is not None and strokes.size == (64, 48)
    assert strokes.getpixel((5, 5)) == (*Image.new("RGB", (1, 1), BRUSHES[0][1]).getpixel((0, 0)), 255)
    mask = region_mask([strokes], 2, (64, 48))
    assert mask is not None and mask.getpixel((5, 5)) == 0 and mask.getpixel((60, 5)) == 255
    with pytest.raises(ConfigError, match="larger than this server accepts"):
        layer(value, 100)
    with pytest.raises(ConfigError, match="could not be read"):
        layer({"mask": "data:image/png;base64,bm90IGEgcG5n"}, 10_000)
    with pytest.raises(ConfigError, match="could not be read"):
        layer({"mask": data_url(halves, "JPEG")}, 10_000)
    with pytest.raises(ConfigError, match="2 colour region"):
        painter_value(photo, halves, 3)
    with pytest.raises(ConfigError, match="two or three paintings"):
        painter_value(photo, halves, 1)


def test_a_result_as_commands(studio: Studio, content_path: Path, style_path: Path,
                              tmp_path: Path) -> None:
    from estilo.web.command import commands, options

    default = StyleConfig()  # whatever the library's defaults are: only changes are flags
    assert options(default) == []
    size = 300 if default.size != 300 else 301
    init = next(name for name in INITS if name != default.init)
    changed = default.replace(size=size, keep_alpha=not default.keep_alpha, init=init,
                              style_layers="relu1_1:2,relu2_1")
    assert options(changed) == [
        "--size", str(size), "--style-layers", "relu1_1:2,relu2_1",
        "--no-keep-alpha" if default.keep_alpha else "--keep-alpha", "--init", init]
    *_, last = studio.run(str(content_path), str(style_path), {"iterations": 2},
                          threading.Event(), session="s")
    made = commands(last.download, print_size=4096, max_memory="8GB")
    assert made.files == [last.download, str(content_path), str(style_path)]
    lines = made.text.splitlines()
    assert lines[0] == "# In a folder holding content-style-1.png, content.png, style.png:"
    again, enlarge = (line for line in lines if line.startswith("estilo"))
    assert again.startswith("estilo content.png style.png -o content-style-1-again.png --size 64")
    assert "--iterations 2" in again and "--weights random" in again
    assert enlarge == ("estilo resume content-style-1.png --content content.png --style "
                       "style.png --size 4096 --max-memory 8GB -o content-style-1-4096px.png")
    *_, more = studio.further(last.download, 1, threading.Event(), session="s")
    assert len([line for line in commands(more.download, print_size=64, max_memory="1GB")
                .text.splitlines() if line.startswith("estilo")]) == 1  # continued: resume only


def test_library_messages_name_the_pages_controls() -> None:
    from estilo.web.words import message

    names = ("size", "iterations")
    assert message("use a larger image or --size", names) == \
        "use a larger image or a larger “Size (long side, px)”"
    assert message("use --size 400 or less, or --checkpointing auto", names) == \
        "use “Size (long side, px)” 400 or less, or --checkpointing auto"
    assert message("--iterations-x stays", names) == "--iterations-x stays"
