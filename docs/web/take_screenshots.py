"""Take the README's screenshots of the web studio, on a desktop and on a phone.

    flock /tmp/estilo-heavy.lock env OMP_NUM_THREADS=2 python docs/web/take_screenshots.py

Needs the web and test extras and Debian's Chromium (apt-get install chromium). Uses the
real caffe weights and only bundled pictures (the example photo; The Starry Night and The
Scream) at 320 px with the default schedule; writes docs/web/*.png (quantised):

* ``studio-running.png``: two paintings chosen with weights, the mask painted, the live preview;
* ``studio-result.png``: the whole page once done: before/after slider and the history;
* ``phone-choose.png`` and ``phone-result.png``: the page on a 390x844 phone.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from estilo import StyleConfig
from estilo.web import Limits, Studio, launch

HERE = Path(__file__).resolve().parent
TIMEOUT = int(os.environ.get("SHOTS_TIMEOUT_MS", "300000"))  # ms per step of the script
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    """A screenshot, quantised to keep it small."""
    path = HERE / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    Image.open(path).convert("RGB").quantize(128).save(path, optimize=True)
    print(f"{path.name}: {path.stat().st_size // 1024} KB", flush=True)


def paint(page: Page, brush: int, x0: float, x1: float) -> None:
    """Strokes of a slot's brush across the mask editor, from x0 to x1 (fractions)."""
    canvas = page.locator("#mask canvas").first
    canvas.scroll_into_view_if_needed()
    page.locator("#mask button[aria-label='Brush']").click()
    page.locator("#mask button[aria-label='Color']").click()
    page.locator("#mask button.color").nth(brush).click()
    box: Any = canvas.bounding_box()
    for y in (0.15, 0.35, 0.55, 0.75, 0.9):
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for k in range(1, 11):
            x = x0 + (x1 - x0) * k / 10
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.up()


def wait_status(page: Page, text: str) -> None:
    """Wait until the status line shows ``text``; on a timeout, say what it shows."""
    try:
        page.wait_for_function(f"document.querySelector('#status').innerText.includes({text!r})")
    except PlaywrightTimeout:
        page.screenshot(path=HERE / "failed.png", full_page=True)
        raise RuntimeError(f"waited for {text!r}; the status says "
                           f"{page.locator('#status').inner_text()!r} (docs/web/failed.png)")


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = StyleConfig(size=320, device="cpu")
    demo = launch(Studio(config, Limits(preview_every=0.5)), port=port, block=False)
    url = f"http://127.0.0.1:{port}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
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
        paint(page, 1, 0.12, 0.4)  # The Scream on the left, the rest The Starry Night
        page.click("#stylize")
        wait_status(page, "Iteration")
        page.evaluate("window.scrollTo(0, 0)")
        time.sleep(2.0)
        shoot(page, "studio-running")
        wait_status(page, "Done")
        time.sleep(1.5)
        page.evaluate("window.scrollTo(0, 0)")
        shoot(page, "studio-result", full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.set_default_timeout(TIMEOUT)
        phone.goto(url)
        phone.wait_for_selector("#stylize")
        phone.click("#example")
        phone.wait_for_selector("#slot-0 img")
        time.sleep(1.0)
        shoot(phone, "phone-choose")
        phone.click("#stylize")
        wait_status(phone, "Done")
        time.sleep(1.5)
        phone.locator("#compare").scroll_into_view_if_needed()
        phone.evaluate("window.scrollBy(0, -60)")
        time.sleep(0.5)
        shoot(phone, "phone-result")
        browser.close()
    demo.close()


if __name__ == "__main__":
    main()
