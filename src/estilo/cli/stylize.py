"""``estilo CONTENT STYLE... -o OUT``: the main command, a thin shell over the library
(argparse -> StyleConfig -> Job), with a progress display and periodic saves."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..devices import resolve_device, tune
from ..io.metadata import version
from ..io.output import check_output_path, save_image
from ..memory import HISTORIES
from ..pyramid import describe
from ..transfer import Job, NonFiniteError, Step, Stylizer
from .progress import Progress
from .shell import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    SUBCOMMANDS,
    Interruption,
    Parser,
    add_config_options,
    add_run_flags,
    config_from_args,
    flags_in_messages,
    guarded,
    sigterm_as_interrupt,
)

# Spellings that were removed, with what to type instead.
RENAMED = {"--style-weights": "--style-blend (the weight of each style); --style-weight is the "
                              "style loss weight Ws"}


def build_parser(prog: str = "estilo", *, inputs: bool = True,
                 description: str = "Paint a photo in the style of a painting (Gatys et al. "
                                    "neural style transfer).") -> argparse.ArgumentParser:
    """The parser of ``estilo CONTENT STYLE... -o OUT`` (``inputs=False``: without the images)."""
    parser = Parser(prog=prog, description=description,
                     epilog="More commands: " + (", ".join(SUBCOMMANDS) or "none") +
                     " (estilo COMMAND --help).")
    if inputs:
        parser.add_argument("content", nargs="?", help="content image (the photo)")
        parser.add_argument("style", nargs="*", default=[], help="style image(s) or folder(s) "
                            "of images (the painting); or give them with --style")
        parser.add_argument("--style", dest="style_option", nargs="+", default=[],
                            metavar="STYLE", help="style image(s) or folder(s), as an option")
    parser.add_argument("-o", "--output", default="out.png", help="output image (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--no-mkdir", dest="mkdir", action="store_false",
                        help="fail if the output folder does not exist (default: create it)")
    parser.add_argument("--save-every", type=int, default=0, metavar="N",
                        help="also save the current image every N iterations")
    add_run_flags(parser)
    parser.add_argument("--version", action="version", version=f"estilo {version()}")
    add_config_options(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """``estilo CONTENT STYLE... -o OUT``; returns the exit code."""
    parser = build_parser()
    _refuse_renamed(parser, argv)
    args = parser.parse_args(argv)
    args.style = [*args.style, *args.style_option]
    if args.content is None:
        parser.error("give a content image and a style image: estilo CONTENT STYLE -o OUT.png "
                     "(or try estilo demo -o OUT.png, the bundled example)")
    if not args.style:
        parser.error("give at least one style image (STYLE or --style)")
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run parsed options of the main command (``args.content``, ``args.style`` set)."""
    return guarded(lambda: stylize_command(args), debug=args.debug, quiet=args.quiet)


def _refuse_renamed(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    for arg in argv:
        if arg == "--":
            return
        old = arg.split("=", 1)[0]
        if old in RENAMED:
            parser.error(f"{old} is now {RENAMED[old]}")


def stylize_command(args: argparse.Namespace) -> int:
    """``estilo CONTENT STYLE -o OUT``: check everything, run with a progress bar, save."""
    config = config_from_args(args)
    output = check_output_path(args.output, overwrite=args.overwrite,
                               inputs=[args.content, *args.style, *filter(None, [config.mask])],
                               mkdir=args.mkdir)
    with flags_in_messages():  # e.g. a --style-blend with one weight too many
        job = Stylizer().job(args.content, args.style, config)
    return run_and_save(job, output, save_every=args.save_every, quiet=args.quiet)


def run_and_save(job: Job, output: Path, *, save_every: int = 0, quiet: bool = False) -> int:
    """Run a prepared job under a progress bar, save its last image; return the exit status.

    A save that had to go to the fallback path (disk full, permissions) is reported with
    both paths and gives exit status 1 (unless the run was interrupted: then 130/143).
    The final line gives the iteration counts embedded in the file.
    """
    job.weights()  # fail on missing weights before the progress bar starts
    tune(resolve_device(job.config.device))  # backend speed settings: the app's choice
    if not quiet:
        print(f"estilo: {describe(job.schedule)}", file=sys.stderr)
        plans = job.memory_plans()
        special = [(level, budget) for level, budget in plans
                   if budget.tile or budget.optimizer != job.config.optimizer
                   or budget.history not in (0, HISTORIES[0]) or budget.checkpointing]
        for level, budget in special or (plans[-1:] if job.config.max_memory else []):
            width, height = level.size
            print(f"estilo: plan at {width}x{height} px: {budget.describe()}", file=sys.stderr)
    saver = Saver(job, output)
    last, status = run_with_progress(job, saver, save_every=save_every, quiet=quiet)
    if last is None:
        print("estilo: stopped before the first iteration; nothing saved", file=sys.stderr)
        return status or 1
    saved, params = saver.final(last, interrupted=status != 0)
    done = f"{_counts(params, last)}, {last.elapsed:.1f} s"
    if saved != output:  # output.py has logged why
        print(f"estilo: wrote {saved} instead of {output} ({done})", file=sys.stderr)
        return status or 1
    if not quiet:
        print(f"estilo: wrote {saved} ({done})", file=sys.stderr)
    return status


def _counts(params: dict[str, Any], last: Step) -> str:
    """The file's ``iterations_done/iterations_total``, and this run's share when it differs."""
    done, total = params["iterations_done"], params["iterations_total"]
    this_run = f", {last.iteration} in this run" if done != last.iteration else ""
    return f"{done}/{total} iterations{this_run}"


@dataclasses.dataclass
class Saver:
    """Saves a job's images to ``output``, atomically, with the embedded parameters.

    When an intermediate save had to go to a fallback path (see :func:`save_image`), later
    intermediate saves overwrite that one file (``spare``) instead of adding new ones, and it
    is removed once the final image is saved.
    """

    job: Job
    output: Path
    spare: Path | None = None

    def intermediate(self, step: Step) -> None:
        """Save ``step``'s image as a partial result."""
        saved = save_image(self.job.picture(step.image),
                           self.spare or self.output,
                           parameters=self.job.parameters(step, partial=True))
        self.spare = saved if saved != self.output else None

    def final(self, step: Step, *, interrupted: bool) -> tuple[Path, dict[str, Any]]:
        """Save ``step``'s image as the result; return where it went and what it embeds."""
        params = self.job.parameters(step, interrupted=interrupted)
        saved = save_image(self.job.picture(step.image), self.output,
                           parameters=params)
        if self.spare is not None and self.spare != saved:
            self.spare.unlink(missing_ok=True)
        return saved, params


def run_with_progress(job: Job, saver: Saver, *, save_every: int = 0,
                      quiet: bool = False) -> tuple[Step | None, int]:
    """Drain ``job.steps()`` under a progress display; return the last step and the exit status."""
    last: Step | None = None
    progress = Progress(job.total, quiet=quiet)
    status = 0
    stop = Interruption()
    try:
        with sigterm_as_interrupt() as stop:
            for last in job.steps():
                _show(progress, last)
                if save_every and last.iteration % save_every == 0 and last.iteration < last.total:
                    saver.intermediate(last)
    except KeyboardInterrupt:
        status = stop.status
    except NonFiniteError as e:
        status = EXIT_FAILED
        if last is not None:  # its live image is the diverged one: keep the last good one
            last = dataclasses.replace(last, image=e.image)
        saving = f"; saving the last good image (iteration {last.iteration})" if last else ""
        progress.close()
        print(f"estilo: error: {e}{saving}", file=sys.stderr)
    finally:
        progress.close()
    if status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        print(f"estilo: interrupted at iteration {last.iteration if last else 0}; "
              "saving the current image", file=sys.stderr)
    return last, status


def _show(progress: Progress, step: Step) -> None:
    terms = step.terms
    progress.step(f"{step.size[0]}x{step.size[1]}",
                  f"loss={step.loss:.4g}, content={terms['content']:.3g}, "
                  f"style={terms['style']:.3g}, tv={terms['tv']:.2g}, lr={step.lr:.2g}",
                  total=step.total)
    progress.group(step.level, level_line(step))


def level_line(step: Step) -> str:
    """One log line for a level, as of ``step``: size, iterations, losses, time."""
    terms = step.terms
    return (f"estilo: level {step.level + 1}/{step.levels} {step.size[0]}x{step.size[1]}: "
            f"iteration {step.iteration}/{step.total}, loss {step.loss:.4g} (content "
            f"{terms['content']:.3g}, style {terms['style']:.3g}, tv {terms['tv']:.2g}), "
            f"{step.elapsed:.1f} s")
