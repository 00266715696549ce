"""``estilo batch INPUTS... --style S... -o OUT_DIR``: the command-line face of :mod:`estilo.batch`.

Exit codes: 0 every item done or skipped, 1 some items failed, 2 bad input or options,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Finished outputs are always kept;
running the same command again completes the rest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import closing

from ..batch import BACKENDS, DEFAULT_NAME, BatchError, ItemResult, Summary, run_batch
from .progress import Progress
from .shell import (
    EXIT_FAILED,
    Parser,
    add_config_options,
    add_run_flags,
    config_from_args,
    guarded,
    sigterm_as_interrupt,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo batch``."""
    parser = Parser(
        prog="estilo batch",
        description="Stylise many images: every content image with every style (or the pairs "
                    "of a manifest), resumable, on local processes or a Ray cluster.")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="content images: files, folders or globs")
    parser.add_argument("--style", nargs="+", default=[], metavar="STYLE",
                        help="style images: files, folders or globs")
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                        help="folder for the outputs and batch-summary.json")
    parser.add_argument("--manifest", metavar="FILE",
                        help="CSV (header content,style[,output]) or TOML ([[item]]) of pairs")
    parser.add_argument("--name", default=DEFAULT_NAME, metavar="TEMPLATE",
                        help="output name from {content}, {style}, {index} "
                             "(default %(default)s)")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local processes or a Ray cluster (default %(default)s)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="local worker processes (default: one per core, or per GPU)")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="Ray cluster address, e.g. auto or 10.0.0.1:6379 "
                             "(default: start a local Ray)")
    parser.add_argument("--cpus-per-task", type=float, default=1, metavar="N",
                        help="Ray: CPUs (and torch threads) per item (default %(default)s)")
    parser.add_argument("--retries", type=int, default=2, metavar="N",
                        help="runs again of an item whose worker died (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs made with other parameters")
    parser.add_argument("--summary", metavar="FILE",
                        help="JSON summary path (default OUT_DIR/batch-summary.json)")
    add_run_flags(parser)
    add_config_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``estilo batch``; returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return guarded(lambda: batch_command(args), debug=args.debug, quiet=args.quiet)


def batch_command(args: argparse.Namespace) -> int:
    """Run the batch under a progress display; print and return the outcome."""
    if args.workers is not None and args.workers < 1 or args.retries < 0:
        raise BatchError("--workers must be at least 1 and --retries at least 0")
    # Made now, so that its clock counts from the start; it shows once the batch is planned.
    progress = Progress(None, unit="img", quiet=args.quiet)

    def show(result: ItemResult, report: Summary) -> None:
        progress.step(postfix=f"{result.status}: {result.item.output.name}", total=report.total)
        progress.line(f"estilo: [{len(report.results)}/{report.total}] {result.status} "
                      f"{result.item.output.name}" + (f" in {result.seconds:.1f} s"
                                                       if result.status == "done" else ""))

    with sigterm_as_interrupt() as stop, closing(progress):
        report = run_batch(
            args.inputs, args.style, args.output, config_from_args(args),
            name=args.name, manifest=args.manifest, backend=args.backend,
            workers=args.workers, address=args.address, cpus_per_task=args.cpus_per_task,
            retries=args.retries, overwrite=args.overwrite, summary=args.summary,
            progress=show)
    _print(report, quiet=args.quiet)
    if report.interrupted:
        return stop.status
    return EXIT_FAILED if report.count("failed") else 0


def _print(report: Summary, *, quiet: bool = False) -> None:
    for result in report.results:
        if result.status == "failed":
            print(f"estilo: failed: {result.item.content} x {result.item.style}: "
                  f"{result.error}", file=sys.stderr)
    if quiet and not report.interrupted:
        return
    state = f", {report.pending} interrupted (run again to finish)" if report.interrupted else ""
    print(f"estilo batch: {report.count('done')} done, {report.count('skipped')} skipped, "
          f"{report.count('failed')} failed{state} in {report.elapsed:.1f} s; summary "
          f"{report.path}", file=sys.stderr)
