"""Stylising a clip frame by frame without flicker (Ruder, Dosovitskiy and Brox 2016).

The first frame is a still, run with the options as given. Every later frame starts from the
previous stylised frame warped by the optical flow into it (what comes into view: the
content), at the output size only, with ``frame_iterations`` iterations, and a temporal loss
holds it to that warped frame on the pixels where the flow is reliable
(:mod:`estilo.video.flow`)::

    temporal = temporal_weight * sum(c * (x - warped) ** 2) / (3 * H * W)

Nothing is lost: every finished frame is a PNG with its parameters in the work folder
(``OUT_frames/`` beside ``OUT``, or the output folder itself), written atomically. Running the
same job again continues after the last finished frame; each frame starts from the PNG of the
one before, so a resumed clip has exactly the frames of an uninterrupted one. The video is
encoded at the end, atomically, and the work folder removed.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .. import color
from ..config import ConfigError, StyleConfig
from ..files import write_atomic
from ..io.image import resize, to_tensor
from ..io.inputs import StyleInput
from ..io.metadata import same_run
from ..io.output import OutputError, check_output_path, save_image
from ..transfer import ExtraLoss, Job, Step, Stylizer
from . import flow
from .media import (
    DEFAULT_CRF,
    FRAME_PATTERN,
    VIDEO_CODECS,
    Clip,
    VideoError,
    open_clip,
    output_format,
    read_frames,
    write_clip,
)

log = logging.getLogger(__name__)

TEMPORAL_WEIGHT = 500.0   # chosen by benchmarks/flicker.py (see benchmarks/README.md)
FRAME_ITERATIONS = 5      # iterations of every frame after the first (ditto)
MAX_FRAMES = 1000
MANIFEST = "video.json"
FORMAT = "estilo-video/1"


@dataclass(frozen=True)
class VideoOptions:
    """What a clip adds to a still's :class:`~estilo.StyleConfig`."""

    temporal_weight: float = TEMPORAL_WEIGHT  # 0: no temporal loss (frames still start warped)
    frame_iterations: int = FRAME_ITERATIONS  # iterations of each frame after the first
    max_frames: int = MAX_FRAMES              # refuse longer clips
    fps: Fraction | None = None               # a folder of frames' rate (default 24)
    crf: int = DEFAULT_CRF                    # H.264/VP9 quality: 0 best, 51 worst
    keep_frames: bool = False                 # keep the work folder after encoding

    def __post_init__(self) -> None:
        if not self.temporal_weight >= 0:
            raise ConfigError(f"temporal_weight must be a non-negative number, not "
                              f"{self.temporal_weight!r}")
        for name, low in (("frame_iterations", 1), ("max_frames", 1), ("crf", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name} must be at least {low}, not {getattr(self, name)!r}")
        if self.crf > 51:
            raise ConfigError(f"crf must be between 0 and 51, not {self.crf!r}")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"fps must be positive, not {self.fps!r}")


@dataclass(frozen=True)
class Frame:
    """One finished frame of a clip (what :meth:`VideoJob.frames` yields)."""

    index: int                 # 1-based
    frames: int                # in the clip
    path: Path                 # its PNG in the work folder (parameters embedded)
    image: Image.Image = field(repr=False)
    seconds: float             # time it took; 0 when it was done by an earlier run
    iterations: int            # 0 when done earlier
    resumed: bool              # done by an earlier run, read back
    reliable: float            # share of pixels the temporal loss holds (0 for the first)
    terms: dict[str, float] = field(default_factory=dict)  # final weighted loss terms


def temporal_loss(target: Tensor, weights: Tensor, weight: float) -> ExtraLoss:
    """The temporal term (an :data:`~estilo.transfer.ExtraLoss`): ``weight`` times the mean
    over pixels and channels of ``weights * (image - target) ** 2``.

    Args:
        target: 1 x 3 x H x W, the previous stylised frame warped into this one.
        weights: 1 x 1 x H x W, 1 where the flow is reliable, 0 elsewhere.
    """
    def loss(image: Tensor) -> dict[str, Tensor]:
        t, c = target.to(image.device), weights.to(image.device)
        if t.shape[-2:] != image.shape[-2:]:  # a coarser level
            t = torch.nn.functional.interpolate(t, size=image.shape[-2:], mode="bilinear")
            c = torch.nn.functional.interpolate(c, size=image.shape[-2:], mode="bilinear")
        return {"temporal": weight * (c * (image - t) ** 2).mean()}

    return loss


StepCallback = Callable[[int, Step], None]


class VideoJob:
    """A checked clip job. :meth:`frames` paints (or reads back) every frame; :meth:`encode`
    writes the output; :meth:`run` does both. Build it with :func:`video_job`."""

    def __init__(self, clip: Clip, style: StyleInput, output: Path, config: StyleConfig,
                 options: VideoOptions, stylizer: Stylizer, *, overwrite: bool = False) -> None:
        self.clip, self.style, self.output = clip, style, output
        self.config, self.options, self.stylizer = config, options, stylizer
        self.folder_output = output_format(output) is None
        self.work = output if self.folder_output else output.with_name(f"{output.stem}_frames")
        first = next(read_frames(clip))
        self.first_job = stylizer.job(self._frame(1, first), style, config)  # checks options
        width, height = self.first_job.inputs.size
        fmt = output_format(output)
        if fmt in VIDEO_CODECS and (width % 2 or height % 2):  # 4:2:0 chroma: even sides
            even = (width - width % 2, height - height % 2)
            log.warning("H.264 and VP9 video need even sides: the frames are painted at "
                        "%dx%d, not %dx%d", *even, width, height)
            self.config = config = config.replace(size=even)
            self.first_job = stylizer.job(self._frame(1, first), style, config)
        if config.keep_alpha and self.first_job.inputs.alpha is not None and fmt is not None:
            log.warning("%s cannot store transparency: give a folder (a name without a suffix) "
                        "for PNG frames that keep it", fmt.upper())
        self.size = self.first_job.inputs.size
        self._key = self._run_key()
        self.done = self._check_work(overwrite)

    @property
    def frame_paths(self) -> list[Path]:
        """Where each frame's PNG goes."""
        return [self.work / FRAME_PATTERN.format(i) for i in range(1, self.clip.frames + 1)]

    def frames(self, on_step: StepCallback | None = None) -> Generator[Frame, None, None]:
        """Yield every frame in order: those finished by an earlier run read back, the others
        painted and saved as they finish.

        Args:
            on_step: called with (frame index, :class:`~estilo.Step`) after every step.

        Raises:
            VideoError: a frame does not decode.
            NonFiniteError: a frame's optimisation diverged (earlier frames are kept).
        """
        previous: np.ndarray | None = None
        index = 0
        for index, picture in enumerate(read_frames(self.clip), start=1):
            if index > self.clip.frames:
                break
            content = np.asarray(resize(picture, self.size), dtype=np.uint8).copy()
            path = self.frame_paths[index - 1]
            if index <= self.done:
                with Image.open(path) as saved:
                    image = saved.convert("RGB")
                yield Frame(index, self.clip.frames, path, image, 0.0, 0, True, 0.0)
            else:
                yield self._paint(index, picture, content, previous, on_step)
                self.done = index
            previous = content
        if index < self.clip.frames:
            raise VideoError(f"only {index} of the {self.clip.frames} frames of "
                             f"{str(self.clip.path)!r} decode; re-encode it")

    def encode(self) -> Path:
        """Write the output from the finished frames (atomically) and remove the work folder
        (unless ``keep_frames``); a folder output is already complete."""
        if self.done < self.clip.frames:
            raise RuntimeError(f"only {self.done} of {self.clip.frames} frames are painted")
        if self.folder_output:
            (self.work / MANIFEST).unlink(missing_ok=True)
            return self.output
        written = write_clip(self.output, self.frame_paths, self.clip.fps, audio=self.clip,
                             crf=self.options.crf)
        if not self.options.keep_frames:
            shutil.rmtree(self.work, ignore_errors=True)
        return written

    def run(self, on_step: StepCallback | None = None) -> Path:
        """Paint every frame, then encode; return the output's path."""
        for _ in self.frames(on_step):
            pass
        return self.encode()

    # --- one frame ----------------------------------------------------------------------

    def _paint(self, index: int, picture: Image.Image, content: np.ndarray,
               previous: np.ndarray | None, on_step: StepCallback | None) -> Frame:
        start = time.perf_counter()
        job, reliable = self._job(index, picture, content, previous)
        last: Step | None = None
        for last in job.steps():
            if on_step is not None:
                on_step(index, last)
        assert last is not None  # every frame runs at least one iteration
        image = job.picture(last.image)
        path = self.frame_paths[index - 1]
        self._start_work()
        params = job.parameters(last, video=self._video_record(index, reliable))
        saved = save_image(image, path, parameters=params)
        if saved != path.resolve():
            raise OutputError(f"cannot write frame {index} to {str(path)!r}; it went to "
                              f"{str(saved)!r}: free disk space and run the command again")
        return Frame(index, self.clip.frames, path, image, time.perf_counter() - start,
                     last.iteration, False, reliable, dict(last.terms))

    def _job(self, index: int, picture: Image.Image, content: np.ndarray,
             previous: np.ndarray | None) -> tuple[Job, float]:
        """Frame ``index``'s job: a still for the first; for the others a start from the
        previous stylised frame warped, and the temporal loss."""
        if previous is None:
            return self.first_job, 0.0
        backward = flow.flow(content, previous)   # this frame -> the previous one
        weights = flow.reliable(flow.flow(previous, content), backward)
        with Image.open(self.frame_paths[index - 2]) as saved:
            painted = to_tensor(saved.convert("RGB"))
        warped = flow.warp(painted, backward).clamp(0.0, 1.0)
        new = torch.from_numpy(~flow.inside(backward))[None, None]
        start = torch.where(new, to_tensor(Image.fromarray(content)), warped)
        if self.config.preserve_color == "luminance":  # what the network sees
            warped = color.grey(warped)
        config = self.config.replace(iterations=self.options.frame_iterations, scales=1,
                                     size=self.size)  # the first frame's working size
        extra = (temporal_loss(warped, torch.from_numpy(weights)[None, None],
                               self.options.temporal_weight)
                 if self.options.temporal_weight > 0 else None)
        job = self.stylizer.job(self._frame(index, picture), self.style, config,
                                start_image=start, extra_loss=extra)
        return job, float(weights.mean())

    def _frame(self, index: int, picture: Image.Image) -> str | Path | Image.Image:
        """Frame ``index`` as a job's content: a folder's file itself when its transparency
        is kept (``keep_alpha``: the job reads the alpha from it), else the decoded picture."""
        return self.clip.files[index - 1] if self.config.keep_alpha and self.clip.files \
            else picture

    def _video_record(self, index: int, reliable: float) -> dict[str, Any]:
        return {"clip": str(self.clip.path), "clip_sha256": self.clip.sha256, "frame": index,
                "frames": self.clip.frames, "fps": str(self.clip.fps),
                "temporal_weight": self.options.temporal_weight,
                "frame_iterations": self.options.frame_iterations,
                "start": "config.init" if index == 1 else "previous frame warped by the flow",
                "reliable": round(reliable, 4)}

    # --- the work folder ------------------------------------------------------------------

    def _run_key(self) -> dict[str, Any]:
        """What makes the frames in a work folder this job's frames: the run's
        :func:`~estilo.io.metadata.same_run` key (the clip as its content) and the video's
        own options."""
        inputs = self.first_job.inputs
        run = same_run(self.config.to_dict(), content=self.clip.sha256,
                       styles=[s.sha256 for s in inputs.styles], groups=inputs.groups,
                       init=inputs.init.sha256 if inputs.init else None,
                       mask=inputs.mask.sha256 if inputs.mask else None)
        return {"format": FORMAT, "run": list(run),
                "video": {"temporal_weight": self.options.temporal_weight,
                          "frame_iterations": self.options.frame_iterations},
                "clip": {"sha256": self.clip.sha256, "frames": self.clip.frames}}

    def _check_work(self, overwrite: bool) -> int:
        """How many frames an earlier run of this job left; refuse (or, with ``overwrite``,
        clear) frames of another run."""
        manifest = self.work / MANIFEST
        ours = sorted(self.work.glob("frame_*.png")) if self.work.is_dir() else []
        if not ours and not manifest.exists():
            return 0
        try:
            same = json.loads(manifest.read_text()) == self._key
        except (OSError, ValueError):
            same = False
        if same:
            done = 0
            while done < self.clip.frames and self.frame_paths[done].is_file():
                done += 1
            return done
        if not overwrite:
            what = ("frames of another run (other options or inputs)" if manifest.exists()
                    else "frames already")
            raise OutputError(f"{str(self.work)!r} holds {what}; use --overwrite to replace "
                              "them, or choose another output")
        for file in ours:
            file.unlink()
        manifest.unlink(missing_ok=True)
        return 0

    def _start_work(self) -> None:
        """Create the work folder and its manifest before the first frame is saved."""
        manifest = self.work / MANIFEST
        if not manifest.exists():
            self.work.mkdir(parents=True, exist_ok=True)
            write_atomic(manifest, json.dumps(self._key, indent=1, sort_keys=True))


def video_job(source: str | Path, style: StyleInput, output: str | Path,
              config: StyleConfig | None = None, *, options: VideoOptions | None = None,
              stylizer: Stylizer | None = None, overwrite: bool = False,
              mkdir: bool = True) -> VideoJob:
    """Check a clip, the styles, the options and the output (nothing is painted yet).

    Args:
        source: a video file or a folder of numbered frames.
        style: the style image(s) or folder(s), as for a still.
        output: a video file (``.mp4`` H.264 by default; ``.mov``, ``.mkv``, ``.webm``,
            ``.gif``, ``.webp``) or a folder for numbered PNG frames.
        config: the still options every frame uses.
        options: what a clip adds (:class:`VideoOptions`).
        overwrite: replace an existing output, and frames of another run in the work folder.

    Raises:
        VideoError, ImageError, ConfigError, OutputError: a bad clip, style, option or output;
            nothing is written.
    """
    options = options or VideoOptions()
    clip = open_clip(source, max_frames=options.max_frames, fps=options.fps)
    target = _check_output(Path(output).expanduser(), clip, overwrite=overwrite, mkdir=mkdir)
    return VideoJob(clip, style, target, config or StyleConfig(), options,
                    stylizer or Stylizer(), overwrite=overwrite)


def _check_output(output: Path, clip: Clip, *, overwrite: bool, mkdir: bool) -> Path:
    fmt = output_format(output)
    if _same(output, clip.path):
        raise OutputError(f"output {str(output)!r} is the input clip; choose another output")
    if fmt is None:
        if output.exists() and not output.is_dir():
            raise OutputError(f"output {str(output)!r} is a file; give a folder or a video name")
        if not mkdir and not output.parent.is_dir():
            raise OutputError(f"output folder {str(output.parent)!r} does not exist; create it "
                              "first")
        return output.resolve()
    # The folder is created (unless not ``mkdir``) and proved writable as for an image.
    check_output_path(output.parent / ".estilo-video-probe.png", overwrite=True, mkdir=mkdir)
    target = output.resolve()
    if target.is_dir():
        raise OutputError(f"output {str(output)!r} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise OutputError(f"output {str(output)!r} already exists; use --overwrite to replace it")
    return target


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and a.resolve() == b.resolve()
    except OSError:
        return False


def stylize_video(source: str | Path, style: StyleInput, output: str | Path,
                  **options: Any) -> Path:
    """Stylise a clip with default video options; ``options`` are StyleConfig fields."""
    return video_job(source, style, output, StyleConfig(**options)).run()


__all__ = ["FRAME_ITERATIONS", "TEMPORAL_WEIGHT", "Frame", "VideoError", "VideoJob",
           "VideoOptions", "stylize_video", "temporal_loss", "video_job"]
