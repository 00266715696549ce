"""The web app: upload two pictures, watch the painting form live, stop, download the PNG.

``estilo web`` serves a Gradio page. Gradio is an optional extra (``pip install
'estilo[web]'``) imported only inside the functions that build or launch the page, so
``import estilo`` and ``import estilo.web`` never import it.

The page drives the CLI's loop (``Stylizer().job(...).steps()``) and keeps Gradio's own
safety features on (see docs/design: users.md, section 3):

* one job at a time per process (``concurrency_limit=1``), a bounded queue whose position
  Gradio shows, and ``queue(api_open=False)`` so that the REST routes cannot skip it;
* the limits are checked again inside the job (size, iterations, decoded pixels, run time);
  Gradio refuses uploads over the byte limit while they stream (``max_file_size``);
* only the options shown on the page come from the client, each checked against its
  choices; everything else (weights, layers, device) is the server's;
* Stop, closing the tab and the time limit set a flag checked after every step: the CPU or
  GPU is free within one step and the current image is kept;
* Gradio's upload and output cache is swept (``delete_cache``); our PNGs live in a temporary
  folder removed when the job ends.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .config import FIELDS, INITS, ConfigError, StyleConfig, UserError, choices
from .demo import EXAMPLE_NAMES, example_folder
from .devices import resolve_device, tune
from .io.image import ImageError, load_image, to_pil, working_size
from .io.output import save_image
from .options import flag, help_text, value
from .transfer import Job, NonFiniteError, Step, Stylizer

log = logging.getLogger(__name__)

UI_FIELDS = ("size", "strength", "iterations", "pooling", "init", "optimizer",
             "preserve_color", "seed")
"""StyleConfig fields offered on the page, in order (those the config has at the time)."""

LABELS = {"size": "Size (long side, px)", "strength": "Strength",
          "iterations": "Iterations", "pooling": "Pooling", "init": "Start from",
          "optimizer": "Optimiser", "preserve_color": "Preserve colours", "seed": "Seed"}
INFO = {"size": "long side of the result in px (larger is slower)",
        "init": "the image the optimisation starts from",
        "iterations": "more iterations: more style, more time"}
THUMBNAIL = 384  # px, long side of the upload previews
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
    status line and the PNG to download (None: none yet)."""

    image: Image.Image | str | None
    status: str
    download: str | None = None


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
    """The app's state: one :class:`Stylizer` (networks cached), the limits, and a stop flag
    per browser session. Everything here is plain Python, so tests need no server."""

    def __init__(self, defaults: StyleConfig | None = None, limits: Limits | None = None) -> None:
        self.defaults = defaults or StyleConfig()
        self.limits = limits or Limits()
        self.stylizer = Stylizer()
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._examples: Path | None = None

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
        """The tab was closed: stop its run and drop its flag."""
        with self._lock:
            flag = self._flags.pop(session, None)
        if flag is not None:
            flag.set()

    def config(self, values: dict[str, Any]) -> StyleConfig:
        """The server's defaults with the page's options applied, checked against the limits.

        Raises:
            ConfigError: an unknown option, a bad value, or one beyond this server's limits.
        """
        unknown = set(values) - set(ui_fields())
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
        """Decode an upload with the server's pixel limit; return a small preview.

        Raises:
            ImageError: not a usable image (estilo's one-line message).
        """
        path = Path(path)
        try:
            image = load_image(path, max_pixels=self.limits.max_pixels)
            working_size(image.size, None)  # too small for VGG19?
        except ImageError as e:  # name the upload, not the server's temporary path
            message = str(e).replace(repr(str(path)), path.name).replace(str(path), path.name)
            raise ImageError(message) from None
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        return image

    def examples(self) -> tuple[str, str]:
        """Copies of the bundled example photo and painting (package data), in a temporary
        folder that Gradio may serve."""
        if self._examples is None:
            folder = Path(tempfile.mkdtemp(prefix="estilo-examples-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            for name in EXAMPLE_NAMES:
                shutil.copyfile(example_folder() / name, folder / name)
            self._examples = folder
        content, style = (str(self._examples / name) for name in EXAMPLE_NAMES)
        return content, style

    def run(self, content: str | None, style: str | None, values: dict[str, Any],
            stop: threading.Event) -> Generator[Update, None, None]:
        """Check everything, then stylize, yielding previews and finally the PNG.

        Raises:
            ConfigError, ImageError, WeightsError, DeviceError, NonFiniteError: as the CLI.
        """
        if not content or not style:
            raise ImageError("upload a content image and a style image first "
                             "(or press 'Use the example')")
        config = self.config(values)
        for path in (content, style):
            self.check_upload(path)
        job = self.stylizer.job(content, style, config)
        tune(resolve_device(config.device))  # backend speed settings: the app's choice
        yield Update(None, "Starting: loading the network...")
        with tempfile.TemporaryDirectory(prefix="estilo-web-") as folder:
            try:
                yield from self._drive(job, stop, Path(folder))
            finally:
                free_memory()

    def _drive(self, job: Job, stop: threading.Event, folder: Path) -> Iterator[Update]:
        """Iterate the job's steps until done, stopped or out of time; save the PNG."""
        last: Step | None = None
        reason = "done"
        shown = 0.0
        deadline = time.monotonic() + self.limits.time_limit if self.limits.time_limit else None
        steps = job.steps()
        try:
            for last in steps:
                reason = _interrupted(stop, deadline)
                if reason != "done":
                    break
                if time.monotonic() - shown >= self.limits.preview_every:
                    shown = time.monotonic()
                    yield Update(to_pil(job.finish(last.image)), progress_text(last))
        finally:
            steps.close()
        if last is None:
            yield Update(None, "Stopped before the first iteration; nothing to save.")
            return
        path = save_image(job.output(job.finish(last.image)), folder / f"estilo-{time.strftime('%Y%m%d-%H%M%S')}.png",
                          parameters=job.parameters(last, interrupted=reason != "done"))
        yield Update(str(path), final_text(last, reason), str(path))


def _interrupted(stop: threading.Event, deadline: float | None) -> str:
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
            f" · loss {step.loss:.4g}. The PNG below carries every parameter.")


def free_memory() -> None:
    """Release what a finished job held (GPU memory too) so the next job starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- the page (Gradio) --------------------------------------------------------------------------


INTRO = """# estilo: paint a photo in the style of a painting
Upload a photo and a painting (or use the example), press **Stylize** and watch the
picture form. **Stop** keeps the current image. The result is a PNG with every parameter
embedded."""


def build_app(studio: Studio | None = None) -> Any:
    """The Gradio Blocks of the page (not launched, no queue settings yet; see :func:`launch`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    studio = studio or Studio()
    with gr.Blocks(title="estilo", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Row():
                    content, content_view = _upload(gr, "Content: the photo", "content")
                    style, style_view = _upload(gr, "Style: the painting", "style")
                example = gr.Button("Use the example", size="sm", elem_id="example")
                with gr.Group():
                    widgets = _widgets(gr, studio)
                with gr.Row():
                    go = gr.Button("Stylize", variant="primary", elem_id="stylize")
                    halt = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column(scale=1):
                canvas = gr.Image(label="Painting", type="filepath", format="png",
                                  interactive=False, elem_id="canvas", height=480)
                status = gr.Markdown("Waiting for two pictures.", elem_id="status")
                download = gr.File(label="Download PNG (parameters embedded)",
                                   interactive=False, elem_id="download")
        _wire(gr, demo, studio, _Parts(content, style, content_view, style_view, example,
                                       widgets, go, halt, canvas, status, download))
    return demo


def _upload(gr: Any, label: str, key: str) -> tuple[Any, Any]:
    """A file input (estilo decodes it, so its own messages reach the page) and a preview."""
    with gr.Column(min_width=160):
        file = gr.File(label=label, file_count="single", type="filepath", height=90,
                       elem_id=f"{key}-file")
        view = gr.Image(label=f"{key} preview", show_label=False, interactive=False,
                        height=160, elem_id=f"{key}-view", format="jpeg")
    return file, view


def _widgets(gr: Any, studio: Studio) -> list[Any]:
    """The option inputs, two per row."""
    names, widgets = ui_fields(), []
    for start in range(0, len(names), 2):
        with gr.Row():
            widgets += [_widget(gr, name, studio) for name in names[start:start + 2]]
    return widgets


def _widget(gr: Any, name: str, studio: Studio) -> Any:
    """The input for one StyleConfig field: slider, dropdown, checkbox or number."""
    default, limits = getattr(studio.defaults, name), studio.limits
    common = {"label": LABELS.get(name, name.replace("_", " ").capitalize()),
              "info": _info(name), "elem_id": f"opt-{name}", "min_width": 160}
    choices = field_choices(name)
    if name == "size":
        return gr.Slider(32, limits.max_size, value=min(long_side(default), limits.max_size),
                         step=1, **common)
    if name == "iterations":
        return gr.Slider(1, limits.max_iterations, value=min(default, limits.max_iterations),
                         step=1, **common)
    if choices is not None:
        return gr.Dropdown(list(choices), value=default, **common)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, **common)
    return gr.Number(value=default, minimum=0, precision=0 if isinstance(default, int) else None,
                     **common)


def _info(name: str) -> str:
    """The option's help, without its default (the widget shows the value)."""
    return INFO[name] if name in INFO else help_text(name)


@dataclass
class _Parts:
    content: Any
    style: Any
    content_view: Any
    style_view: Any
    example: Any
    widgets: list[Any]
    go: Any
    halt: Any
    canvas: Any
    status: Any
    download: Any


def _wire(gr: Any, demo: Any, studio: Studio, p: _Parts) -> None:
    """Connect the events: checks on upload, Stylize (queued), Stop and tab close (not)."""
    helper = {"queue": False, "api_visibility": "private"}
    result = [p.canvas, p.status, p.download]
    for file, view in ((p.content, p.content_view), (p.style, p.style_view)):
        file.change(_checker(gr, studio), file, [view, *result], concurrency_limit=None,
                    api_visibility="private")
    p.example.click(studio.examples, None, [p.content, p.style], concurrency_limit=None,
                    api_visibility="private")
    p.go.click(_with_request(gr, lambda request: studio.arm(request.session_hash)), None, None,
               **helper).then(
        _stylizer(gr, studio), [p.content, p.style, *p.widgets], result,
        api_name="stylize", concurrency_limit=1, concurrency_id="device", show_progress="minimal")
    p.halt.click(_with_request(gr, lambda request: studio.stop(request.session_hash)), None, None,
                 **helper)
    demo.unload(_with_request(gr, lambda request: studio.forget(request.session_hash)))


def _with_request(gr: Any, fn: Callable[[Any], Any]) -> Callable[..., Any]:
    """Wrap ``fn(request)`` so that Gradio passes the request (it looks at the annotation)."""
    def handler(request: Any) -> None:
        fn(request)

    handler.__annotations__ = {"request": gr.Request, "return": None}
    return handler


class PageError(Exception):
    """A message for the page's status line (estilo's one-line message of a user error)."""


def _user_errors(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; a user error (or running out of GPU memory) becomes a :class:`PageError`."""
    try:
        return fn(*args)
    except (UserError, NonFiniteError) as e:
        raise PageError(str(e)) from None
    except torch.cuda.OutOfMemoryError:
        free_memory()
        raise PageError(GPU_OOM) from None


def error_text(message: str) -> str:
    """The status line for an error (the page shows it instead of the last result)."""
    return f"**Error:** {message}"


def _checker(gr: Any, studio: Studio) -> Callable[[str | None], tuple[Any, ...]]:
    """The upload check: a preview; or, for a bad file, the error in place of the result."""
    def check(path: str | None) -> tuple[Any, ...]:
        if path is None:
            return None, gr.skip(), gr.skip(), gr.skip()
        try:
            return _user_errors(studio.check_upload, path), gr.skip(), gr.skip(), gr.skip()
        except PageError as e:
            return None, None, error_text(str(e)), None

    return check


def _stylizer(gr: Any, studio: Studio) -> Callable[..., Iterator[tuple[Any, Any, Any]]]:
    """The queued handler: a generator of (canvas, status, download) for the page."""
    names = ui_fields()

    def stylize(request: Any, content: str | None, style: str | None,
                *values: Any) -> Iterator[tuple[Any, Any, Any]]:
        stop = studio.flag(request.session_hash)
        if stop.is_set():  # Stop was pressed while this job waited in the queue
            yield gr.skip(), "Stopped before it started.", None
            return
        updates = studio.run(content, style, dict(zip(names, values)), stop)
        try:
            for update in _guarded(updates):
                yield (gr.skip() if update.image is None else update.image, update.status,
                       update.download)
        except PageError as e:  # the message replaces the last result, not next to it
            yield None, error_text(str(e)), None
        finally:
            updates.close()

    stylize.__annotations__ = {"request": gr.Request}
    return stylize


def _guarded(updates: Iterator[Update]) -> Iterator[Update]:
    """The updates; a user error or GPU out-of-memory raises :class:`PageError`."""
    while True:
        update = _user_errors(next, updates, None)
        if update is None:
            return
        yield update


# --- the command --------------------------------------------------------------------------------


def launch(studio: Studio, *, host: str = "127.0.0.1", port: int | None = None,
           share: bool = False, auth: tuple[str, str] | None = None,
           block: bool = True) -> Any:
    """Build the page, set up the queue and the upload limit, and serve it.

    Returns:
        The launched Blocks (with ``block=False``; call ``.close()`` to stop it).
    """
    demo = build_app(studio)
    demo.queue(max_size=studio.limits.queue_size, api_open=False, default_concurrency_limit=1)
    # quiet: Gradio's own lines (a share=True hint among them) are replaced by ours below;
    # no footer links: the REST API is closed (api_open=False), so no "Use via API".
    demo.launch(server_name=host, server_port=port, share=share, auth=auth,
                max_file_size=int(studio.limits.max_upload_mb * 1024 * 1024),
                prevent_thread_lock=True, show_error=False, run_history=False,
                enable_monitoring=False, ssr_mode=False, mcp_server=False,
                footer_links=[], inbrowser=False, quiet=True)
    public = f" and {demo.share_url}" if demo.share_url else ""
    print(f"estilo web: serving on {demo.local_url}{public} (Ctrl-C to stop)", file=sys.stderr,
          flush=True)
    if block:
        demo.block_thread()
    return demo
