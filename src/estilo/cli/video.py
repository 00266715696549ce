"""``estilo video IN STYLE... -o OUT``: a clip painted frame by frame without flicker
(:mod:`estilo.video`), with a progress bar over frames, resumable."""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from ..config import ConfigError
from ..devices import resolve_device, tune
from ..io.metadata import version
from ..transfer import NonFiniteError, Step
from .progress import Progress
from .shell import (
    EXIT_FAILED,
    EXIT_USAGE,
    Interruption,
    Parser,
    add_config_options,
    add_run_flags,
    config_from_args,
    flags_in_messages,
    guarded,
    sigterm_as_interrupt,
)

VIDEO_HINT = "estilo video needs PyAV and OpenCV: pip install 'estilo[video]'"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo video``."""
    parser = Parser(prog="estilo video", description="Paint a clip in the style of a painting, "
                    "frame by frame, without flicker (each frame starts from the previous one "
                    "moved by the optical flow, and a temporal loss keeps it there). Every "
                    "estilo option applies to every frame. Finished frames are kept in "
                    "OUT_frames/: running the same command again continues.")
    parser.add_argument("clip", help="a video (MP4, WebM, MOV, MKV, AVI, GIF) or a folder of "
                        "numbered frames")
    parser.add_argument("style", nargs="*", default=[], help="style image(s) or folder(s)")
    parser.add_argument("--style", dest="style_option", nargs="+", default=[], metavar="STYLE",
                        help="style image(s) or folder(s), as an option")
    parser.add_argument("-o", "--output", default="out.mp4",
                        help="a video (.mp4 H.264, .mov, .mkv, .webm, .gif, .webp) or a folder "
                        "for numbered PNG frames (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output "
                        "and frames of another run in the work folder")
    parser.add_argument("--no-mkdir", dest="mkdir", action="store_false",
                        help="fail if the output folder does not exist (default: create it)")
    from ..video.media import DEFAULT_CRF
    from ..video.run import FRAME_ITERATIONS, MAX_FRAMES, TEMPORAL_WEIGHT
    parser.add_argument("--temporal-weight", type=float, default=TEMPORAL_WEIGHT, metavar="W",
                        help="weight of the temporal loss (default %(default)g; 0: none)")
    parser.add_argument("--frame-iterations", type=int, default=FRAME_ITERATIONS, metavar="N",
                        help="iterations of each frame after the first (default %(default)s)")
    parser.add_argument("--max-frames", type=int, default=MAX_FRAMES, metavar="N",
                        help="refuse longer clips (default %(default)s)")
    parser.add_argument("--fps", type=_fps, metavar="RATE",
                        help="frame rate of a folder of frames (default 24); e.g. 30000/1001")
    parser.add_argument("--crf", type=int, default=DEFAULT_CRF, metavar="Q",
                        help="H.264/VP9 quality, 0 (best) to 51 (default %(default)s)")
    parser.add_argument("--keep-frames", action="store_true",
                        help="keep the frames' PNGs (OUT_frames/) after writing OUT")
    add_run_flags(parser)
    parser.add_argument("--version", action="version", version=f"estilo {version()}")
    add_config_options(parser)
    return parser


def _fps(text: str) -> Fraction:
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a frame rate: {text!r} (e.g. 24 or 30000/1001)")
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"the frame rate must be positive, not {text}")
    return rate


def main(argv: Sequence[str]) -> int:
    """``estilo video``; returns the exit code."""
    try:
        parser = build_parser()
    except ImportError:
        print(f"estilo: error: {VIDEO_HINT}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(list(argv))
    args.style = [*args.style, *args.style_option]
    if not args.style:
        parser.error("give at least one style image (STYLE or --style)")
    return guarded(lambda: _command(args), debug=args.debug, quiet=args.quiet)


def _command(args: argparse.Namespace) -> int:
    from ..video import VideoOptions, video_job

    config = config_from_args(args)
    with flags_in_messages():
        options = _options(VideoOptions, args)
        job = video_job(args.clip, args.style, args.output, config, options=options,
                        overwrite=args.overwrite, mkdir=args.mkdir)
    job.first_job.weights()  # fail on missing weights before the progress bar starts
    tune(resolve_device(config.device))  # backend speed settings: the app's choice
    clip = job.clip
    if not args.quiet:
        left = clip.frames - job.done
        resumed = f"; {job.done} done by an earlier run, {left} to go" if job.done else ""
        print(f"estilo: {clip.frames} frames of {job.size[0]}x{job.size[1]} px at "
              f"{float(clip.fps):.3g} fps{resumed}; frames in {job.work}", file=sys.stderr)
    return _paint(job, quiet=args.quiet)


def _options(kind: Any, args: argparse.Namespace) -> Any:
    try:
        return kind(temporal_weight=args.temporal_weight, frame_iterations=args.frame_iterations,
                    max_frames=args.max_frames, fps=args.fps, crf=args.crf,
                    keep_frames=args.keep_frames)
    except ConfigError as e:  # the fields as flags: frame_iterations -> --frame-iterations
        raise ConfigError("--" + str(e).replace("_", "-")) from None


def _paint(job: Any, *, quiet: bool) -> int:
    progress = Progress(job.clip.frames, unit="frame", quiet=quiet)
    progress.step(n=job.done)
    painted: list[float] = []
    stop = Interruption()

    def on_step(index: int, step: Step) -> None:
        progress.step(f"frame {index}/{job.clip.frames}", f"it {step.iteration}/{step.total}, "
                      f"loss={step.loss:.4g}", n=0)

    status = 0
    try:
        with sigterm_as_interrupt() as stop:
            for frame in job.frames(on_step):
                if frame.resumed:
                    continue
                painted.append(frame.seconds)
                progress.step(f"frame {frame.index}/{frame.frames}")
                progress.line(_frame_line(frame))
            progress.close()
            written = job.encode()
    except KeyboardInterrupt:
        status = stop.status
    except NonFiniteError as e:
        status = EXIT_FAILED
        progress.close()
        print(f"estilo: error: frame {job.done + 1}: {e}", file=sys.stderr)
    finally:
        progress.close()
    if status:
        if status != EXIT_FAILED:
            print(f"estilo: interrupted at frame {job.done + 1}", file=sys.stderr)
        print(f"estilo: {job.done} finished frames kept in {job.work}; run the same command "
              "again to continue", file=sys.stderr)
        return status
    if not quiet:
        print(f"estilo: wrote {written} ({_timing(painted, job.clip.frames)})", file=sys.stderr)
    return 0


def _frame_line(frame: Any) -> str:
    terms = ", ".join(f"{k} {v:.3g}" for k, v in frame.terms.items() if v)
    start = "a still" if frame.index == 1 else f"flow reliable on {frame.reliable:.1%}"
    return (f"estilo: frame {frame.index}/{frame.frames}: {frame.iterations} iterations, "
            f"{frame.seconds:.1f} s, {start} ({terms})")


def _timing(painted: list[float], frames: int) -> str:
    """The summary: frames, time of the first and of the later frames, total."""
    if not painted:
        return f"{frames} frames, all painted by an earlier run"
    whole = len(painted) == frames  # the first frame was painted now
    parts = [f"{frames} frames" + ("" if whole else f", {len(painted)} painted now")]
    later = painted[1:] if whole else painted
    if whole:
        parts.append(f"first {painted[0]:.1f} s")
    if later:
        parts.append(f"later frames {statistics.median(later):.1f} s median "
                     f"({min(later):.1f}-{max(later):.1f})")
    parts.append(f"{sum(painted):.0f} s in all")
    return ", ".join(parts)
