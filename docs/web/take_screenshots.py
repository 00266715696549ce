"""Take the README's screenshots of the web app: empty, running, result, error.

    flock /tmp/estilo-heavy.lock python docs/web/take_screenshots.py   # about a minute on a CPU

Needs the web and test extras and Debian's Chromium (apt-get install chromium). Uses the
real caffe weights and the bundled example at 128 px; writes docs/web/0*.png (quantised).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

from estilo import StyleConfig
from estilo.web import Limits, Studio, launch

HERE = Path(__file__).resolve().parent
NOT_AN_IMAGE = HERE / "holiday-notes.png"


def shoot(page: Page, name: str) -> None:
    """A viewport screenshot, quantised to keep it small."""
    path = HERE / f"{name}.png"
    page.screenshot(path=path)
    Image.open(path).convert("RGB").quantize(96).save(path, optimize=True)
    print(f"{path.name}: {path.stat().st_size // 1024} KB")


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = StyleConfig(size=128, iterations=60, scales=1, device="cpu")
    demo = launch(Studio(config, Limits(preview_every=0.5)), port=port, block=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 860})
        page.set_default_timeout(600_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#stylize")
        shoot(page, "01-empty")
        page.click("#example")
        page.wait_for_selector("#style-view img")
        page.click("#stylize")
        page.wait_for_function("document.querySelector('#status').innerText.includes('Iteration 4')")
        time.sleep(1.5)
        shoot(page, "02-running")
        page.wait_for_function("document.querySelector('#status').innerText.includes('Done')")
        shoot(page, "03-result")
        NOT_AN_IMAGE.write_bytes(b"Remember: sunscreen, passport, charger")
        page.locator("#content-file button[aria-label='Clear']").first.click()
        page.locator("#content-file input[type=file]").set_input_files(NOT_AN_IMAGE)
        page.get_by_text("not a supported image").first.wait_for()
        time.sleep(1.0)  # the page settles
        shoot(page, "04-error")
        NOT_AN_IMAGE.unlink()
        browser.close()
    demo.close()


if __name__ == "__main__":
    main()
