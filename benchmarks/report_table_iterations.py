"""How many Adam steps the report-table preset needs: loss curves of some of its rows.

Runs rows of ``--preset report-table`` (the preset's own configs, only ``iterations``
replaced) on the bundled photo and *The Starry Night*, and prints, for each row, the best
loss reached by step n as a percentage above the best loss of the whole run, with the
learning rate of the adaptive schedule at that step and the seconds per step. Run from the
repository root::

    flock /tmp/estilo-heavy.lock env OMP_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/report_table_iterations.py --rows 2,4,5 --iterations 1000
    ... --rows 7 --iterations 600                   # a 512 px row: ~0.6 s a step on one core

``--keep DIR`` also saves each row's picture at the checkpoints, to look at. The count the
preset pins (400) and why are in ``src/estilo/data/report_table.toml``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from estilo import Stylizer
from estilo.demo import example_folder
from estilo.grids import spec

CHECKPOINTS = (50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="2,4,5", help="row numbers of the preset (1-9)")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--style", type=Path, default=example_folder() / "starry_night.jpg")
    parser.add_argument("--keep", type=Path, default=None, help="save pictures here")
    parser.add_argument("--json", type=Path, default=None, help="write the curves here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    configs = spec.configs(spec.preset("report-table"), {"iterations": args.iterations})
    stylizer, curves = Stylizer(), {}
    for row in (int(r) for r in args.rows.split(",")):
        job = stylizer.job(example_folder() / "content.jpg", args.style, configs[row - 1])
        start, losses, rates = time.perf_counter(), [], []
        for step in job.steps():
            losses.append(step.loss)
            rates.append(step.lr)
            if args.keep and step.iteration in CHECKPOINTS:
                args.keep.mkdir(parents=True, exist_ok=True)
                job.picture(step.image).save(
                    args.keep / f"row{row}-{step.iteration}.png")
        seconds = (time.perf_counter() - start) / len(losses)
        curves[row] = {"loss": losses, "lr": rates, "s_per_step": seconds}
        final = min(losses)
        print(f"row {row} ({configs[row - 1].size} px): best loss {final:.4g}, "
              f"{seconds:.3f} s a step")
        for n in (c for c in CHECKPOINTS if c <= len(losses)):
            best = min(losses[:n])
            print(f"  {n:5d} steps: {100 * (best - final) / final:6.1f} % above, "
                  f"lr {rates[n - 1]:.4f}")
    if args.json:
        args.json.write_text(json.dumps(curves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
