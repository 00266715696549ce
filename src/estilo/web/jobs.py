"""The web app's jobs without Gradio: options, limits, uploads, the run loop and stop flags.

Everything here is plain Python, so tests need no server. The page (:mod:`estilo.web.app`)
passes only the options it shows, each checked against its choices; everything else
(weights, device) is the server's. The limits are checked again inside the job.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..config import FIELDS, INITS, ConfigError, StyleConfig, UserError, choices
from ..devices import mallopt, resolve_device, tune
from ..files import sha256
from ..io.image import ImageError, load_alpha, load_image, to_pil, working_size
from ..io.output import read_parameters, save_image
from ..options import flag, value
from ..pyramid import Level
from ..resume import resume_job
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
ROOT_PREFIX = "estilo-web-"
"""The server's folder in the temp folder: ``estilo-web-PID-XXXX`` (PID: the server's)."""
UPLOAD_RECORD = "upload.json"
"""Beside each prepared upload: the uploaded file's name and sha256 (see :meth:`Studio.prepare`)."""


@dataclass(frozen=True)
class Limits:
    """What one job may ask of the server; checked inside the job, not only in the page."""

    max_size: int = 1024            # output long side (px)
    max_iterations: int = 1000      # iterations per level
    max_pixels: int = 80_000_000    # pixels per uploaded image (phones take 48-50 MP; a
                                    # JPEG is decoded at the reduced scale a job can use)
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
    mask: str | None = None   # with the PNG: its mask (the library's format), if any
    number: int = 0           # with the PNG: the session's count of results


# --- options --------------------------------------------------------------------------------


def ui_fields() -> tuple[str, ...]:
    """The UI_FIELDS that StyleConfig has, in order."""
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
    for the session's history and removed when the tab closes).

    Everything lives in one folder of the temp folder, ``estilo-web-PID-XXXX``, removed by
    :meth:`close` (the server calls it on SIGTERM, Ctrl-C and exit); a new Studio first
    removes the folders of servers that died without it (their PID no longer runs).
    """

    def __init__(self, defaults: StyleConfig | None = None, limits: Limits | None = None) -> None:
        self.defaults = defaults or StyleConfig()
        self.limits = limits or Limits()
        self.stylizer = Stylizer()
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy: dict[str, int] = {}   # runs going on per session
        self._gone: set[str] = set()      # sessions whose tab closed
        self._counts: dict[str, int] = {}  # results made per session (their file names)
        self._closed = False
        sweep_dead_servers(Path(tempfile.gettempdir()))
        self.root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-"))
        atexit.register(self.close, wait=0.0)

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
        """The tab was closed: stop its run, drop its flag and its files (those of a run
        still going on when it has stopped: nothing it makes is kept)."""
        with self._lock:
            flag = self._flags.pop(session, None)
            self._gone.add(session)
            busy = self._busy.get(session, 0)
        if flag is not None:
            flag.set()
        if not busy:
            shutil.rmtree(self.folder(session, create=False), ignore_errors=True)

    def close(self, wait: float = 10.0) -> None:
        """The server stops: stop every run, give them up to ``wait`` seconds to end, and
        remove the server's folder (every upload and result). Idempotent."""
        with self._lock:
            self._closed = True
            events = list(self._flags.values())
        for event in events:
            event.set()
        with self._idle:
            self._idle.wait_for(lambda: not self._busy, timeout=wait)
        shutil.rmtree(self.root, ignore_errors=True)

    def folder(self, session: str, *, create: bool = True) -> Path:
        """The session's folder (its uploads and results), named by a digest of the session:
        the results' embedded parameters name the mask's path, and the session id stays
        secret.

        Raises:
            UserError: the tab was closed or the server is stopping (``create``).
        """
        path = self.root / hashlib.sha256(session.encode()).hexdigest()[:16]
        if create:
            if self._closed or session in self._gone:
                raise UserError("this page was closed or the server is stopping: reload it")
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

    def check_upload(self, path: str | os.PathLike[str], *, reduce: bool = False) -> Image.Image:
        """Decode an upload with the server's pixel limit (upright: EXIF orientation applied;
        ``reduce``: a JPEG at the reduced scale a job can use).

        Raises:
            ImageError: not a usable image (estilo's one-line message, naming the upload).
        """
        path = Path(path)
        try:
            image = load_image(path, max_pixels=self.limits.max_pixels,
                               reduce_to=self._side(style=True) if reduce else None)
            working_size(image.size, None)  # too small for VGG19?
        except ImageError as e:  # name the upload, not the server's temporary path
            message = str(e).replace(repr(str(path)), path.name).replace(str(path), path.name)
            raise ImageError(message) from None
        return image

    def _side(self, *, style: bool) -> int:
        return self.limits.max_size * (STYLE_SIDE if style else 1)

    def prepare(self, path: str | os.PathLike[str], session: str, *, style: bool = False) -> str:
        """Check an upload and keep an upright copy, downsized to what a job can use (a
        photo: the largest size; a painting: :data:`STYLE_SIDE` times that), as a PNG named
        like the upload in the session's folder; its transparency is kept. Beside it,
        :data:`UPLOAD_RECORD` keeps the uploaded file's name and sha256, which the results'
        parameters carry (so that ``estilo resume`` knows the user's own file).

        Raises:
            ImageError: not a usable image (see :meth:`check_upload`).
        """
        image = self.check_upload(path, reduce=True)
        alpha = load_alpha(path, max_pixels=self.limits.max_pixels,
                           reduce_to=self._side(style=True))
        if alpha is not None:
            image.putalpha(alpha)
        side = self._side(style=style)
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=self.folder(session)))
        target = folder / (Path(path).stem[:80] + ".png")
        image.save(target, optimize=False)
        record = {"name": Path(path).name, "sha256": sha256(path)}
        (folder / UPLOAD_RECORD).write_text(json.dumps(record))
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
        if not self._kept(session):  # the tab was closed while this job waited
            return
        styles = [style] if isinstance(style, str) else list(style or [])
        if not content or not styles:
            raise ImageError("choose a photo and at least one painting first "
                             "(or press 'Use the example')")
        if len(styles) > MAX_STYLES:
            raise ConfigError(f"at most {MAX_STYLES} styles at once on this page, not {len(styles)}")
        config = self.config(values)
        for path in (content, *styles):
            self.check_upload(path)

        def make(folder: Path) -> Job:
            options = config
            if mask is not None and len(styles) > 1:
                mask.save(folder / MASK_FILE)
                options = config.replace(mask=str(folder / MASK_FILE))
            return self.stylizer.job(content, styles[0] if len(styles) == 1 else styles, options)

        yield from self._session_run(session, stop, make)

    def further(self, saved: str, iterations: int, stop: threading.Event, *,
                session: str = "anonymous", size: int | None = None
                ) -> Generator[Update, None, None]:
        """Go further with a result of this session (``saved``, its PNG): ``iterations``
        more from its picture (Continue), at ``size`` if given (Enlarge). The library's
        :func:`~estilo.resume.resume_job`, as ``estilo resume`` runs it.

        Raises:
            ConfigError, ImageError: as :meth:`run` (beyond the limits, inputs gone).
        """
        iterations = coerce("iterations", iterations)

        def make(folder: Path) -> Job:
            recorded = (read_parameters(saved) or {}).get("config", {}).get("mask")
            mask = None
            if recorded:  # each result keeps its own copy (its parent may leave the history)
                mask = shutil.copyfile(recorded, folder / MASK_FILE)
            job = resume_job(saved, iterations=iterations, size=size, mask=mask,
                             stylizer=self.stylizer)
            self.check_limits(job.config)
            return job

        yield from self._session_run(session, stop, make)

    def discard(self, path: str | os.PathLike[str]) -> None:
        """Remove a result (its folder) that the page no longer shows."""
        folder = Path(path).parent
        if folder.parent.parent == self.root and folder.name.startswith("result-"):
            shutil.rmtree(folder, ignore_errors=True)

    def _session_run(self, session: str, stop: threading.Event,
                     make: Callable[[Path], Job]) -> Iterator[Update]:
        """Run the job ``make`` builds in a new result folder of the session, counted as
        busy (a closed tab's files go when it ends; nothing starts once the server stops)."""
        with self._lock:
            if self._closed or session in self._gone:
                return
            self._busy[session] = self._busy.get(session, 0) + 1
            number = self._counts[session] = self._counts.get(session, 0) + 1
        folder: Path | None = None
        try:
            folder = Path(tempfile.mkdtemp(prefix="result-", dir=self.folder(session)))
            job = make(folder)
            tune(resolve_device(job.config.device))  # backend speed settings: the app's choice
            yield Update(None, "Starting: loading the network...")
            yield from self._drive(job, stop, folder, session, number)
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            free_memory()
            self._leave(session)

    def _leave(self, session: str) -> None:
        """A run of ``session`` ended: a closed tab's folder goes now; wake :meth:`close`."""
        with self._idle:
            self._busy[session] -= 1
            if not self._busy[session]:
                del self._busy[session]
                if session in self._gone:
                    shutil.rmtree(self.folder(session, create=False), ignore_errors=True)
            self._idle.notify_all()

    def _kept(self, session: str) -> bool:
        """Whether a result of ``session`` is still wanted (its tab open, the server up)."""
        with self._lock:
            return not self._closed and session not in self._gone

    def _drive(self, job: Job, stop: threading.Event, folder: Path, session: str,
               number: int) -> Iterator[Update]:
        """Iterate the job's steps until done, stopped or out of time; save the PNG."""
        last: Step | None = None
        reason = "done"
        shown = 0.0
        deadline = time.monotonic() + self.limits.time_limit if self.limits.time_limit else None
        left = TimeLeft(job.schedule)
        steps = job.steps()
        try:
            for last in steps:
                reason = interrupted(stop, deadline)
                if reason != "done":
                    break
                seconds = left(last)
                if time.monotonic() - shown >= self.limits.preview_every:
                    shown = time.monotonic()
                    yield Update(to_pil(job.finish(last.image)), progress_text(last, seconds))
        finally:
            steps.close()
        if last is None or not self._kept(session):
            shutil.rmtree(folder, ignore_errors=True)
            if last is None:
                yield Update(None, "Stopped before the first iteration; nothing to save.")
            return
        target = folder / result_name(job, number)
        params = with_uploads(job.parameters(last, interrupted=reason != "done"))
        path = save_image(job.picture(last.image), target, parameters=params,
                          alpha=job.inputs.alpha)
        if path != target:  # the fallback of a failed save: nowhere but the session's folder
            Path(path).unlink(missing_ok=True)
            raise UserError("the result could not be saved on the server (is its disk full?); "
                            "try again later")
        before = folder / "photo.png"
        job.inputs.content.image.resize(job.inputs.size, Image.Resampling.LANCZOS).save(before)
        yield Update(str(path), final_text(last, reason), str(path), str(before),
                     job.config.mask, number)


def enlarged(side: int, max_size: int) -> int | None:
    """The next size up from a long side of ``side`` px (twice it, at most ``max_size``);
    None when ``side`` is already the largest."""
    return min(2 * side, max_size) if side < max_size else None


MASK_FILE = "mask.png"
"""A result's mask (the library's format, as ``--mask`` takes it), in the result's folder."""


def sweep_dead_servers(temp: Path) -> list[Path]:
    """Remove the folders (``estilo-web-PID-*``) that servers left in ``temp`` when they were
    killed without cleaning up (their PID no longer runs); return them. POSIX only."""
    removed: list[Path] = []
    if os.name != "posix":
        return removed
    for folder in temp.glob(f"{ROOT_PREFIX}*-*"):
        pid = folder.name[len(ROOT_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def result_name(job: Job, number: int) -> str:
    """A result's file name: the photo's and paintings' names and the session's count,
    ``cat-starry_night-3.png``."""
    stems = [re.sub(r"[^\w-]+", "_", Path(source.name).stem)[:24].strip("_") or "image"
             for source in (job.inputs.content, *job.inputs.styles)]
    return f"{stems[0]}-{'+'.join(stems[1:])}-{number}.png"


def with_uploads(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with each prepared upload's record (the file as the user uploaded it:
    name and sha256, see :meth:`Studio.prepare`) as its input's ``upload``."""
    inputs = params.get("inputs") or {}
    for entry in [inputs.get("content"), *(inputs.get("styles") or [])]:
        record = Path(entry["path"]).parent / UPLOAD_RECORD if entry and entry.get("path") else None
        if record is not None and record.is_file():
            entry["upload"] = json.loads(record.read_text())
    return params


@dataclass
class TimeLeft:
    """Seconds left in a run, from its steps so far: each level's pace is measured from its
    second step on (the first also computes the level's targets, and the run's first loads
    the network), and the levels still to come are estimated from it by their pixels."""

    levels: list[Level]
    _first: dict[int, tuple[int, float]] = field(default_factory=dict)
    _pace: float | None = None  # seconds per step and pixel

    def __call__(self, step: Step) -> float | None:
        """The estimate after ``step``; None until two steps of a level were timed."""
        first = self._first.setdefault(step.level, (step.iteration, step.elapsed))
        width, height = step.size
        if step.iteration > first[0]:
            self._pace = (step.elapsed - first[1]) / (step.iteration - first[0]) / (width * height)
        if self._pace is None or step.level >= len(self.levels):
            return None
        end = sum(level.iterations for level in self.levels[:step.level + 1])
        pixels = [(end - step.iteration) * width * height]
        pixels += [level.iterations * level.size[0] * level.size[1]
                   for level in self.levels[step.level + 1:]]
        return self._pace * sum(pixels)


def interrupted(stop: threading.Event, deadline: float | None) -> str:
    """Why a run should end now: ``stopped``, ``time limit``, or ``done`` (it need not)."""
    if stop.is_set():
        return "stopped"
    if deadline is not None and time.monotonic() > deadline:
        return "time limit"
    return "done"


def progress_text(step: Step, left: float | None = None) -> str:
    """One status line: iteration, level, loss and the time left (``left`` s; None: not
    known yet)."""
    level = f" · level {step.level + 1}/{step.levels}" if step.levels > 1 else ""
    eta = "estimating the time left" if left is None else f"about {left:.0f} s left"
    return (f"**Iteration {step.iteration}/{step.total}**{level} at {step.size[0]}x{step.size[1]}"
            f" · loss {step.loss:.4g} · {step.elapsed:.0f} s elapsed · {eta}")


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
    return mallopt(M_ARENA_MAX, arenas)


M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def free_memory() -> None:
    """Release what a finished job held (GPU memory too) so the next job starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
