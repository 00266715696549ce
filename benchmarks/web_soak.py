"""Soak test of the web studio: N jobs one after another on one ``estilo web`` server.

    flock /tmp/estilo-heavy.lock env OMP_NUM_THREADS=1 python benchmarks/web_soak.py   # ~5 min

Starts ``estilo web`` in a subprocess (the default, real Caffe weights; 96 px, 10 iterations,
one level, CPU), opens the page in Debian's Chromium (Playwright), presses "Use the
example" and Stylize N times (each job ends in a PNG that joins the session's history),
and reads the server's resident memory (VmRSS from /proc) after each job. Writes
``results/web-soak.json`` and prints the first and last RSS, the growth after the first
``--warmup`` jobs, and the least-squares slope over the jobs after it (MB per job).
Memory levels off when that slope is within noise (well under 1 MB per job).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import web_load  # the same server start (benchmarks/ is on sys.path when run as a script)
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen[bytes]:
    return web_load.start_server(
        ["--size", str(args.size), "--iterations", str(args.iterations), "--scales", "1",
         "--device", "cpu", "--weights", args.weights, "--port", str(port),
         "--preview-every", "0.5"], log)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--weights", default="caffe")
    parser.add_argument("--warmup", type=int, default=10, help="jobs before memory may settle")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/web-soak.json")
    args = parser.parse_args()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="estilo-soak-")) / "server.log"
    server = start_server(args, port, log)
    started = rss_mb(server.pid)
    rss, seconds = [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#stylize")
            page.click("#example")
            page.wait_for_selector("#slot-0 img")
            status = page.locator("#status")
            for job in range(args.jobs):
                start = time.perf_counter()
                page.click("#stylize")
                page.wait_for_function(
                    "document.querySelector('#status').innerText.startsWith('Iteration') || "
                    "document.querySelector('#status').innerText.startsWith('Starting')")
                page.wait_for_function(
                    "document.querySelector('#status').innerText.startsWith('Done')")
                seconds.append(time.perf_counter() - start)
                time.sleep(0.3)  # the server has sent the result and the history
                rss.append(rss_mb(server.pid))
                print(f"job {job + 1:3d}: {seconds[-1]:5.1f} s, RSS {rss[-1]:7.1f} MB",
                      flush=True)
            assert "Done" in status.inner_text()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    after = np.array(rss[args.warmup:])
    slope = float(np.polyfit(np.arange(len(after)), after, 1)[0]) if len(after) > 1 else 0.0
    summary = {
        "jobs": args.jobs, "size": args.size, "iterations": args.iterations,
        "weights": args.weights, "warmup": args.warmup,
        "rss_started_mb": round(started, 1), "rss_first_job_mb": round(rss[0], 1),
        "rss_after_warmup_mb": round(rss[args.warmup - 1], 1), "rss_last_mb": round(rss[-1], 1),
        "rss_max_mb": round(max(rss), 1),
        "growth_after_warmup_mb": round(rss[-1] - rss[args.warmup - 1], 1),
        "slope_after_warmup_mb_per_job": round(slope, 3),
        "median_job_s": round(float(np.median(seconds)), 2),
        "rss_mb": [round(r, 1) for r in rss],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "omp_threads": os.environ.get("OMP_NUM_THREADS")},
        "commit": commit(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rss_mb"}, indent=1))


if __name__ == "__main__":
    main()
