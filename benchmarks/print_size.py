"""Print size in bounded memory: a few steps at the output size under ``--max-memory``.

Each run is a fresh process (so its peak RSS is its own): the content is upscaled to the
output size, the run starts from ``--start`` (a smaller result, upscaled: the multi-scale
schedule's lower levels done once) or from the content, and takes ``--steps`` steps at the
output size only. It writes ``benchmarks/results/print-<name>.json``: the plan, seconds per
step (the first, with the targets, apart), peak RSS (VmHWM), machine and commit.

Run from the repository root (see benchmarks/README.md)::

    flock /tmp/estilo-heavy.lock python benchmarks/print_size.py run --size 6000x4000 \\
        --max-memory 8GB --steps 3 --name 24mp
    flock /tmp/estilo-heavy.lock python benchmarks/print_size.py overhead --size 1536 --tile 512
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = ROOT / "src" / "estilo" / "data" / "examples"


def peak_rss() -> int:
    """This process's peak resident set (bytes), from /proc (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One run in this process: ``--steps`` steps at the output size."""
    import torch

    from estilo import StyleConfig, Stylizer
    from estilo.io.image import to_pil

    options: dict[str, Any] = {"size": args.size, "upscale": True, "scales": 1,
                               "iterations": args.steps, "precision": args.precision,
                               "max_memory": args.max_memory, "tile": args.tile,
                               "lr": args.lr}
    if args.start:
        options["init"] = args.start
    if args.style_scale:
        options["style_scale"] = args.style_scale
    config = StyleConfig(**options)
    job = Stylizer().job(args.content, args.style, config)
    budget = job.memory_plan()
    start = time.perf_counter()
    times: list[float] = []
    last = None
    for last in job.steps():
        times.append(time.perf_counter() - start)
    assert last is not None
    if args.output:
        to_pil(job.finish(last.image)).save(args.output, quality=92)
    steps = [b - a for a, b in itertools.pairwise(times)]
    return {"size": list(job.inputs.size), "plan": budget.describe(), "tile": budget.tile,
            "optimizer": budget.optimizer, "history": budget.history,
            "estimate_bytes": budget.peak, "first_step_s": times[0],
            "step_s": statistics.median(steps) if steps else None, "steps_s": steps,
            "peak_rss_bytes": peak_rss(), "loss": last.loss, "threads": torch.get_num_threads()}


def run(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """``child`` in a fresh process; its figures with the machine and the commit."""
    command = [sys.executable, __file__, "child", *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"print_size: child failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT, check=False).stdout.strip()
    figures.update(command=" ".join(["python", "benchmarks/print_size.py", *extra]),
                   machine=f"{platform.processor() or platform.machine()}, "
                           f"{_cpus()} CPUs, {_memory_gib():.0f} GiB", commit=commit)
    return figures


def crops(big: str, small: str, box: tuple[int, int, int, int], output: str) -> None:
    """The same crop (``box`` in the big picture's pixels) at 100 % from ``big`` and from
    ``small`` upscaled to ``big``'s size (bicubic), side by side, as a JPEG."""
    from PIL import Image

    with Image.open(big) as a, Image.open(small) as b:
        left = a.convert("RGB").crop(box)
        right = b.convert("RGB").resize(a.size, Image.Resampling.BICUBIC).crop(box)
    sheet = Image.new("RGB", (left.width * 2 + 8, left.height), "white")
    sheet.paste(left, (0, 0))
    sheet.paste(right, (left.width + 8, 0))
    sheet.save(output, quality=88)


def _cpus() -> int:
    import os
    return len(os.sched_getaffinity(0))


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 ** 2
    return 0.0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", default=str(EXAMPLES / "content.jpg"))
    parser.add_argument("--style", default=str(EXAMPLES / "style.jpg"))
    parser.add_argument("--size", default="6000x4000")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-memory", default=None)
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--start", default=None, help="image to start from (upscaled)")
    parser.add_argument("--style-scale", type=float, default=None)
    parser.add_argument("--output", default=None)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--lr", type=float, default=None,
                        help="the rate (if the plan picks Adam: refine the start gently)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("child", "run", "overhead"):
        p = sub.add_parser(name)
        _common(p)
        p.add_argument("--name", default="run")
    crop = sub.add_parser("crops", help="a 100 %% crop of a print beside the small run's")
    crop.add_argument("big")
    crop.add_argument("small")
    crop.add_argument("--box", required=True, help="left,top,right,bottom in the big picture")
    crop.add_argument("--output", required=True)
    args, _ = parser.parse_known_args()
    if args.command == "crops":
        box = tuple(int(v) for v in args.box.split(","))
        crops(args.big, args.small, box, args.output)  # type: ignore[arg-type]
        return
    if "x" not in args.size:
        args.size = int(args.size)
    elif args.size:
        w, h = args.size.split("x")
        args.size = (int(w), int(h))
    extra = sys.argv[2:]
    if args.command == "child":
        print(json.dumps(child(args)))
        return
    RESULTS.mkdir(exist_ok=True)
    if args.command == "run":
        figures = run(args, extra)
    else:  # the same size untiled and in tiles, one after the other
        plain = [a for a in extra if a != "--tile" and a != str(args.tile)]
        untiled, tiled = run(args, plain), run(args, extra)
        figures = {"untiled": untiled, "tiled": tiled,
                   "overhead": tiled["step_s"] / untiled["step_s"]}
    path = RESULTS / f"print-{args.name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
