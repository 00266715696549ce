"""Load test of ``estilo web``: N browser tabs on loopback submit jobs at once.

    flock /tmp/estilo-heavy.lock python benchmarks/web_load.py [--clients 20] [--queue-size 10]

Starts ``estilo web`` (random weights, 64 px, 20 iterations) in a subprocess, waits for it,
then N tabs of one Chromium (Playwright; each its own session) load the example and press
Stylize one right after another. (The page's photo and paintings live in the server's
session state, so Gradio's Python client, which has no such state, cannot submit a job:
the tabs are real page users.) Every job must either finish or be refused with Gradio's
"currently busy" (queue full). Prints the counts, the wall time, the server's resident
memory before, after and at peak (from /proc), and whether it still serves a page and a
job afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(options: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``estilo web`` with ``options`` (the port among them), once its page answers."""
    port = options[options.index("--port") + 1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "-m", "estilo", "web", *options], env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(360):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"server did not start; see {log}")


def submit_all(browser: Any, url: str, clients: int) -> list[str]:
    """Open ``clients`` tabs with the example loaded, press Stylize in each, wait for all."""
    tabs = []
    for _ in range(clients):
        tab = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
        tab.set_default_timeout(300_000)
        tab.goto(url)
        tab.wait_for_selector("#stylize")
        tab.click("#example")
        tab.wait_for_selector("#slot-0 img")
        tabs.append(tab)
    for tab in tabs:
        tab.click("#stylize")
    outcomes = []
    for tab in tabs:
        tab.wait_for_function(
            "document.querySelector('#status').innerText.startsWith('Done') || "
            "document.body.innerText.includes('currently busy')")
        text = tab.locator("body").inner_text()
        outcomes.append("rejected" if "currently busy" in text else "done")
        tab.context.close()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--queue-size", type=int, default=10)
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="estilo-load-"))
    process = start_server(["--weights", "random", "--size", "64", "--iterations", "20",
                            "--scales", "1", "--device", "cpu", "--queue-size",
                            str(args.queue_size), "--port", str(args.port)],
                           folder / "server.log")
    url = f"http://127.0.0.1:{args.port}/"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            before = rss_mb(process.pid)[0]
            started = time.monotonic()
            outcomes = submit_all(browser, url, args.clients)
            wall = time.monotonic() - started
            after, peak = rss_mb(process.pid)
            again = submit_all(browser, url, 1)
            browser.close()
        page = urllib.request.urlopen(url, timeout=10).status
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"clients {args.clients}, queue size {args.queue_size}: completed "
          f"{outcomes.count('done')}, rejected (queue full) {outcomes.count('rejected')}, "
          f"other {len([o for o in outcomes if o.startswith('error')])}, wall {wall:.1f} s")
    print(f"server RSS before {before:.0f} MB, after {after:.0f} MB, peak {peak:.0f} MB")
    print(f"afterwards: page HTTP {page}, one more job: {again[0]}")
    for other in {o for o in outcomes if o.startswith("error")}:
        print("  ", other)


if __name__ == "__main__":
    main()
