"""The studio served by ``estilo web`` on loopback, driven by a real Chromium: every control,
the phone layout, bad uploads, the closed API and the queue.

The browser is Debian's Chromium driven by Playwright (no browser download). Without it the
browser tests skip, except under ``ESTILO_REQUIRE_BROWSER=1`` (set by .ci/run), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import make_content, make_style
from estilo.io.output import read_parameters
from imaging import subprocess_env

pytest.importorskip("gradio")
# Gradio's client and Playwright leave event loops and sockets to the garbage collector.
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUEUE_SIZE = 4
SERVER_OPTIONS = ["--weights", "random", "--size", "64", "--iterations", "30", "--scales", "1",
                  "--device", "cpu", "--style-layers", "conv1_1,conv2_1,conv3_1",
                  "--content-layers", "conv3_1", "--preview-every", "0.2", "--max-size", "128",
                  "--max-iterations", "400", "--queue-size", str(QUEUE_SIZE),
                  "--max-pixels", "13000000", "--max-upload-mb", "4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """``estilo web`` with random weights and tiny sizes, on a free loopback port; its log."""
    port = _free_port()
    env = subprocess_env(GRADIO_ANALYTICS_ENABLED="False",
                         GRADIO_TEMP_DIR=str(tmp_path_factory.mktemp("gradio")))
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "estilo", "web", "--port", str(port),
                                *SERVER_OPTIONS], env=env, stdout=log, stderr=subprocess.STDOUT,
                               text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if _get(url) == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"estilo web did not start: see {log.name}")
    yield url, process, Path(log.name)
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    paths = {"content": folder / "photo.png", "style": folder / "my painting.png",
             "bad": folder / "notes.png"}
    make_content((96, 72)).save(paths["content"])
    make_style((64, 64)).save(paths["style"])
    paths["bad"].write_bytes(b"these are my notes, not a picture")
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
def page(browser: Any, server: tuple[str, Any]) -> Iterator[Any]:
    page = _open(browser, server[0], {"width": 1200, "height": 1000})
    yield page
    page.context.close()


def _open(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#stylize")
    return page


def _number(page: Any, elem_id: str, value: float) -> None:
    """Type a slider's value into its number box (and wait for the slider to take it)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.wait_for(state="visible")
    box.fill(str(value))
    box.press("Enter")
    slider = page.locator(f"#{elem_id} input[type=range]")
    _wait_for(lambda: float(slider.input_value()) == value, timeout=10)


def _set_iterations(page: Any, n: int) -> None:
    if not page.locator("#opt-iterations").is_visible():
        page.click("#advanced button")  # open the "Advanced" accordion
    _number(page, "opt-iterations", n)


def _upload(page: Any, images: dict[str, Path], styles: tuple[int, ...] = (0,)) -> None:
    """Upload the photo, then click bundled paintings (their gallery positions)."""
    page.locator("#photo-file input[type=file]").set_input_files(images["content"])
    page.wait_for_selector("#mask canvas")
    _wait_for(lambda: "Photo ready" in _status(page))
    for n, index in enumerate(styles):
        page.locator("#styles .thumbnail-item").nth(index).click()
        page.wait_for_selector(f"#slot-{n} img")


def _status(page: Any) -> str:
    return str(page.locator("#status").inner_text())


def _wait_for(condition: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _paint(page: Any, brush: int, x0: float, x1: float) -> None:
    """Brush strokes of the slot's colour across the mask editor, from x0 to x1 (fractions)."""
    canvas = page.locator("#mask canvas").first
    canvas.scroll_into_view_if_needed()
    page.locator("#mask button[aria-label='Brush']").click()
    page.locator("#mask button[aria-label='Color']").click()
    page.locator("#mask button.color").nth(brush).click()
    box = canvas.bounding_box()
    for y in (0.3, 0.5, 0.7):
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for k in range(1, 11):
            x = x0 + (x1 - x0) * k / 10
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.up()


def _download(page: Any, selector: str, target: Path) -> dict[str, Any]:
    with page.expect_download() as download:
        page.locator(f"{selector} a").first.click()
    download.value.save_as(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    params = read_parameters(target)
    assert params is not None
    return params


def test_two_paintings_a_painted_mask_kept_colours_the_slider_and_the_history(
        page: Any, images: dict[str, Path], tmp_path: Path) -> None:
    _upload(page, images, styles=(0, 1))  # The Starry Night and The Scream
    assert "The Scream (1893): weight (blue brush)" in page.locator("#slot-1").inner_text()
    _number(page, "weight-1", 2)
    _paint(page, 0, 0.05, 0.3)  # red on the left: the first painting
    _paint(page, 1, 0.7, 0.95)  # blue on the right: the second
    page.locator("#opt-preserve_color input").click()
    page.get_by_role("option", name="luminance").click()
    _set_iterations(page, 6)
    page.click("#stylize")
    _wait_for(lambda: "Done" in _status(page))
    assert "after 6/6 iterations" in _status(page)
    # The before/after slider replaces the live preview, photo against painting.
    _wait_for(lambda: page.locator("#compare img").count() == 2)
    assert page.locator("#compare").is_visible() and not page.locator("#canvas").is_visible()
    params = _download(page, "#download", tmp_path / "result.png")
    assert params["config"]["preserve_color"] == "luminance"
    assert params["config"]["style_blend"] == pytest.approx([5 / 7, 2 / 7])
    assert [s["name"] for s in params["inputs"]["styles"]] == ["starry_night.jpg",
                                                               "the_scream.jpg"]
    assert params["inputs"]["content"]["name"] == "photo.png"
    with Image.open(params["config"]["mask"]) as mask:  # the server's copy, same machine
        grey = np.asarray(mask.convert("L"), dtype=float)
    third = grey.shape[1] // 3
    assert set(np.unique(grey)) == {0, 255}
    assert grey[:, :third].mean() < 40 and grey[:, -third // 2:].mean() > 200
    # The session's history: one thumbnail; open it, download its PNG, load its settings.
    page.click("#stylize")  # a second run, same settings
    _wait_for(lambda: page.locator("#history .thumbnail-item").count() == 2)
    page.locator("#history .thumbnail-item").nth(1).click()  # the first run (newest first)
    details = page.locator("#entry-details")
    _wait_for(lambda: "preserve color: luminance" in details.inner_text(), timeout=20)
    assert "the_scream.jpg (weight 2)" in details.inner_text()
    first = _download(page, "#entry-download", tmp_path / "first.png")
    assert first["config"] == params["config"] and first["iterations_done"] == 6
    _set_iterations(page, 9)
    page.click("#rerun")
    _wait_for(lambda: "Settings loaded" in _status(page))
    assert page.locator("#opt-iterations input[type=number]").input_value() == "6"
    assert page.locator("#weight-1 input[type=number]").input_value() == "2"


def test_your_own_painting_joins_the_gallery(page: Any, images: dict[str, Path]) -> None:
    with page.expect_file_chooser() as chooser:
        page.click("#upload-style")
    chooser.value.set_files(images["style"])
    _wait_for(lambda: "Added your painting" in _status(page))
    assert page.locator("#styles .thumbnail-item").count() == 4
    assert "my painting (yours): weight (red brush)" in page.locator("#slot-0").inner_text()


def test_stop_ends_the_run_and_keeps_the_image(page: Any, images: dict[str, Path]) -> None:
    _upload(page, images)
    _set_iterations(page, 400)
    page.click("#stylize")
    _wait_for(lambda: "Iteration" in _status(page))
    first = page.locator("#canvas img").get_attribute("src")
    _wait_for(lambda: page.locator("#canvas img").get_attribute("src") != first)  # live
    page.click("#stop")
    _wait_for(lambda: "Stopped" in _status(page), timeout=30)
    done = int(_status(page).split("after ")[1].split("/")[0])
    assert 1 <= done < 400
    _wait_for(lambda: page.locator("#compare img").count() == 2)
    assert page.locator("#download a").count() >= 1


def test_on_a_phone_the_page_stacks_and_a_camera_photo_comes_out_upright(
        browser: Any, server: tuple[str, Any], tmp_path: Path) -> None:
    page = _open(browser, server[0], {"width": 390, "height": 844})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the phone
        photo = page.locator("#photo-file").bounding_box()
        result = page.locator("#canvas").bounding_box()
        assert result["y"] > photo["y"] + photo["height"]  # stacked, the result below
        assert page.locator("#styles").bounding_box()["width"] > 300  # the full width
        camera = Image.new("RGB", (4000, 3000), "white")  # the sensor's picture, landscape
        camera.paste((200, 30, 30), (0, 0, 4000, 1000))
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 clockwise to show"
        camera.save(tmp_path / "IMG_0001.JPG", "JPEG", exif=exif, quality=70)
        page.locator("#photo-file input[type=file]").set_input_files(tmp_path / "IMG_0001.JPG")
        _wait_for(lambda: "Photo ready" in _status(page))
        page.locator("#styles .thumbnail-item").nth(2).click()
        _set_iterations(page, 3)
        page.click("#stylize")
        _wait_for(lambda: "Done" in _status(page))
        assert "at 48x64" in _status(page) or "after 3/3" in _status(page)
        params = _download(page, "#download", tmp_path / "phone.png")
        assert params["size"] == [48, 64]  # upright (portrait), at the page's size
        assert params["inputs"]["content"]["name"] == "IMG_0001.png"
        assert page.locator("#compare").bounding_box()["width"] <= 390
    finally:
        page.context.close()


def test_a_non_image_gives_estilo_message_and_the_app_keeps_serving(
        page: Any, images: dict[str, Path], server: tuple[str, Any]) -> None:
    page.locator("#photo-file input[type=file]").set_input_files(images["bad"])
    _wait_for(lambda: "not a supported image" in _status(page))
    assert "notes.png" in _status(page)
    assert "Traceback" not in page.content()
    page.goto(server[0])
    _upload(page, images)  # the same page, reloaded, still works
    assert _get(server[0]) == 200


def test_the_rest_route_cannot_skip_the_queue(server: tuple[str, Any]) -> None:
    request = urllib.request.Request(server[0] + "gradio_api/api/stylize",
                                     data=b'{"data": []}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 404 and b"join the queue" in info.value.read()


def test_a_second_job_waits_with_its_queue_position_and_a_full_queue_refuses(
        page: Any, browser: Any, server: tuple[str, Any], images: dict[str, Path]) -> None:
    others = [_open(browser, server[0], {"width": 1000, "height": 800})
              for _ in range(QUEUE_SIZE + 1)]
    before = rss_mb(server[1].pid)[0]
    for tab in (page, *others):
        _upload(tab, images)
        _set_iterations(tab, 400)
    page.click("#stylize")
    _wait_for(lambda: "Iteration" in _status(page))
    others[0].click("#stylize")
    others[0].get_by_text("queue: 1/1", exact=False).first.wait_for()  # Gradio's position
    for tab in others[1:]:
        tab.click("#stylize")
    # one too many: Gradio 6 says "This application is currently busy. Please try again."
    refused = _wait_for(lambda: [n for n, tab in enumerate(others)
                                 if "currently busy" in tab.locator("body").inner_text()],
                        timeout=30)
    # Exactly one is refused; which one is the order the clicks reach the server (under load
    # a later tab's may overtake an earlier one's); the first waiting tab keeps its place.
    assert len(refused) == 1 and refused[0] != 0, [_status(tab) for tab in others]
    for tab in others:
        tab.click("#stop")  # stopped while waiting: it must not run when its turn comes
    page.click("#stop")
    _wait_for(lambda: "Stopped before it started" in _status(others[0]), timeout=60)
    assert "Stopped" in _status(page)
    assert rss_mb(server[1].pid)[0] - before < 300  # memory stays bounded
    for tab in others:
        tab.context.close()


def test_an_error_replaces_the_last_result_with_one_message(page: Any,
                                                           images: dict[str, Path]) -> None:
    _upload(page, images)
    _set_iterations(page, 5)
    page.click("#stylize")
    _wait_for(lambda: page.locator("#compare img").count() == 2)
    assert page.locator("#download a").count() >= 1
    page.locator("#photo-file button[aria-label='Clear']").click()
    page.locator("#photo-file input[type=file]").set_input_files(images["bad"])
    _wait_for(lambda: "not a supported image" in _status(page))
    status = _status(page)
    assert "Done" not in status and "Download the PNG" not in status
    assert page.locator("#download a").count() == 0  # the old PNG is no longer offered
    assert page.locator("#compare img").count() == 0  # nor the old painting
    # One message: in the status line; no error toast, no "Error" badges over the outputs.
    assert page.get_by_text("not a supported image", exact=False).count() == 1
    assert page.get_by_text("Error", exact=True).count() == 0


def test_no_api_link_and_no_share_hint(page: Any, server: tuple[str, Any, Path]) -> None:
    assert page.get_by_text("Use via API", exact=False).count() == 0
    assert page.locator("footer a[href*='view=api'], button:has-text('API')").count() == 0
    assert "public domain" in page.locator("#credits").inner_text()
    log = server[2].read_text()
    assert "share=True" not in log and "To create a public link" not in log
    assert f"estilo web: serving on {server[0]}" in log
