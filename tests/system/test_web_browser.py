"""The studio served by ``estilo web`` on loopback, driven by a real Chromium: every control,
the library's defaults, the mask painter, going further, the layout on a desktop and on a
phone, bad uploads, the closed API, the queue, and a server that leaves nothing behind.

The browser is Debian's Chromium driven by Playwright (no browser download). Without it the
browser tests skip, except under ``ESTILO_REQUIRE_BROWSER=1`` (set by .ci/run), where they fail.
Every wait is on something the page or the server does (a status line, a file, an exit);
its deadline, :data:`PATIENCE`, only tells a hang from a busy machine.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import make_content, make_style
from estilo import StyleConfig
from estilo.io.output import read_parameters
from estilo.options import layer_list
from estilo.web import ui_fields
from imaging import subprocess_env, wait_for

pytest.importorskip("gradio")
# Gradio's client and Playwright leave event loops and sockets to the garbage collector.
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUEUE_SIZE = 4
PATIENCE = 600.0
"""Seconds any one step may take (a server to start, a page to load, a click to be answered,
a run to start or stop) before the test calls it hung. Every wait ends as soon as the page or
the server has done it, so this costs nothing when all is well; it is this long because a
2-core machine running other jobs at a higher priority (nice 0 against the suite's 10) slows
a step tenfold: a server's start, 20 s when quiet, then takes over 300 s."""
SERVER = ["--weights", "random", "--device", "cpu"]  # the server's choices, not the page's
FAST = ["--size", "64", "--iterations", "30", "--scales", "1",
        "--style-layers", "conv1_1,conv2_1,conv3_1", "--content-layers", "conv3_1",
        "--preview-every", "0.2", "--max-size", "128", "--max-iterations", "400",
        "--queue-size", str(QUEUE_SIZE), "--max-upload-mb", "4"]


class Server:
    """An ``estilo web`` process on a free loopback port, with its own temp folder."""

    def __init__(self, folder: Path, options: list[str], **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.temp = folder / "tmp"
        self.temp.mkdir(exist_ok=True)
        self.log_path = folder / "server.log"
        self.log = self.log_path.open("w")
        self.url = f"http://127.0.0.1:{port}/"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "estilo", "web", "--port", str(port), *options],
            env=subprocess_env(GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(self.temp), **env),
            stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def wait_until_serving(self) -> None:
        def up() -> bool:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                return _get(self.url) == 200
            except OSError:
                return False

        _wait(up, what="estilo web to serve")

    @property
    def root(self) -> Path:
        """The server's own folder in its temp folder."""
        return _wait(lambda: next(self.temp.glob("estilo-web-*"), None), what="the server's folder")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server: random weights, tiny sizes, Gradio's cache in the test's folder."""
    folder = tmp_path_factory.mktemp("server")
    running = Server(folder, [*SERVER, *FAST], GRADIO_TEMP_DIR=str(folder / "gradio"))
    try:
        running.wait_until_serving()
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server of its own (the library's defaults but the weights and the device;
    Gradio's cache where the server puts it); stopped at the end if still running."""
    started: list[Server] = []

    def start(*options: str) -> Server:
        started.append(Server(tmp_path, [*SERVER, *options]))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    paths = {"content": folder / "photo.png", "style": folder / "my painting.png",
             "bad": folder / "notes.png", "tiny": folder / "strip.png",
             "rgba": folder / "cut-out.png", "mask": folder / "halves.png",
             "jpeg": folder / "photo.jpg"}
    make_content((96, 72)).save(paths["content"])
    make_content((96, 72)).save(paths["jpeg"], quality=90)
    make_style((64, 64)).save(paths["style"])
    paths["bad"].write_bytes(b"these are my notes, not a picture")
    make_content((96, 20)).save(paths["tiny"])
    cut_out = make_content((96, 72)).convert("RGBA")
    cut_out.putalpha(Image.fromarray(np.where(np.arange(96) < 48, 0, 255).astype(np.uint8)
                                     [None].repeat(72, 0)))
    cut_out.save(paths["rgba"])
    halves = Image.new("L", (96, 72), 0)  # the first painting on top, the second below
    halves.paste(255, (0, 36, 96, 72))
    halves.save(paths["mask"])
    return paths


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("ESTILO_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("no chromium on this machine: apt-get install chromium to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking",
                                            "--disable-component-update"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    page = _open(browser, server.url, {"width": 1280, "height": 800})
    yield page
    page.context.close()


def _open(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(PATIENCE * 1000)
    page.goto(url)
    page.wait_for_selector("#stylize")
    return page


def _wait(condition: Callable[[], Any], what: str) -> Any:
    """Wait until ``condition`` returns something true; past :data:`PATIENCE`, fail."""
    return wait_for(condition, timeout=PATIENCE, what=what)


def _status(page: Any) -> str:
    return str(page.locator("#status").inner_text())


def _until(page: Any, text: str) -> str:
    """Wait until the status line shows ``text``; return the line."""
    return _wait(lambda: text in _status(page) and _status(page),
                 what=f"{text!r} in the status line")


def _number(page: Any, elem_id: str, value: float) -> None:
    """Type a slider's value into its number box until the slider shows it. Typed again
    only if the box lost it (a key typed while the page is still settling); otherwise the
    slider is given time to follow, however slow the page is."""
    box = page.locator(f"#{elem_id} input[type=number]")
    if not box.is_visible():  # perhaps under "Advanced" (its controls exist once it opens)
        _advanced(page)
    box.wait_for(state="visible")
    slider = page.locator(f"#{elem_id} input[type=range]")

    def took() -> bool:
        if float(slider.input_value()) == value:
            return True
        if box.input_value() == "" or float(box.input_value()) != value:
            box.fill(str(value))
            box.press("Enter")
        return False

    _wait(took, what=f"{elem_id}={value}")


def _advanced(page: Any) -> None:
    """Open the "Advanced" accordion (if it is not open yet)."""
    if not page.locator("#advanced button.label-wrap.open").count():
        page.click("#advanced button.label-wrap")
    page.locator("#advanced button.label-wrap.open").wait_for()


def _upload(page: Any, photo: Path, styles: tuple[int, ...] = (0,)) -> None:
    """Upload the photo, then click bundled paintings (their gallery positions)."""
    page.locator("#photo-file input[type=file]").set_input_files(photo)
    _until(page, "Photo ready")
    page.wait_for_selector("#mask .painter:not(.no-photo)")
    for n, index in enumerate(styles):
        page.locator("#styles .thumbnail-item").nth(index).click()
        page.wait_for_selector(f"#slot-{n} img")


def _run(page: Any, iterations: int, button: str = "#stylize") -> str:
    """Set the iterations, press ``button`` and wait for its result (one more thumbnail in
    the history); the final status line."""
    _number(page, "opt-iterations", iterations)
    results = page.locator("#history .thumbnail-item")
    before = results.count()
    page.click(button)
    line = _wait(lambda: ("Error" in _status(page) or results.count() > before)
                    and _status(page), what="the run to end")
    assert "Done" in line, line
    page.wait_for_selector("#compare img >> nth=1")
    return line


def _stroke(page: Any, brush: int, points: list[tuple[float, float]], tool: str = "brush") -> None:
    """A stroke of a painting's colour through ``points``, fractions of the photo (below 0 or
    above 1: outside it), or one click of another tool (``fill``) at the first point."""
    page.locator("#mask button.colour").nth(brush).click()
    page.locator(f"#mask button.tool[data-tool={tool}]").click()
    frame = page.locator("#mask .frame")
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for k in range(1, 11):
            page.mouse.move(*at(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10))
    page.mouse.up()


def _painted(page: Any) -> np.ndarray:
    """The painter's canvas (H x W x 4)."""
    width, height, data = page.evaluate("""() => {
        const c = document.querySelector('#mask canvas.strokes');
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width,
                c.height).data)]; }""")
    return np.array(data, dtype=np.uint8).reshape(height, width, 4)


def _painted_once(page: Any, condition: Callable[[np.ndarray], bool], what: str) -> np.ndarray:
    """The painter's canvas, once ``condition`` holds for it."""
    def check() -> list[np.ndarray]:
        pixels = _painted(page)
        return [pixels] if condition(pixels) else []

    return _wait(check, what=what)[0]


def _download(page: Any, selector: str, target: Path) -> dict[str, Any]:
    """Download the file a file box offers; its embedded parameters (its name: ``.name``)."""
    with page.expect_download() as download:
        page.locator(f"{selector} a").first.click()
    download.value.save_as(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    params = read_parameters(target)
    assert params is not None
    return {**params, ".name": download.value.suggested_filename}


def _downloads(page: Any, selector: str, folder: Path) -> list[str]:
    """Download every file a file box lists into ``folder``, under its own name."""
    folder.mkdir(exist_ok=True)
    names = []
    links = page.locator(f"{selector} a")
    for index in range(links.count()):
        with page.expect_download() as download:
            links.nth(index).click()
        names.append(download.value.suggested_filename)
        download.value.save_as(folder / names[-1])
    return names


def _grey(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=float)


def _in_view(page: Any, *selectors: str) -> None:
    """Assert that the elements are wholly inside the viewport."""
    viewport = page.viewport_size
    for selector in selectors:
        box = page.locator(selector).first.bounding_box()
        assert (box is not None and box["y"] >= 0 and box["x"] >= 0
                and box["y"] + box["height"] <= viewport["height"]
                and box["x"] + box["width"] <= viewport["width"]), (selector, box, viewport)


# --- the library's defaults -------------------------------------------------------------------


def test_untouched_controls_give_the_library_defaults(fresh: Callable[..., Server],
                                                     browser: Any, images: dict[str, Path],
                                                     tmp_path: Path) -> None:
    server = fresh()
    server.wait_until_serving()
    page = _open(browser, server.url, {"width": 1280, "height": 800})
    _upload(page, images["content"])
    _advanced(page)
    for name in ui_fields():
        page.locator(f"#opt-{name}").wait_for(state="visible")
    shown = {element.get_attribute("id")[len("opt-"):]
             for element in page.locator("[id^=opt-]").all() if element.is_visible()}
    assert shown == set(ui_fields())  # every option the page shows, and only those
    defaults = StyleConfig()
    layers = page.locator("#opt-style_layers textarea, #opt-style_layers input").first
    assert layers.input_value() == layer_list(defaults.style_layers, defaults.style_layer_weights)
    page.click("#stylize")
    _until(page, "Iteration")
    page.click("#stop")  # the PNG of the first steps carries the whole config
    _until(page, "Stopped")
    params = _download(page, "#download", tmp_path / "defaults.png")
    assert params["config"] == defaults.replace(weights="random", device="cpu").to_dict()
    page.context.close()


# --- paintings, weights, the mask ---------------------------------------------------------------


def test_two_paintings_a_mask_painted_from_outside_kept_colours_the_slider_and_the_history(
        page: Any, images: dict[str, Path], tmp_path: Path) -> None:
    _upload(page, images["content"], styles=(0, 1))  # The Starry Night and The Scream
    assert "The Scream (1893): weight (blue brush)" in page.locator("#slot-1").inner_text()
    _number(page, "weight-1", 2)
    # Blue from outside the photo's top edge to outside its bottom, down the middle; then
    # Fill paints the right half (bounded by the stroke) blue: the left stays the first's.
    _stroke(page, 1, [(0.5, -0.1), (0.5, 1.1)])
    _stroke(page, 1, [(0.85, 0.5)], tool="fill")
    painted = _painted(page)
    assert painted[0, painted.shape[1] // 2, 3] == 255  # the stroke reached the top edge
    assert (painted[:, -5:, 3] == 255).all() and (painted[:, :5, 3] == 0).all()
    page.locator("#opt-preserve_color input").click()
    page.get_by_role("option", name="luminance").click()
    assert "after 6/6 iterations" in _run(page, 6)
    assert page.locator("#compare").is_visible() and not page.locator("#canvas").is_visible()
    params = _download(page, "#download", tmp_path / "result.png")
    assert params[".name"] == "photo-starry_night+the_scream-1.png"
    assert params["config"]["preserve_color"] == "luminance"
    assert params["config"]["style_blend"] == pytest.approx([5 / 7, 2 / 7])
    assert [s["name"] for s in params["inputs"]["styles"]] == ["starry_night.jpg",
                                                               "the_scream.jpg"]
    assert params["inputs"]["content"]["name"] == "photo.png"
    grey = _grey(params["config"]["mask"])  # the server's copy, same machine
    assert set(np.unique(grey)) == {0, 255}
    assert grey[:, :40].mean() == 0 and grey[:, -40:].mean() == 255
    # A second run: the details follow it; each thumbnail has its own caption.
    _run(page, 6)
    assert "#2 photo-starry_night+the_scream-2.png" in page.locator("#entry-details").inner_text()
    captions = page.locator("#history .caption-label").all_inner_texts()
    assert captions[0].startswith("#2") and captions[1].startswith("#1")
    page.locator("#history .thumbnail-item").nth(1).click()  # the first run (newest first)
    details = page.locator("#entry-details")
    _wait(lambda: "#1 " in details.inner_text(), what="the first's details")
    assert "Keep the photo's colours: luminance" in details.inner_text()
    assert "the_scream.jpg (weight 2)" in details.inner_text()
    first = _download(page, "#download", tmp_path / "first.png")
    assert first["config"] == params["config"] and first["iterations_done"] == 6
    # Re-run with changes: the settings, the weights and the mask come back.
    _number(page, "opt-iterations", 9)
    page.locator("#mask button.clear").click()
    assert (_painted(page)[:, :, 3] == 0).all()
    page.click("#rerun")
    _until(page, "Settings loaded")
    assert page.locator("#opt-iterations input[type=number]").input_value() == "6"
    assert page.locator("#weight-1 input[type=number]").input_value() == "2"
    restored = _painted_once(page, lambda p: (p[:, :, 3] > 0).any(), "the mask back")
    assert (restored[:, -5:, 2] > 200).all() and (restored[:, :5, 0] > 200).all()  # blue, red


def test_weights_stay_with_their_paintings_and_the_gallery_marks_the_chosen(
        page: Any, images: dict[str, Path], tmp_path: Path) -> None:
    page.click("#example")  # the example photo and The Starry Night, marked in the gallery
    page.wait_for_selector("#slot-0 img")
    captions = page.locator("#styles .caption-label")
    _wait(lambda: captions.nth(0).inner_text().startswith("✔ 1 red"),
          what="the example's painting marked")
    page.locator("#styles .thumbnail-item").nth(1).click()
    page.wait_for_selector("#slot-1 img")
    _number(page, "weight-0", 5)
    _number(page, "weight-1", 3)
    page.locator("#styles .thumbnail-item").nth(2).click()  # The Shipwreck joins at 5
    page.wait_for_selector("#slot-2 img")

    def weights() -> list[str]:
        """The shown slots' weights, read at one moment (a slot may go while it is read)."""
        return list(page.evaluate("""() => [0, 1, 2]
            .map((i) => document.querySelector(`#slot-${i}`))
            .filter((slot) => slot && slot.checkVisibility())
            .map((slot) => slot.querySelector('input[type=number]')?.value)"""))

    _wait(lambda: weights() == ["5", "3", "5"], what="three weights: 5, 3 and the new one's 5")
    page.click("#remove-0")  # The Starry Night goes: the others keep their weights
    _wait(lambda: weights() == ["3", "5"], what="two weights left")
    assert "The Scream (1893): weight (red brush)" in page.locator("#slot-0").inner_text()
    _wait(lambda: [c.split(" · ")[0] for c in captions.all_inner_texts()]
             == ["The Starry Night (1889)", "✔ 1 red", "✔ 2 blue"], what="the marks to follow")
    _number(page, "opt-size", 64)
    _run(page, 2)
    params = _download(page, "#download", tmp_path / "blend.png")
    assert params["config"]["style_blend"] == pytest.approx([3 / 8, 5 / 8])


def test_your_own_painting_joins_the_gallery_in_full(page: Any, images: dict[str, Path]) -> None:
    with page.expect_file_chooser() as chooser:
        page.click("#upload-style")
    chooser.value.set_files(images["style"])
    _until(page, "Added your painting")
    thumbnails = page.locator("#styles .thumbnail-item")
    assert thumbnails.count() == 4
    gallery = page.locator("#styles").bounding_box()
    for index in range(4):  # every thumbnail whole inside the gallery: no sliver to scroll
        box = thumbnails.nth(index).bounding_box()
        assert box["height"] > 50
        assert gallery["y"] <= box["y"] and box["y"] + box["height"] <= gallery["y"] + gallery["height"]
    assert "my painting (yours): weight (red brush)" in page.locator("#slot-0").inner_text()


def test_an_uploaded_mask_paints_the_regions_and_comes_back_with_the_files(
        page: Any, images: dict[str, Path], tmp_path: Path) -> None:
    _upload(page, images["content"], styles=(0, 2))
    with page.expect_file_chooser() as chooser:
        page.click("#upload-mask")
    chooser.value.set_files(images["mask"])
    _until(page, "Mask halves.png loaded")
    painted = _painted_once(page, lambda p: (p[:, :, 3] == 255).all(), "the mask shown")
    assert (painted[:30, :, 0] > 200).all() and (painted[-30:, :, 2] > 200).all()  # red, blue
    _run(page, 3)
    page.click("#copy")
    page.wait_for_selector("#command-files a")
    names = _downloads(page, "#command-files", tmp_path / "files")
    assert "mask.png" in names
    params = read_parameters(tmp_path / "files" / names[0])
    grey = _grey(tmp_path / "files" / "mask.png")
    assert (grey == _grey(params["config"]["mask"])).all()
    assert grey[:30].mean() == 0 and grey[-30:].mean() == 255


def test_keep_transparency_gives_a_transparent_png(page: Any, images: dict[str, Path],
                                                   tmp_path: Path) -> None:
    _upload(page, images["rgba"])
    page.locator("#opt-keep_alpha input").check()
    _run(page, 2)
    params = _download(page, "#download", tmp_path / "cut-out.png")
    assert params["config"]["keep_alpha"] is True
    with Image.open(tmp_path / "cut-out.png") as result:
        assert result.mode == "RGBA"
        alpha = np.asarray(result.getchannel("A"))
    third = alpha.shape[1] // 3
    assert (alpha[:, :third] == 0).all() and (alpha[:, -third:] == 255).all()


# --- going further --------------------------------------------------------------------------


def test_continue_enlarge_and_the_copied_commands_work_as_written(
        page: Any, images: dict[str, Path], tmp_path: Path) -> None:
    _upload(page, images["jpeg"])  # the studio works on an upright PNG copy: photo.png
    _run(page, 3)
    # Copy as command: the commands as the page shows them, run in a folder of the files.
    box = page.locator("#print-size input")
    box.fill("160")
    box.press("Enter")
    page.click("#copy")
    page.wait_for_selector("#command-files a")
    text = _wait(lambda: page.locator("#command .cm-content").inner_text(), what="the commands")
    folder = tmp_path / "mine"
    names = _downloads(page, "#command-files", folder)
    assert names[:3] == ["photo-starry_night-1.png", "photo.png", "starry_night.jpg"]
    commands = [line for line in text.splitlines() if line.startswith("estilo")]
    assert len(commands) == 2 and "--max-memory 8GB" in commands[1] and "--size 160" in commands[1]
    env = subprocess_env(PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                              os.environ.get("PATH", "")]))
    for line in commands:
        done = subprocess.run(shlex.split(line), cwd=folder, env=env, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
    again = _grey(folder / "photo-starry_night-1-again.png")
    assert np.abs(again - _grey(folder / names[0])).max() <= 2  # the same picture
    printed = folder / "photo-starry_night-1-160px.png"
    with Image.open(printed) as image:
        assert image.size == (160, 120)
    assert read_parameters(printed)["iterations_done"] == 3 + 3  # the run's iterations again
    # The downloaded PNG resumes from the user's own files (known by their sha256).
    done = subprocess.run([sys.executable, "-m", "estilo", "resume", str(folder / names[0]),
                           "--content", str(images["jpeg"]), "--style",
                           str(folder / "starry_night.jpg"), "--iterations", "2", "-o",
                           str(tmp_path / "resumed.png")], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert read_parameters(tmp_path / "resumed.png")["iterations_done"] == 5
    # Continue: the Iterations more from the picture; Enlarge: twice its size.
    assert "after 4/4" in _run(page, 4, "#continue")
    more = _download(page, "#download", tmp_path / "more.png")
    assert more["iterations_done"] == 3 + 4 and more["size"] == [64, 48]
    assert more["resumed_from"]["iterations_done"] == 3
    assert "(continued)" in page.locator("#history .caption-label").first.inner_text()
    _run(page, 2, "#enlarge")
    bigger = _download(page, "#download", tmp_path / "bigger.png")
    assert bigger["size"] == [128, 96] and bigger["iterations_done"] == 7 + 2
    page.click("#enlarge")  # 128 px is this server's largest
    _until(page, "already this server's largest size")


# --- layout -----------------------------------------------------------------------------------


def test_on_a_desktop_the_preview_and_stylize_stay_in_view(page: Any,
                                                          images: dict[str, Path]) -> None:
    _upload(page, images["content"])
    _number(page, "opt-iterations", 400)
    page.locator("#opt-seed").scroll_into_view_if_needed()  # down the controls, Advanced open
    assert page.evaluate("scrollY") > 300
    page.click("#stylize")
    _until(page, "Iteration")
    _in_view(page, "#stylize", "#canvas")
    assert page.locator("#canvas img").count() == 1
    page.click("#stop")
    _until(page, "Stopped")


def test_on_a_phone_one_column_the_preview_in_view_and_a_48_mp_photo_upright(
        browser: Any, server: Server, tmp_path: Path) -> None:
    page = _open(browser, server.url, {"width": 390, "height": 844})
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        photo = page.locator("#photo-file").bounding_box()
        result = page.locator("#canvas").bounding_box()
        assert result["y"] > photo["y"] + photo["height"]  # stacked, the result below
        assert page.locator("#styles").bounding_box()["width"] > 300  # the full width
        title = page.locator("#mask .title").bounding_box()
        tools = page.locator("#mask .tools").bounding_box()
        assert title["y"] + title["height"] <= tools["y"]  # the toolbar under its title
        camera = Image.new("RGB", (8000, 6000), "white")  # a 48 MP sensor's picture
        camera.paste((200, 30, 30), (0, 0, 8000, 2000))
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 clockwise to show"
        camera.save(tmp_path / "IMG_0001.JPG", "JPEG", exif=exif, quality=70)
        page.locator("#photo-file input[type=file]").set_input_files(tmp_path / "IMG_0001.JPG")
        _until(page, "Photo ready")
        page.locator("#styles .thumbnail-item").nth(2).click()
        page.wait_for_selector("#slot-0 img")
        _number(page, "opt-iterations", 400)
        page.click("#stylize")  # the page scrolls to the preview: both in view
        _until(page, "Iteration")
        _in_view(page, "#stylize", "#canvas")
        page.click("#stop")
        _until(page, "Stopped")
        params = _download(page, "#download", tmp_path / "phone.png")
        assert params["size"] == [48, 64]  # upright (portrait), at the page's size
        assert params["inputs"]["content"]["name"] == "IMG_0001.png"
        assert params["inputs"]["content"]["upload"]["name"] == "IMG_0001.JPG"
        page.wait_for_selector("#compare img >> nth=1")
        assert page.locator("#compare").bounding_box()["width"] <= 390
    finally:
        page.context.close()


# --- bad input, the page's words, the API, the queue ----------------------------------------------


def test_a_refused_photo_leaves_the_box_its_message_stays_in_the_pages_words(
        page: Any, images: dict[str, Path], server: Server) -> None:
    page.locator("#photo-file input[type=file]").set_input_files(images["bad"])
    _until(page, "not a supported image")
    assert "notes.png" in _status(page) and "Traceback" not in page.content()
    _wait(lambda: page.locator("#photo-file a").count() == 0, what="the photo box emptied")
    page.locator("#styles .thumbnail-item").nth(0).click()
    page.wait_for_selector("#slot-0 img")
    assert "not a supported image" in _status(page)  # still there
    page.locator("#photo-file input[type=file]").set_input_files(images["tiny"])
    line = _until(page, "too small")
    assert "--" not in line and "“Size (long side, px)”" in line
    text = page.locator("body").inner_text()
    for words in ("--", "WxH", "image path", "same syntax", "random seed", "pooling layers",
                  "(default"):
        assert words not in text, words
    page.goto(server.url)
    _upload(page, images["content"])  # the same page, reloaded, still works
    assert _get(server.url) == 200


def test_an_error_replaces_the_last_result_with_one_message(page: Any,
                                                           images: dict[str, Path]) -> None:
    _upload(page, images["content"])
    _run(page, 3)
    assert page.locator("#download a").count() >= 1
    page.locator("#photo-file button[aria-label='Clear']").click()
    page.locator("#photo-file input[type=file]").set_input_files(images["bad"])
    _until(page, "not a supported image")
    status = _status(page)
    assert "Done" not in status and "Download the PNG" not in status
    assert page.locator("#download a").count() == 0  # the old PNG is no longer offered
    assert page.locator("#compare img").count() == 0  # nor the old painting
    assert not page.locator("#continue").is_visible()  # nor going further with it
    # One message: in the status line; no error toast, no "Error" badges over the outputs.
    assert page.get_by_text("not a supported image", exact=False).count() == 1
    assert page.get_by_text("Error", exact=True).count() == 0


def test_the_rest_route_cannot_skip_the_queue(server: Server) -> None:
    request = urllib.request.Request(server.url + "gradio_api/api/stylize",
                                     data=b'{"data": []}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 404 and b"join the queue" in info.value.read()


def test_no_api_link_and_no_share_hint(page: Any, server: Server) -> None:
    assert page.get_by_text("Use via API", exact=False).count() == 0
    assert page.locator("footer a[href*='view=api'], button:has-text('API')").count() == 0
    assert "public domain" in page.locator("#credits").inner_text()
    log = server.log_path.read_text()
    assert "share=True" not in log and "To create a public link" not in log
    assert f"estilo web: serving on {server.url}" in log


def test_stop_ends_the_run_and_keeps_the_image(page: Any, images: dict[str, Path]) -> None:
    _upload(page, images["content"])
    _number(page, "opt-iterations", 400)
    page.click("#stylize")
    _until(page, "Iteration")
    first = page.locator("#canvas img").get_attribute("src")
    _wait(lambda: page.locator("#canvas img").get_attribute("src") != first,
             what="a new preview")  # live
    page.click("#stop")
    done = int(_until(page, "Stopped").split("after ")[1].split("/")[0])
    assert 1 <= done < 400
    page.wait_for_selector("#compare img >> nth=1")
    assert page.locator("#download a").count() >= 1


def test_a_second_job_waits_with_its_queue_position_and_a_full_queue_refuses(
        page: Any, browser: Any, server: Server, images: dict[str, Path]) -> None:
    others = [_open(browser, server.url, {"width": 1000, "height": 800})
              for _ in range(QUEUE_SIZE + 1)]
    before = rss_mb(server.process.pid)[0]
    for tab in (page, *others):
        _upload(tab, images["content"])
        _number(tab, "opt-iterations", 400)
    page.click("#stylize")
    _until(page, "Iteration")

    def answered(tab: Any) -> str:
        """What the server said to a tab's click: its queue position, or that it is full."""
        body = tab.locator("body").inner_text()
        return ("busy" if "currently busy" in body else
                "queued" if "queue:" in body else "")

    # One tab after the other, each once its click was answered: the first QUEUE_SIZE wait
    # (Gradio shows their positions), the one after them is refused.
    for tab in others:
        tab.click("#stylize")
        _wait(lambda tab=tab: answered(tab), what="the click answered")
    assert [answered(tab) for tab in others] == ["queued"] * QUEUE_SIZE + ["busy"]
    assert others[0].get_by_text("queue: 1/", exact=False).count() >= 1
    for tab in others:
        tab.click("#stop")  # stopped while waiting: it must not run when its turn comes
    page.click("#stop")
    _until(others[0], "Stopped before it started")
    assert "Stopped" in _status(page)
    assert rss_mb(server.process.pid)[0] - before < 300  # memory stays bounded
    for tab in others:
        tab.context.close()


# --- nothing left behind ------------------------------------------------------------------------


def test_a_closed_tab_stops_its_run_and_leaves_nothing(browser: Any, server: Server,
                                                      images: dict[str, Path]) -> None:
    root = server.root
    sessions = set(root.iterdir())
    page = _open(browser, server.url, {"width": 1280, "height": 800})
    _upload(page, images["content"])
    mine = _wait(lambda: set(root.iterdir()) - sessions - {root / "bundled"},
                 what="the tab's folder")
    _number(page, "opt-iterations", 400)
    page.click("#stylize")
    _until(page, "Iteration")
    outside = set(server.temp.iterdir())
    page.context.close()  # the tab goes while its job runs
    _wait(lambda: not any(folder.exists() for folder in mine),
          what="the closed tab's folder removed")
    second = _open(browser, server.url, {"width": 1280, "height": 800})
    try:  # the run stopped: the next one starts at once
        _upload(second, images["content"])
        _run(second, 2)
    finally:
        second.context.close()
    assert set(server.temp.iterdir()) == outside  # no orphan PNG in the temp folder
    log = server.log_path.read_text()
    assert "Traceback" not in log and "FileNotFoundError" not in log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_server_leaves_nothing_in_the_temp_folder_when_stopped(
        signum: int, fresh: Callable[..., Server], browser: Any, images: dict[str, Path],
        tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: a killed server's leftovers
    leftover = tmp_path / "tmp" / f"estilo-web-{dead.pid}-x1y2"
    (leftover / "session").mkdir(parents=True)
    (leftover / "session" / "someones-photo.png").write_bytes(b"...")
    server = fresh("--size", "64", "--scales", "1")
    server.wait_until_serving()
    assert not leftover.exists()  # removed at start
    page = _open(browser, server.url, {"width": 1280, "height": 800})
    _upload(page, images["content"])  # the user's photo, in the server's folder
    _number(page, "opt-iterations", 400)
    page.click("#stylize")
    _until(page, "Iteration")
    server.process.send_signal(signum)  # once, during a run
    assert server.process.wait(timeout=PATIENCE) == 0
    page.context.close()
    assert list(server.temp.iterdir()) == []
    assert "Traceback" not in server.log_path.read_text()


def test_a_sigterm_soon_after_start_stops_the_server_and_leaves_nothing(
        fresh: Callable[..., Server]) -> None:
    server = fresh()
    assert server.root.name.startswith(f"estilo-web-{server.process.pid}-")  # it is starting
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=PATIENCE) == 0
    assert list(server.temp.iterdir()) == []
