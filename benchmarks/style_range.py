"""The useful range of the style's weight: where ``--strength`` / ``--style-weight`` make a
visible difference, and where the optimiser stops working (``config.USEFUL``).

For each pair (the bundled photo with two bundled paintings) and each value, one run with
estilo's defaults otherwise at a small size, recording: the loss at the first and last
step, how much the style term fell, the content term at the end, how far the picture moved
from the photo and from the previous value's picture (mean absolute difference, RGB in
[0, 1]), the seconds, and whether a step was non-finite. Run from the repository root::

    .venv/bin/python benchmarks/style_range.py style_weight 1,1e2,1e3,1e5,1e7,1e8,1e12,1e15,1e18
    .venv/bin/python benchmarks/style_range.py strength 0.001,0.01,0.1,1,10,100,1e3,1e4,1e8,1e11

It appends a JSON line per run to ``benchmarks/results/style-range.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
EXAMPLES = ROOT / "src" / "estilo" / "data" / "examples"
RESULTS = ROOT / "benchmarks" / "results" / "style-range.jsonl"
PAIRS = (("content.jpg", "style.jpg"), ("content.jpg", "the_scream.jpg"))


class Counter(logging.Handler):
    """Counts the optimiser's warnings (non-finite or diverging steps)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "back to the best image" in record.getMessage()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("option", choices=("strength", "style_weight"))
    parser.add_argument("values", help="comma-separated")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    args = parser.parse_args()

    from estilo import StyleConfig, Stylizer
    from estilo.io.image import resize, to_tensor

    counter = Counter()
    logging.getLogger("estilo").addHandler(counter)
    stylizer = Stylizer()
    for content, style in PAIRS[: args.pairs]:
        previous = None
        for value in (float(v) for v in args.values.split(",")):
            config = StyleConfig(size=args.size, iterations=args.iterations, scales=1)
            # set past validation: estilo refuses the values beyond its range (config.USEFUL),
            # and this measures why
            object.__setattr__(config, args.option, value)
            job = stylizer.job(EXAMPLES / content, EXAMPLES / style, config)
            counter.count, start, steps = 0, time.perf_counter(), []
            for step in job.steps():
                steps.append((step.loss, dict(step.terms)))
            picture = step.image.clone()
            photo = to_tensor(resize(job.inputs.content.image, job.inputs.size))
            (first, first_terms), (last, last_terms) = steps[0], steps[-1]
            record = {
                "pair": f"{content} + {style}", args.option: value, "size": list(job.inputs.size),
                "iterations": args.iterations, "loss_first": first, "loss_last": last,
                "style_fell_to": last_terms["style"] / first_terms["style"],
                "content_last": last_terms["content"],
                "from_photo": float((picture - photo).abs().mean()),
                "from_previous_value": (float((picture - previous).abs().mean())
                                        if previous is not None else None),
                "bad_steps": counter.count, "seconds": round(time.perf_counter() - start, 1)}
            previous = picture
            print(json.dumps(record), flush=True)
            with RESULTS.open("a") as fh:
                fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
