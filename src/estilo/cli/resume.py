"""``estilo resume OUT.png``: the command-line face of :mod:`estilo.resume`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..io.output import check_output_path
from ..resume import resume_job
from .shell import Parser, add_run_flags, guarded
from .stylize import run_and_save


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo resume SAVED``."""
    parser = Parser(prog="estilo resume", description="Continue a run from an image estilo "
                     "saved (interrupted, intermediate or final), using its embedded parameters.")
    parser.add_argument("saved", help="a PNG written by estilo")
    parser.add_argument("-o", "--output", help="where to write the result (default: replace SAVED)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--iterations", type=int, metavar="N",
                        help="iterations to run (default: those left; with --size, the "
                        "run's iterations at the output size)")
    parser.add_argument("--content", metavar="PATH", help="the content image, if it moved")
    parser.add_argument("--style", nargs="+", metavar="PATH",
                        help="the style image(s), all in order, if they moved")
    parser.add_argument("--mask", metavar="PATH", help="the mask image, if it moved")
    parser.add_argument("--size", type=int, metavar="N",
                        help="continue at this long side in px, e.g. larger to enlarge the "
                        "picture for print (default: the saved size)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="cap on the run's memory, e.g. 8GB (tiles and a leaner optimiser "
                        "as needed; default: the free memory)")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="use inputs whose contents changed since the run")
    parser.add_argument("--device", help="run on this device instead of the recorded one")
    parser.add_argument("--save-every", type=int, default=0, metavar="N",
                        help="also save the current image every N iterations")
    add_run_flags(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """``estilo resume``; returns the exit code (as the main command's)."""
    args = build_parser().parse_args(list(argv))
    return guarded(lambda: _command(args), debug=args.debug, quiet=args.quiet)


def _command(args: argparse.Namespace) -> int:
    saved = Path(args.saved).expanduser()
    job = resume_job(saved, iterations=args.iterations, content=args.content, styles=args.style,
                     mask=args.mask, size=args.size, max_memory=args.max_memory,
                     verify=args.verify, device=args.device)
    in_place = args.output is None
    output = check_output_path(saved if in_place else args.output,
                               overwrite=args.overwrite or in_place,
                               inputs=[s.path for s in (job.inputs.content, *job.inputs.styles,
                                                        *filter(None, [job.inputs.mask]))
                                       if s.path])
    return run_and_save(job, output, save_every=args.save_every, quiet=args.quiet)
