"""The web app's jobs without Gradio: options, limits, uploads, the run loop and stop flags.

Everything here is plain Python, so tests need no server. The page (:mod:`estilo.web.app`)
passes only the options it shows, each checked against its choices; everything else
(weights, device) is the server's. The limits are checked again inside the job.
"""

from __future__ import annotations

import atexit
import ctypes
import dataclasses
import gc
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..config import FIELDS, INITS, ConfigError, StyleConfig, choices
from ..devices import resolve_device, tune
from ..io.image import ImageError, load_alpha, load_image, to_pil, working_size
from ..io.output import save_image
from ..options import flag, value
from ..transfer import Job, Step, Stylizer
from .painted import MAX_STYLES

log = logging.getLogger(__name__)

ARTISTIC = ("strength", "style_scale", "preserve_color", "keep_alpha", "size")
"""StyleConfig fields the page shows up front, in artists' words."""
ADVANCED = ("iterations", "optimizer", "pooling", "style_layers", "init", "seed")
"""StyleConfig fields under the page's "Advanced" accordion."""
UI_FIELDS = ARTISTIC + ADVANCED
"""StyleConfig fields offered on the page, in order (those the config has at the time)."""
STYLE_SIDE = 2  # uploaded paintings are kept at up to this many times the largest size
GPU_OOM = ("out of GPU memory at this size: choose a smaller size, or wait for the other "
           "jobs on this server")


@dataclass(frozen=True)
class Limits:
    """What one job may ask of the server; checked inside the job, not only in the page."""

    max_size: int = 1024            # output long side (px)
    max_iterations: int = 1000      # iterations per level
    max_pixels: int = 25_000_000    # decoded pixels per uploaded image
    max_upload_mb: float = 20.0     # bytes per upload, refused by Gradio while streaming
    queue_size: int = 10            # jobs waiting (the running one not counted)
    time_limit: float = 900.0       # seconds per job; 0: none
    preview_every: float = 0.5      # seconds between live preview updates; 0: every step

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not value >= 0 or (value == 0 and f.name not in ("time_limit", "preview_every")):
                raise ConfigError(f"{flag(f.name)} must be positive, not {value!r}")


@dataclass(frozen=True)
class Update:
    """One refresh of the page: the canvas (PIL preview, PNG path or None: unchanged), the
    status line, the PNG to download (None: none yet) and, with it, the photo at the PNG's
    size (for the before/after slider)."""

    image: Image.Image | str | None
    status: str
    download: str | None = None
    before: str | None = None


# --- options --------------------------------------------------------------------------------


def ui_fields() -> tuple[str, ...]:
    """The UI_FIELDS that StyleConfig has (``preserve_color`` appears when it is added)."""
    return tuple(name for name in UI_FIELDS if name in FIELDS)


def field_choices(name: str) -> tuple[Any, ...] | None:
    """The allowed values of a choice field (``init``: the named ones only), else None."""
    return INITS if name == "init" else choices(name)


def coerce(name: str, raw: Any) -> Any:
    """A client's value for field ``name`` (see :func:`estilo.options.value`); a choice field
    takes only its choices (``init``: no paths from a client).

    Raises:
        ConfigError: the value is not one of the choices or not of the option's kind.
    """
    allowed = field_choices(name)
    if allowed is not None and raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, not {raw!r}")
    return value(name, raw)


def long_side(size: int | tuple[int, int]) -> int:
    """The long side of a ``size`` option."""
    return max(size) if isinstance(size, tuple) else size


# --- the server side, without Gradio ------------------------------------------------------------


class Studio:
    """The app's state: one :class:`Stylizer` (networks cached), the limits, a stop flag per
    browser session, and each session's folder (its prepared uploads and its results, kept
    for the session's history and removed when the tab closes)."""

    def __init__(self, defaults: StyleConfig | None = None, limits: Limits | None = None) -> None:
        self.defaults = defaults or StyleConfig()
        self.limits = limits or Limits()
        self.stylizer = Stylizer()
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.root = Path(tempfile.mkdtemp(prefix="estilo-web-"))
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)

    # Stop flags, one per session: Stylize clears it, Stop and closing the tab set it.
    def flag(self, session: str) -> threading.Event:
        """The stop flag of a session (created on first use)."""
        with self._lock:
            return self._flags.setdefault(session, threading.Event())

    def arm(self, session: str) -> None:
        """A new run was requested: clear the session's stop flag."""
        self.flag(session).clear()

    def stop(self, session: str) -> None:
        """Stop the session's run (running or still queued) after the current step."""
        self.flag(session).set()

    def forget(self, session: str) -> None:
        """The tab was closed: stop its run, drop its flag and its files."""
        with self._lock:
            flag = self._flags.pop(session, None)
        if flag is not None:
            flag.set()
        shutil.rmtree(self.folder(session, create=False), ignore_errors=True)

    def folder(self, session: str, *, create: bool = True) -> Path:
        """The session's folder (its uploads and results), named by a digest of the session:
        the results' embedded parameters name the mask's path, and the session id stays
        secret."""
        path = self.root / hashlib.sha256(session.encode()).hexdigest()[:16]
        if create:
            path.mkdir(exist_ok=True)
        return path

    def config(self, values: dict[str, Any]) -> StyleConfig:
        """The server's defaults with the page's options applied, checked against the limits.

        Raises:
            ConfigError: an unknown option, a bad value, or one beyond this server's limits.
        """
        unknown = set(values) - set(ui_fields()) - {"style_blend"}
        if unknown:
            raise ConfigError(f"option(s) not settable from the web page: {', '.join(sorted(unknown))}")
        options = {name: coerce(name, raw) for name, raw in values.items()}
        config = self.defaults.replace(**options)
        self.check_limits(config)
        return config

    def check_limits(self, config: StyleConfig) -> None:
        """Refuse a config beyond the server's size and iteration limits."""
        limits = self.limits
        if long_side(config.size) > limits.max_size:
            raise ConfigError(f"size must be at most {limits.max_size} px on this server, "
                              f"not {long_side(config.size)}")
        for name in ("iterations", "scale_iterations")[:1 if config.scales == 1 else 2]:
            value = getattr(config, name)
            if not 1 <= value <= limits.max_iterations:
                raise ConfigError(f"{name} must be between 1 and {limits.max_iterations} on "
                                  f"this server, not {value}")

    def check_upload(self, path: str | os.PathLike[str]) -> Image.Image:
        """Decode an upload with the server's pixel limit (upright: EXIF orientation applied).

        Raises:
            ImageError: not a usable image (estilo's one-line message, naming the upload).
        """
        path = Path(path)
        try:
            image = load_image(path, max_pixels=self.limits.max_pixels)
            working_size(image.size, None)  # too small for VGG19?
        except ImageError as e:  # name the upload, not the server's temporary path
            message = str(e).replace(repr(str(path)), path.name).replace(str(path), path.name)
            raise ImageError(message) from None
        return image

    def prepare(self, path: str | os.PathLike[str], session: str, *, style: bool = False) -> str:
        """Check an upload and keep an upright copy, downsized to what a job can use (a
        photo: the largest size; a painting: :data:`STYLE_SIDE` times that), as a PNG named
        like the upload in the session's folder; its transparency is kept.

        Raises:
            ImageError: not a usable image (see :meth:`check_upload`).
        """
        image = self.check_upload(path)
        alpha = load_alpha(path, max_pixels=self.limits.max_pixels)
        if alpha is not None:
            image.putalpha(alpha)
        side = self.limits.max_size * (STYLE_SIDE if style else 1)
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=self.folder(session)))
        target = folder / (Path(path).stem[:80] + ".png")
        image.save(target, optimize=False)
        return str(target)

    def run(self, content: str | None, style: str | list[str] | None, values: dict[str, Any],
            stop: threading.Event, *, session: str = "anonymous",
            mask: Image.Image | None = None) -> Generator[Update, None, None]:
        """Check everything, then stylize, yielding previews and finally the PNG (kept in the
        session's folder until the tab closes or :meth:`discard`).

        Args:
            style: one painting or up to :data:`MAX_STYLES` (weights: ``style_blend``).
            mask: the regions painted in the page (see :mod:`estilo.web.painted`), or None.

        Raises:
            ConfigError, ImageError, WeightsError, DeviceError, NonFiniteError: as the CLI.
        """
        styles = [style] if isinstance(style, str) else list(style or [])
        if not content or not styles:
            raise ImageError("choose a photo and at least one painting first "
                             "(or press 'Use the example')")
        if len(styles) > MAX_STYLES:
            raise ConfigError(f"at most {MAX_STYLES} styles at once on this page, not {len(styles)}")
        config = self.config(values)
        for path in (content, *styles):
            self.check_upload(path)
        folder = Path(tempfile.mkdtemp(prefix="result-", dir=self.folder(session)))
        try:
            if mask is not None and len(styles) > 1:
                mask.save(folder / "mask.png")
                config = config.replace(mask=str(folder / "mask.png"))
            job = self.stylizer.job(content, styles[0] if len(styles) == 1 else styles, config)
            tune(resolve_device(config.device))  # backend speed settings: the app's choice
            yield Update(None, "Starting: loading the network...")
            yield from self._drive(job, stop, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            free_memory()

    def discard(self, path: str | os.PathLike[str]) -> None:
        """Remove a result (its folder) that the page no longer shows."""
        folder = Path(path).parent
        if folder.parent.parent == self.root and folder.name.startswith("result-"):
            shutil.rmtree(folder, ignore_errors=True)

    def _drive(self, job: Job, stop: threading.Event, folder: Path) -> Iterator[Update]:
        """Iterate the job's steps until done, stopped or out of time; save the PNG."""
        last: Step | None = None
        reason = "done"
        shown = 0.0
        deadline = time.monotonic() + self.limits.time_limit if self.limits.time_limit else None
        steps = job.steps()
        try:
            for last in steps:
                reason = interrupted(stop, deadline)
                if reason != "done":
                    break
                if time.monotonic() - shown >= self.limits.preview_every:
                    shown = time.monotonic()
                    yield Update(to_pil(job.finish(last.image)), progress_text(last))
        finally:
            steps.close()
        if last is None:
            shutil.rmtree(folder, ignore_errors=True)
            yield Update(None, "Stopped before the first iteration; nothing to save.")
            return
        result = job.output(job.finish(last.image))
        path = save_image(result, folder / f"estilo-{time.strftime('%Y%m%d-%H%M%S')}.png",
                          parameters=job.parameters(last, interrupted=reason != "done"))
        before = folder / "photo.png"
        job.inputs.content.image.resize(result.size, Image.Resampling.LANCZOS).save(before)
        yield Update(str(path), final_text(last, reason), str(path), str(before))


def interrupted(stop: threading.Event, deadline: float | None) -> str:
    """Why a run should end now: ``stopped``, ``time limit``, or ``done`` (it need not)."""
    if stop.is_set():
        return "stopped"
    if deadline is not None and time.monotonic() > deadline:
        return "time limit"
    return "done"


def progress_text(step: Step) -> str:
    """One status line: iteration, level, loss and the estimated time left."""
    eta = step.elapsed / step.iteration * (step.total - step.iteration)
    level = f" · level {step.level + 1}/{step.levels}" if step.levels > 1 else ""
    return (f"**Iteration {step.iteration}/{step.total}**{level} at {step.size[0]}x{step.size[1]}"
            f" · loss {step.loss:.4g} · {step.elapsed:.0f} s elapsed · about {eta:.0f} s left")


def final_text(step: Step, reason: str) -> str:
    """The status line once a run has ended."""
    what = {"done": "Done", "stopped": "Stopped",
            "time limit": "Stopped at this server's time limit"}[reason]
    return (f"**{what}** after {step.iteration}/{step.total} iterations in {step.elapsed:.1f} s"
            f" · loss {step.loss:.4g}. Download the PNG: it carries every parameter.")


ARENAS = 2
"""glibc malloc arenas the server may use (see :func:`limit_malloc_arenas`)."""


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` would); True if it was done.

    Gradio runs each job's steps on whichever of its worker threads is free, and glibc gives
    each new thread its own 64 MB arena (up to 8 per core) whose freed pages mostly stay
    resident: without the cap the server's memory climbed by steps of 40-60 MB over a
    hundred jobs (benchmarks/web_soak.py), with it it levels off. Elsewhere (not glibc),
    nothing is done.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def free_memory() -> None:
    """Release what a finished job held (GPU memory too) so the next job starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
