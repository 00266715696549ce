"""``estilo grid CONTENT STYLE -o SHEET.png``: the command-line face of :mod:`estilo.grids`.

Exit codes: 0 done, 2 bad input or options, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM); an interrupted grid still writes the sheet and tables of the rows it finished.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Generator, Sequence
from typing import Any

from ..config import FIELDS, ConfigError
from ..devices import resolve_device, tune
from ..grids import sheet
from ..grids.runner import Grid
from ..grids.spec import OLD_NAMES, PRESETS, GridStep, parse_param, spec_from
from .progress import Progress
from .shell import (
    Interruption,
    Parser,
    add_config_options,
    add_run_flags,
    guarded,
    sigterm_as_interrupt,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo grid CONTENT STYLE -o SHEET.png``."""
    parser = Parser(prog="estilo grid", description="Run several settings side by side: a "
                     "contact sheet, every row's image and a table of losses and times.")
    parser.add_argument("content", help="content image (the photo)")
    parser.add_argument("style", nargs="+", help="style image(s) (the painting); rows that "
                        "name a style by number (style = 2 in a grid file; the preset's row 9) "
                        "take that one of these, other rows all of them")
    parser.add_argument("-o", "--output", default="grid.png", help="the sheet (default "
                        "%(default)s); rows go to SHEET_rows/, tables to SHEET.md and SHEET.csv")
    rows = parser.add_mutually_exclusive_group(required=True)
    rows.add_argument("--preset", choices=PRESETS, type=lambda name: OLD_NAMES.get(name, name),
                      help="a shipped grid: report-table = the nine rows of the results table "
                      "of the 2018 report estilo started from, with its Adam and adaptive rate "
                      "(conv-index notation; row 9 takes the second style image)")
    rows.add_argument("--grid", metavar="FILE.toml", help="explicit rows ([[rows]] tables)")
    rows.add_argument("--param", action="append", metavar="NAME=V1,V2",
                      help="vary an option (repeat: cartesian product); ';' separates layer lists")
    parser.add_argument("--resume", action="store_true", help="skip rows whose image exists "
                        "with the same parameters and inputs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing sheet")
    parser.add_argument("--tile-size", type=int, default=sheet.TILE, metavar="PX",
                        help="display size of each tile (default %(default)s)")
    parser.add_argument("--columns", type=int, default=0, help="tiles per line (default: auto)")
    parser.add_argument("--eval-size", type=int, default=None, metavar="PX", help="long side of "
                        "the fixed loss measure (default: the largest row size)")
    parser.add_argument("--eval-weights", default=None, help="weights of the fixed loss measure "
                        "(default: --weights)")
    add_run_flags(parser)
    add_config_options(parser)
    return parser


def explicit_options(argv: Sequence[str]) -> dict[str, Any]:
    """The StyleConfig options given on the command line (not their defaults)."""
    probe = build_parser()
    for action in probe._actions:
        if action.dest in FIELDS:
            action.default = argparse.SUPPRESS
    return {k: v for k, v in vars(probe.parse_args(list(argv))).items() if k in FIELDS}


def main(argv: Sequence[str] | None = None) -> int:
    """``estilo grid``: returns the exit code (130/143 after Ctrl-C/SIGTERM, sheet written)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return guarded(lambda: _command(args, explicit_options(argv)), debug=args.debug,
                   quiet=args.quiet)


def _command(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    params = None
    if args.param:
        parsed = [parse_param(p) for p in args.param]
        if len({n for n, _ in parsed}) != len(parsed):
            raise ConfigError("--param: each option may be varied once")
        params = dict(parsed)
    spec = spec_from(preset_name=args.preset, grid_file=args.grid, params=params)
    runner = Grid(args.content, args.style, spec, args.output, overrides=overrides,
                  resume=args.resume, overwrite=args.overwrite, tile_size=args.tile_size,
                  columns=args.columns, eval_size=args.eval_size, eval_weights=args.eval_weights)
    for device in {job.config.device for job in runner.jobs}:
        tune(resolve_device(device))  # backend speed settings: the app's choice
    status = _drive(runner, quiet=args.quiet)
    done = len(runner.results)
    if status:
        print("estilo: interrupted; " + ("the sheet keeps the rows finished so far" if done
              else "no row had finished: nothing written"), file=sys.stderr)
    if done and not args.quiet:
        print(f"estilo: wrote {runner.output} and its .md/.csv ({done}/{len(runner.rows)} rows, "
              f"{len(runner.rows) - len(runner.pending())} reused)", file=sys.stderr)
    return status


def _drive(runner: Grid, *, quiet: bool) -> int:
    """Drain ``runner.steps()`` under one progress display (a line per row in a log)."""
    progress = Progress(runner.total_iterations(), quiet=quiet)
    steps = runner.steps()
    stop = Interruption()
    try:
        with sigterm_as_interrupt() as stop:
            for item in steps:
                where = f"row {item.position}/{item.pending} #{item.row.index}"
                progress.step(where, f"loss={item.step.loss:.4g}")
                progress.group(item.row.index, f"estilo: {where} {item.row.label}: iteration "
                               f"{item.step.iteration}/{item.step.total}, loss "
                               f"{item.step.loss:.4g}, {item.step.elapsed:.1f} s")
    except KeyboardInterrupt:
        return _stopped(steps, progress, stop.status)
    finally:
        progress.close()
    return 0


def _stopped(steps: Generator[GridStep, None, None], progress: Progress, status: int) -> int:
    progress.close()
    steps.close()  # writes the sheet with the finished rows
    return status

