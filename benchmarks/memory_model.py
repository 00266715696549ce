"""The memory model against the peak: ``estilo`` under ``--max-memory`` at several sizes.

Each run is a fresh ``estilo`` process under ``/usr/bin/time -v`` (as a user would run it,
the whole multi-scale schedule with ``--scale-iterations 2 --iterations 2``, the default
weights and precision): its plan lines (``estilo: plan at WxH px: ..., about X of Y GiB``)
give the estimate, ``Maximum resident set size`` the peak; a size the plan refuses is
recorded with its message. It appends a JSON line per run to
``benchmarks/results/memory-model.jsonl`` and ``table`` prints them as the table in
benchmarks/README.md. Run from the repository root, holding the lock::

    flock /tmp/estilo-heavy.lock .venv/bin/python benchmarks/memory_model.py run \\
        --cap 1GB --sizes 512,768,1024,1253,1600
    .venv/bin/python benchmarks/memory_model.py table
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "memory-model.jsonl"
IMAGES = ROOT.parent / "shared" / "images"
if not IMAGES.is_dir():
    IMAGES = Path("/work/shared/images")
GIB = 1024 ** 3
PLAN = re.compile(r"plan at (\d+)x(\d+) px: (.*), about ([\d.]+)(?: of ([\d.]+))? GiB")


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=False,
                          capture_output=True, text=True).stdout.strip() + (
        "+" if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src"],
                              cwd=ROOT, check=False).returncode else "")


def measure(cap: str, size: int, content: Path, style: Path, extra: list[str]) -> dict[str, Any]:
    """One fresh run; its plans, peak RSS, exit status and seconds."""
    with tempfile.TemporaryDirectory() as folder:
        command = ["/usr/bin/time", "-v", sys.executable, "-m", "estilo", str(content),
                   str(style), "-o", str(Path(folder) / "out.png"), "--size", str(size),
                   "--upscale", "--max-memory", cap, "--iterations", "2",
                   "--scale-iterations", "2", *extra]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              check=False)
        seconds = time.perf_counter() - start
    err = done.stderr
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    plans = [{"size": [int(m[1]), int(m[2])], "plan": m[3], "estimate_gib": float(m[4]),
              "limit_gib": float(m[5]) if m[5] else None} for m in PLAN.finditer(err)]
    refused = [line for line in err.splitlines() if line.startswith("estilo: error")]
    return {"cap": cap, "size": size, "content": content.name, "style": style.name,
            "extra": extra, "exit": done.returncode, "plans": plans,
            "estimate_gib": max((p["estimate_gib"] for p in plans), default=None),
            "peak_bytes": int(peak[1]) * 1024 if peak else None,
            "refused": refused[0] if refused else None, "seconds": round(seconds, 1),
            "commit": commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: a row per run (the latest run of each cap, size and options)."""
    latest: dict[tuple[str, int, str], dict[str, Any]] = {}
    for row in rows:
        latest[(row["cap"], row["size"], " ".join(row["extra"]))] = row
    lines = [("| cap | --size | plan at the output's size | estimate | peak RSS | "
              "estimate / peak | peak / cap | s |"), "|---|---|---|---|---|---|---|---|"]
    for (cap, size, extra), row in sorted(latest.items(), key=lambda kv: (
            _bytes(kv[0][0]), kv[0][1], kv[0][2])):
        name = f"{size} {extra}".strip()
        if row["refused"]:
            lines.append(f"| {cap} | {name} | refused: {row['refused'][len('estilo: error: '):]}"
                         f" | | | | | |")
            continue
        final = row["plans"][-1] if row["plans"] else None
        peak = row["peak_bytes"] / GIB
        estimate = row["estimate_gib"]
        plan = (f"{final['size'][0]}x{final['size'][1]}: {final['plan']}" if final else "")
        lines.append(f"| {cap} | {name} | {plan} | {estimate:.2f} GiB | {peak:.2f} GiB | "
                     f"{estimate / peak:.2f} | {row['peak_bytes'] / _bytes(cap):.2f} | "
                     f"{row['seconds']:.0f} |")
    return "\n".join(lines)


def _bytes(cap: str) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from estilo.config import parse_memory
    return parse_memory(cap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="measure runs (hold the lock)")
    run.add_argument("--cap", required=True, help="--max-memory, e.g. 1GB")
    run.add_argument("--sizes", required=True, help="comma-separated --size values")
    run.add_argument("--content", type=Path, default=IMAGES / "tubingen.jpg")
    run.add_argument("--style", type=Path, default=IMAGES / "starry_night.jpg")
    run.add_argument("extra", nargs="*", help="more estilo options (after --)")
    sub.add_parser("table", help="print the table of the results")
    args = parser.parse_args()
    if args.command == "table":
        rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
        print(table(rows))
        return
    for size in (int(s) for s in args.sizes.split(",")):
        record = measure(args.cap, size, args.content, args.style, args.extra)
        print(json.dumps(record), flush=True)
        with RESULTS.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
