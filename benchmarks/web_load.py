"""Load test of ``estilo web``: N concurrent clients on loopback submit jobs at once.

    flock /tmp/estilo-heavy.lock python benchmarks/web_load.py [--clients 20] [--queue-size 10]

Starts ``estilo web`` (random weights, 64 px, 20 iterations) in a subprocess, waits for it,
then N Gradio Python clients submit a job each at the same moment. Every job must either
finish or be refused with "queue is full". Prints the counts, the wall time, the server's
resident memory before, after and at peak (from /proc), and whether it still serves a page
and a job afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from conftest import make_content, make_style
from estilo import StyleConfig
from estilo.web import ui_fields


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(port: int, queue_size: int, log: Path) -> subprocess.Popen[bytes]:
    options = ["--weights", "random", "--size", "64", "--iterations", "20", "--scales", "1",
               "--device", "cpu", "--queue-size", str(queue_size), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "-m", "estilo", "web", *options], env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(360):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"server did not start; see {log}")


def submit_all(url: str, clients: int, content: Path, style: Path) -> list[str]:
    chosen = {"size": 64, "iterations": 20}
    values = [chosen.get(n, getattr(StyleConfig(), n)) for n in ui_fields()]
    pool = [Client(url, verbose=False) for _ in range(clients)]
    barrier, outcomes = threading.Barrier(clients), []

    def one(client: Client) -> None:
        barrier.wait()
        try:
            client.predict(handle_file(str(content)), handle_file(str(style)), *values,
                           api_name="/stylize")
            outcomes.append("done")
        except Exception as e:  # noqa: BLE001 (the client raises a bare Exception when refused)
            outcomes.append("rejected" if "queue is full" in str(e).lower() else f"error: {e}")

    threads = [threading.Thread(target=one, args=(c,)) for c in pool]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--queue-size", type=int, default=10)
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="estilo-load-"))
    content, style = folder / "content.png", folder / "style.png"
    make_content((96, 72)).save(content)
    make_style((64, 64)).save(style)
    process = start_server(args.port, args.queue_size, folder / "server.log")
    url = f"http://127.0.0.1:{args.port}/"
    try:
        before = rss_mb(process.pid)[0]
        started = time.monotonic()
        outcomes = submit_all(url, args.clients, content, style)
        wall = time.monotonic() - started
        after, peak = rss_mb(process.pid)
        again = submit_all(url, 1, content, style)
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
