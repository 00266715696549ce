"""Take the README's screenshots of the web studio, on a desktop and on a phone.

    flock /tmp/estilo-heavy.lock env OMP_NUM_THREADS=2 python docs/web/take_screenshots.py

Needs the web and test extras and Debian's Chromium (apt-get install chromium). Uses the
real caffe weights and only bundled pictures (the example photo; The Starry Night and The
Scream) at 320 px with the default schedule; writes docs/web/*.png (quantised):

* ``studio-running.png``: a 1280x800 screen: two paintings with weights, the mask painted
  (a stroke, then Fill), the live preview beside the controls;
* ``studio-result.png``: the whole page once done: the before/after slider, Continue,
  Enlarge and the commands "Copy as command" gave, the history;
* ``phone-choose.png`` and ``phone-result.png``: the page on a 390x844 phone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from estilo import StyleConfig
from estilo.web import Limits, Studio, launch

HERE = Path(__file__).resolve().parent
TIMEOUT = int(os.environ.get("SHOTS_TIMEOUT_MS", "600000"))  # ms per step of the script
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    """A screenshot, quantised to keep it small."""
    path = HERE / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    Image.open(path).convert("RGB").quantize(128).save(path, optimize=True)
    print(f"{path.name}: {path.stat().st_size // 1024} KB", flush=True)


def stroke(page: Page, brush: int, points: list[tuple[float, float]], tool: str = "brush") -> None:
    """A stroke of a painting's colour through ``points`` (fractions of the photo; outside
    0-1: beyond its edge), or one click of the Fill tool."""
    page.locator("#mask button.colour").nth(brush).click()
    page.locator(f"#mask button.tool[data-tool={tool}]").click()
    frame = page.locator("#mask .frame")
    frame.scroll_into_view_if_needed()
    box: Any = frame.bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for k in range(1, 11):
            page.mouse.move(*at(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10))
    page.mouse.up()


def wait_status(page: Page, text: str) -> None:
    """Wait until the status line shows ``text``; on a timeout, say what it shows."""
    try:
        page.wait_for_function(f"document.querySelector('#status').innerText.includes({text!r})")
    except PlaywrightTimeout:
        page.screenshot(path=HERE / "failed.png", full_page=True)
        raise RuntimeError(f"waited for {text!r}; the status says "
                           f"{page.locator('#status').inner_text()!r} (docs/web/failed.png)")


def settle(page: Page) -> None:
    """Wait until every image on the page has loaded (and the fonts)."""
    page.wait_for_function("Array.from(document.images).every(i => i.complete) && "
                           "document.fonts.status === 'loaded'")


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = StyleConfig(size=320, device="cpu")
    studio = Studio(config, Limits(preview_every=0.5))
    demo = launch(studio, port=port, block=False)
    url = f"http://127.0.0.1:{port}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(TIMEOUT)
        page.goto(url)
        page.wait_for_selector("#stylize")
        page.click("#example")  # the cat and The Starry Night
        page.wait_for_selector("#slot-0 img")
        page.locator("#styles .thumbnail-item").nth(1).click()  # and The Scream
        page.wait_for_selector("#slot-1 img")
        weight = page.locator("#weight-1 input[type=number]")
        weight.fill("3")
        weight.press("Enter")
        page.wait_for_selector("#mask .painter:not(.no-photo)")
        # The Scream on the left: a stroke from above the photo to below it, then Fill.
        stroke(page, 1, [(0.3, -0.1), (0.38, 0.5), (0.3, 1.1)])
        stroke(page, 1, [(0.1, 0.5)], tool="fill")
        page.click("#stylize")
        wait_status(page, "Iteration")
        page.locator("#mask .title").scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -80)")
        wait_status(page, "s left")
        settle(page)
        shoot(page, "studio-running")
        wait_status(page, "Done")
        page.wait_for_selector("#compare img >> nth=1")
        page.click("#copy")
        page.wait_for_selector("#command-files a")
        page.evaluate("window.scrollTo(0, 0)")
        settle(page)
        shoot(page, "studio-result", full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.set_default_timeout(TIMEOUT)
        phone.goto(url)
        phone.wait_for_selector("#stylize")
        phone.click("#example")
        phone.wait_for_selector("#slot-0 img")
        phone.wait_for_selector("#mask .painter:not(.no-photo)")
        settle(phone)
        shoot(phone, "phone-choose")
        phone.click("#stylize")  # the page scrolls to the preview
        wait_status(phone, "Done")
        phone.wait_for_selector("#compare img >> nth=1")
        settle(phone)
        shoot(phone, "phone-result")
        browser.close()
    studio.close()
    demo.close()


if __name__ == "__main__":
    main()
