"""The web app served by ``estilo web`` on loopback: a real Chromium, the API and a load test.

The browser is Debian's Chromium driven by Playwright (no browser download). Without it the
browser tests skip, except under ``ESTILO_REQUIRE_BROWSER=1`` (set by .ci/run), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_content, make_style
from estilo import StyleConfig
from estilo.io.output import read_parameters
from estilo.web import ui_fields
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
                  "--max-pixels", "1000000", "--max-upload-mb", "1"]


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
    paths = {"content": folder / "photo.png", "style": folder / "painting.png",
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
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server[0])
    page.wait_for_selector("#stylize")
    yield page
    context.close()


def _set_iterations(page: Any, n: int) -> None:
    box = page.locator("#opt-iterations input[type=number]")
    box.fill(str(n))
    box.press("Enter")


def _upload(page: Any, images: dict[str, Path]) -> None:
    page.locator("#content-file input[type=file]").set_input_files(images["content"])
    page.locator("#style-file input[type=file]").set_input_files(images["style"])
    page.wait_for_selector("#content-view img")
    page.wait_for_selector("#style-view img")


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


def test_upload_watch_the_preview_and_download_the_png(page: Any, images: dict[str, Path],
                                                        tmp_path: Path) -> None:
    _upload(page, images)
    _set_iterations(page, 60)
    page.click("#stylize")
    _wait_for(lambda: "Iteration" in _status(page))
    first = page.locator("#canvas img").get_attribute("src")
    later = _wait_for(lambda: (src := page.locator("#canvas img").get_attribute("src")) != first
                      and "Iteration" in _status(page) and src)
    assert later != first  # the preview changed while the run went on
    _wait_for(lambda: "Done" in _status(page))
    assert "after 60/60 iterations" in _status(page)
    with page.expect_download() as download:
        page.locator("#download a").first.click()
    saved = tmp_path / "result.png"
    download.value.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    params = read_parameters(saved)
    assert params["iterations_done"] == 60 and params["config"]["weights"] == "random"
    assert params["inputs"]["content"]["name"] == "photo.png"


def test_stop_ends_the_run_and_keeps_the_image(page: Any, images: dict[str, Path]) -> None:
    _upload(page, images)
    _set_iterations(page, 400)
    page.click("#stylize")
    _wait_for(lambda: "Iteration" in _status(page))
    page.click("#stop")
    _wait_for(lambda: "Stopped" in _status(page), timeout=30)
    done = int(_status(page).split("after ")[1].split("/")[0])
    assert 1 <= done < 400
    assert page.locator("#download a").count() >= 1
    assert page.locator("#canvas img").count() == 1


def test_a_non_image_gives_estilo_message_and_the_app_keeps_serving(
        page: Any, images: dict[str, Path], server: tuple[str, Any]) -> None:
    page.locator("#content-file input[type=file]").set_input_files(images["bad"])
    toast = page.get_by_text("not a supported image", exact=False).first
    toast.wait_for()
    assert "notes.png" in toast.inner_text()
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


def test_twenty_clients_are_queued_or_refused(server: tuple[str, Any],
                                              images: dict[str, Path]) -> None:
    from gradio_client import Client, handle_file

    url, process, _ = server
    clients = [Client(url, verbose=False) for _ in range(20)]
    before = rss_mb(process.pid)[0]
    start = threading.Barrier(len(clients))
    outcomes: list[str] = []
    chosen = {"size": 64, "iterations": 3, "init": "content"}
    values = [chosen.get(name, getattr(StyleConfig(), name)) for name in ui_fields()]

    def submit(client: Any) -> None:
        start.wait()
        try:
            client.predict(handle_file(str(images["content"])), handle_file(str(images["style"])),
                           *values, api_name="/stylize")
            outcomes.append("done")
        except Exception as e:  # noqa: BLE001 (the client raises a bare Exception when refused)
            outcomes.append("full" if "queue is full" in str(e).lower() else repr(e))

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    after = rss_mb(process.pid)[0]
    assert len(outcomes) == 20 and set(outcomes) <= {"done", "full"}, outcomes
    assert outcomes.count("done") >= 1 and outcomes.count("full") >= 1
    assert after - before < 300, (before, after)  # memory stays bounded
    assert _get(url) == 200


def test_a_second_job_waits_with_its_queue_position_shown(
        page: Any, browser: Any, server: tuple[str, Any], images: dict[str, Path]) -> None:
    other = browser.new_page(viewport={"width": 1200, "height": 1000})
    other.set_default_timeout(60_000)
    other.goto(server[0])
    other.wait_for_selector("#stylize")
    for tab in (page, other):
        _upload(tab, images)
        _set_iterations(tab, 400)
    page.click("#stylize")
    _wait_for(lambda: "Iteration" in _status(page))
    other.click("#stylize")
    other.get_by_text("queue: 1/1", exact=False).first.wait_for()  # Gradio's position display
    other.click("#stop")  # stopped while waiting: it must not run when its turn comes
    page.click("#stop")
    _wait_for(lambda: "Stopped before it started" in _status(other), timeout=60)
    assert "Stopped" in _status(page)
    other.close()


def test_an_error_replaces_the_last_result_with_one_message(page: Any,
                                                           images: dict[str, Path]) -> None:
    _upload(page, images)
    _set_iterations(page, 5)
    page.click("#stylize")
    _wait_for(lambda: "Done" in _status(page))
    assert page.locator("#download a").count() >= 1 and page.locator("#canvas img").count() == 1
    page.locator("#content-file button[aria-label='Clear']").click()
    page.locator("#content-file input[type=file]").set_input_files(images["bad"])
    _wait_for(lambda: "not a supported image" in _status(page))
    page.click("#stylize")
    time.sleep(1.0)  # the run's answer (the same message) has come back
    _wait_for(lambda: "not a supported image" in _status(page))
    status = _status(page)
    assert "Done" not in status and "PNG below" not in status
    assert page.locator("#download a").count() == 0  # the old PNG is no longer offered
    assert page.locator("#canvas img").count() == 0  # nor the old painting
    # One message: in the status line; no error toast, no "Error" badges over the outputs.
    assert page.get_by_text("not a supported image", exact=False).count() == 1
    assert page.get_by_text("Error", exact=True).count() == 0


def test_no_api_link_and_no_share_hint(page: Any, server: tuple[str, Any, Path]) -> None:
    assert page.get_by_text("Use via API", exact=False).count() == 0
    assert page.locator("footer a[href*='view=api'], button:has-text('API')").count() == 0
    log = server[2].read_text()
    assert "share=True" not in log and "To create a public link" not in log
    assert f"estilo web: serving on {server[0]}" in log
