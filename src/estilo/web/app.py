"""The page (Gradio): pick or upload paintings, paint where each goes, watch, compare, keep.

Gradio is imported only inside the functions that build or launch the page. The layout, top
to bottom (one column on a phone): the photo; the paintings (bundled ones to click, the
user's uploads, a weight each); the mask painted on the photo; the artistic controls, the
technical ones under "Advanced"; Stylize and Stop; the live preview, then a before/after
slider; this session's history. Each control's help is its option's own help
(:data:`estilo.options.HELP`), in the page's words (photo, painting).

Safety (see docs/design: users.md, section 3): one job at a time (``concurrency_limit=1``)
in a bounded queue, ``queue(api_open=False)``; the photo, paintings and history are kept in
the server's session state, so a client names none of the server's files; every option is
checked again in the job (:class:`~estilo.web.jobs.Studio`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..config import ConfigError, UserError
from ..demo import EXAMPLE_NAMES, example_folder
from ..options import help_text, text
from ..transfer import NonFiniteError
from .history import Entry, History
from .jobs import (
    ADVANCED,
    ARTISTIC,
    GPU_OOM,
    Studio,
    field_choices,
    free_memory,
    limit_malloc_arenas,
    long_side,
    ui_fields,
)
from .painted import BRUSHES, MAX_STYLES, region_mask
from .styles import PAINTINGS, credits

INTRO = """# estilo: paint a photo in the style of a painting
Choose a photo, click one to three paintings (or upload your own), press **Stylize** and
watch the picture form. **Stop** keeps the current image. Every result stays in this
session's history below, as a PNG that carries all its settings."""
MASK_HELP = ("Optional, with two or three paintings: paint on the photo with each painting's "
             "brush colour where it should go. Unpainted parts take the first painting; with "
             "nothing painted, the paintings are blended everywhere by their weights.")
RELOADED = ("Settings loaded: change what you like (paint the mask again if you used one), "
            "then **Stylize**.")
LABELS = {"size": "Size (long side, px)", "strength": "Strength",
          "style_scale": "Stroke size", "preserve_color": "Keep the photo's colours",
          "keep_alpha": "Keep transparency", "iterations": "Iterations", "pooling": "Pooling",
          "init": "Start from", "optimizer": "Optimiser", "style_layers": "Style layers",
          "seed": "Seed"}
COLOUR_WORDS = {"none": "off"}  # preserve_color's choices as the page names them
CSS = """
#canvas img, #compare img { object-fit: contain; width: 100%; height: 100%; }
#styles .caption-label { white-space: normal; font-size: 0.75em; }
"""


def info(name: str) -> str:
    """The help of a control: its option's help without the default, in the page's words
    (the photo and the painting, not the content and the style image)."""
    return (help_text(name).replace("the content's", "the photo's")
            .replace("the content", "the photo").replace("the output", "the result"))


@dataclass
class Slot:
    """The controls of one chosen painting: its row, thumbnail, weight and remove button."""

    row: Any
    thumb: Any
    weight: Any
    remove: Any


@dataclass
class Parts:
    """The page's components that the events connect."""

    photo: Any
    example: Any
    content: Any     # State: the prepared photo's path
    catalogue: Any   # State: [(path, caption)] of the paintings offered
    chosen: Any      # State: the chosen paintings' paths
    styles: Any
    upload: Any
    slots: list[Slot]
    editor: Any
    widgets: list[Any]
    go: Any
    halt: Any
    canvas: Any
    compare: Any
    status: Any
    download: Any
    history: Any     # State: History
    shelf: Any       # the history's gallery
    selected: Any    # State: the index of the history entry shown
    details: Any
    entry_file: Any
    rerun: Any


def build_app(studio: Studio | None = None) -> Any:
    """The Gradio Blocks of the page (not launched, no queue settings yet; see :func:`launch`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    studio = studio or Studio()
    bundled = bundled_styles(studio)
    with gr.Blocks(title="estilo", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                with gr.Row(equal_height=True):
                    photo = gr.File(label="Your photo", file_count="single", type="filepath",
                                    height=130, elem_id="photo-file", min_width=200, scale=3)
                    example = gr.Button("Use the example", size="sm", elem_id="example",
                                        min_width=100, scale=1)
                styles = gr.Gallery(value=bundled, label="Paintings: click to choose (up to "
                                    f"{MAX_STYLES})", columns=3, height=210,
                                    allow_preview=False, object_fit="cover", elem_id="styles",
                                    buttons=[])
                gr.Markdown(f"<small>Bundled: {credits()}</small>", elem_id="credits")
                upload = gr.UploadButton("Upload your own painting", file_types=["image"],
                                         size="sm", elem_id="upload-style")
                slots = [_slot(gr, i) for i in range(MAX_STYLES)]
                editor = gr.ImageEditor(
                    label="Where each painting goes (paint on the photo)", type="pil",
                    sources=(), transforms=(), layers=False, format="png", height=360,
                    brush=gr.Brush(colors=[c for _, c in BRUSHES], color_mode="fixed"),
                    elem_id="mask")
                gr.Markdown(f"<small>{MASK_HELP}</small>")
                widgets = {name: _widget(gr, name, studio) for name in _shown(ARTISTIC)}
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    widgets |= {name: _widget(gr, name, studio) for name in _shown(ADVANCED)}
                with gr.Row():
                    go = gr.Button("Stylize", variant="primary", elem_id="stylize")
                    halt = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column(scale=6, min_width=320):
                canvas = gr.Image(label="Painting", type="filepath", format="png",
                                  interactive=False, elem_id="canvas", height=520,
                                  buttons=["fullscreen"])
                compare = gr.ImageSlider(label="Before / after (drag)", type="filepath",
                                         interactive=False, visible=False, elem_id="compare",
                                         max_height=520, buttons=["fullscreen"])
                status = gr.Markdown("Waiting for a photo and a painting.", elem_id="status")
                download = gr.File(label="Download PNG (parameters embedded)",
                                   interactive=False, elem_id="download")
                shelf = gr.Gallery(label="This session (click one: its settings, PNG, re-run)",
                                   columns=6, height=150, fit_columns=False,
                                   allow_preview=False, object_fit="cover", elem_id="history",
                                   buttons=[])
                details = gr.Markdown("", elem_id="entry-details")
                entry_file = gr.File(label="This result's PNG", interactive=False,
                                     visible=False, elem_id="entry-download")
                rerun = gr.Button("Re-run with changes: load these settings", visible=False,
                                  size="sm", elem_id="rerun")
        parts = Parts(photo, example, gr.State(None), gr.State(bundled), gr.State([]), styles,
                      upload, slots, editor, [widgets[n] for n in ui_fields()], go, halt,
                      canvas, compare, status, download, gr.State(History()), shelf,
                      gr.State(None), details, entry_file, rerun)
        _wire(gr, demo, studio, parts)
    return demo


def bundled_styles(studio: Studio) -> list[tuple[str, str]]:
    """(path, caption) of the bundled paintings, copied where Gradio may serve them."""
    folder = studio.root / "bundled"
    folder.mkdir(exist_ok=True)
    out = []
    for painting in PAINTINGS:
        target = folder / painting.file
        if not target.exists():
            shutil.copyfile(painting.path, target)
        out.append((str(target), f"{painting.title} ({painting.year})"))
    return out


def _shown(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if n in ui_fields())


def _slot(gr: Any, index: int) -> Slot:
    name, _ = BRUSHES[index]
    with gr.Row(visible=False, equal_height=True, elem_id=f"slot-{index}") as row:
        thumb = gr.Image(show_label=False, interactive=False, height=72, min_width=72, scale=1,
                         buttons=[], container=False, elem_id=f"slot-{index}-thumb")
        weight = gr.Slider(0, 10, value=5, step=0.5, label=f"Weight ({name} brush)", scale=4,
                           info="this painting's share of the blend (or of its region)",
                           elem_id=f"weight-{index}")
        remove = gr.Button("Remove", size="sm", scale=1, min_width=60,
                           elem_id=f"remove-{index}")
    return Slot(row, thumb, weight, remove)


def _widget(gr: Any, name: str, studio: Studio) -> Any:
    """The input for one StyleConfig field: slider, dropdown, checkbox, number or text."""
    default, limits = getattr(studio.defaults, name), studio.limits
    common = {"label": LABELS.get(name, name.replace("_", " ").capitalize()),
              "info": info(name), "elem_id": f"opt-{name}", "min_width": 160}
    choices = field_choices(name)
    if name == "size":
        return gr.Slider(32, limits.max_size, value=min(long_side(default), limits.max_size),
                         step=1, **common)
    if name == "iterations":
        return gr.Slider(1, limits.max_iterations, value=min(default, limits.max_iterations),
                         step=1, **common)
    if name == "strength":
        return gr.Slider(0, 5, value=default, step=0.01, **common)
    if name == "style_scale":
        return gr.Slider(0.25, 4, value=default, step=0.05, **common)
    if choices is not None:
        return gr.Dropdown([(COLOUR_WORDS.get(c, c), c) for c in choices], value=default,
                           **common)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, **common)
    if name == "style_layers":
        return gr.Textbox(value=text(name, default), **common)
    return gr.Number(value=default, minimum=0, precision=0 if isinstance(default, int) else None,
                     **common)


# --- events ---------------------------------------------------------------------------------


def _wire(gr: Any, demo: Any, studio: Studio, p: Parts) -> None:
    """Connect the events: uploads and choices (not queued), Stylize (queued), Stop, history."""
    quick = {"queue": False, "api_visibility": "private"}
    free = {"concurrency_limit": None, "api_visibility": "private"}
    slots = [c for s in p.slots for c in (s.row, s.thumb, s.weight)]
    photo_out = [p.content, p.editor, p.canvas, p.compare, p.status, p.download]
    p.photo.change(_photo(gr, studio), p.photo, photo_out, **free)
    p.example.click(_example(gr, studio), p.catalogue, [*photo_out, p.chosen, *slots], **free)
    p.styles.select(_toggle(gr), [p.catalogue, p.chosen], [p.chosen, *slots], **quick)
    p.upload.upload(_add_painting(gr, studio), [p.upload, p.catalogue, p.chosen],
                    [p.catalogue, p.styles, p.chosen, *slots, p.status], **free)
    for index, slot in enumerate(p.slots):
        slot.remove.click(_remover(gr, index), [p.chosen, p.catalogue], [p.chosen, *slots],
                          **quick)
    p.go.click(_with_request(gr, lambda request: studio.arm(request.session_hash)), None, None,
               **quick).then(
        _stylizer(gr, studio), [p.content, p.chosen, p.editor, *[s.weight for s in p.slots],
                                p.history, *p.widgets],
        [p.canvas, p.compare, p.status, p.download, p.shelf, p.history],
        api_name="stylize", concurrency_limit=1, concurrency_id="device", show_progress="minimal")
    p.halt.click(_with_request(gr, lambda request: studio.stop(request.session_hash)), None, None,
                 **quick)
    p.shelf.select(_show_entry(gr), p.history,
                   [p.selected, p.canvas, p.compare, p.details, p.entry_file, p.rerun], **quick)
    p.rerun.click(_rerun(gr), [p.history, p.selected, p.catalogue],
                  [p.content, p.editor, p.chosen, *slots, *p.widgets, p.status], **quick)
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


def _editor_value(path: str | None) -> dict[str, Any] | None:
    return None if path is None else {"background": path, "layers": [], "composite": path}


def _photo(gr: Any, studio: Studio) -> Callable[..., tuple[Any, ...]]:
    """The photo's upload: checked, made upright and small enough, shown in the mask editor;
    a bad file's message replaces the result."""
    def photo(request: Any, path: str | None) -> tuple[Any, ...]:
        if path is None:
            return (gr.skip(),) * 6
        try:
            prepared = _user_errors(studio.prepare, path, request.session_hash)
        except PageError as e:
            return (None, None, None, gr.update(visible=False), error_text(str(e)), None)
        return (prepared, _editor_value(prepared), gr.skip(), gr.skip(),
                "Photo ready: choose one to three paintings, then **Stylize**.", gr.skip())

    photo.__annotations__ = {"request": gr.Request}
    return photo


def _example(gr: Any, studio: Studio) -> Callable[..., tuple[Any, ...]]:
    """The bundled photo with the first bundled painting."""
    def example(request: Any, catalogue: list[tuple[str, str]]) -> tuple[Any, ...]:
        content = studio.prepare(example_folder() / EXAMPLE_NAMES[0], request.session_hash)
        chosen = [catalogue[0][0]]
        return (content, _editor_value(content), gr.skip(), gr.skip(),
                "Example ready: press **Stylize**.", gr.skip(), chosen,
                *_slots(gr, chosen, catalogue))

    example.__annotations__ = {"request": gr.Request}
    return example


def _slots(gr: Any, chosen: list[str], catalogue: list[tuple[str, str]],
           weights: tuple[float, ...] | None = None) -> list[Any]:
    """Updates of every slot's row, thumbnail and weight for the chosen paintings."""
    captions = dict(catalogue)
    out: list[Any] = []
    for index in range(MAX_STYLES):
        if index >= len(chosen):
            out += [gr.update(visible=False), None, gr.skip()]
            continue
        title = captions.get(chosen[index], Path(chosen[index]).name)
        out += [gr.update(visible=True), chosen[index],
                gr.update(label=f"{title}: weight ({BRUSHES[index][0]} brush)",
                          value=5 if weights is None else weights[index])]
    return out


def _toggle(gr: Any) -> Callable[..., tuple[Any, ...]]:
    """A click on a painting: choose it, or un-choose it if it was chosen."""
    def toggle(catalogue: list[tuple[str, str]], chosen: list[str],
               event: Any) -> tuple[Any, ...]:
        if not isinstance(event.index, int) or not 0 <= event.index < len(catalogue):
            return (gr.skip(),) * (1 + 3 * MAX_STYLES)
        path = catalogue[event.index][0]
        if path in chosen:
            chosen = [c for c in chosen if c != path]
        elif len(chosen) >= MAX_STYLES:
            gr.Info(f"At most {MAX_STYLES} paintings: remove one first.")
            return (gr.skip(),) * (1 + 3 * MAX_STYLES)
        else:
            chosen = [*chosen, path]
        return (chosen, *_slots(gr, chosen, catalogue))

    toggle.__annotations__ = {"event": gr.SelectData}
    return toggle


def _add_painting(gr: Any, studio: Studio) -> Callable[..., tuple[Any, ...]]:
    """An uploaded painting joins the gallery and the chosen ones (if there is room)."""
    def add(request: Any, path: str | None, catalogue: list[tuple[str, str]],
            chosen: list[str]) -> tuple[Any, ...]:
        if path is None:
            return (gr.skip(),) * (4 + 3 * MAX_STYLES)
        try:
            prepared = _user_errors(lambda: studio.prepare(path, request.session_hash, style=True))
        except PageError as e:
            return (*(gr.skip(),) * (3 + 3 * MAX_STYLES), error_text(str(e)))
        catalogue = [*catalogue, (prepared, f"{Path(path).stem} (yours)")]
        if len(chosen) < MAX_STYLES:
            chosen = [*chosen, prepared]
        return (catalogue, catalogue, chosen, *_slots(gr, chosen, catalogue),
                f"Added your painting {Path(path).name}.")

    add.__annotations__ = {"request": gr.Request}
    return add


def _remover(gr: Any, index: int) -> Callable[..., tuple[Any, ...]]:
    def remove(chosen: list[str], catalogue: list[tuple[str, str]]) -> tuple[Any, ...]:
        chosen = [c for i, c in enumerate(chosen) if i != index]
        return (chosen, *_slots(gr, chosen, catalogue))

    return remove


def _stylizer(gr: Any, studio: Studio) -> Callable[..., Iterator[tuple[Any, ...]]]:
    """The queued handler: a generator of (canvas, compare, status, download, history gallery,
    history) for the page."""
    names = ui_fields()

    def stylize(request: Any, content: str | None, chosen: list[str] | None,
                painted: dict[str, Any] | None, *rest: Any) -> Iterator[tuple[Any, ...]]:
        weights = tuple(float(w) for w in rest[:MAX_STYLES])
        history: History = rest[MAX_STYLES] if len(rest) > MAX_STYLES else History()
        values = dict(zip(names, rest[MAX_STYLES + 1:]))
        skip = gr.skip()
        stop = studio.flag(request.session_hash)
        if stop.is_set():  # Stop was pressed while this job waited in the queue
            yield skip, skip, "Stopped before it started.", skip, skip, skip
            return
        styles = list(chosen or [])
        used = weights[:len(styles)]
        if len(styles) > 1:
            values["style_blend"] = used
        try:
            mask = _user_errors(_mask, studio, content, painted, len(styles))
            updates = studio.run(content, styles, values, stop, session=request.session_hash,
                                 mask=mask)
            first = True
            for update in _guarded(updates):
                if update.download is None:
                    image = skip if update.image is None else gr.update(value=update.image,
                                                                        visible=True)
                    # the first update hides the last run's slider and download
                    yield (image, gr.update(visible=False) if first else skip, update.status,
                           None if first else skip, skip, skip)
                    first = False
                    continue
                entry = Entry(update.download, str(update.before), str(content), tuple(styles),
                              used, {n: v for n, v in values.items() if n != "style_blend"},
                              update.status)
                for gone in history.add(entry):
                    studio.discard(gone.png)
                yield (gr.update(visible=False),
                       gr.update(value=(update.before, update.download), visible=True),
                       update.status, update.download, history.gallery(), history)
        except PageError as e:  # the message replaces the last result, not next to it
            yield (gr.update(value=None, visible=True), gr.update(visible=False),
                   error_text(str(e)), None, skip, skip)

    stylize.__annotations__ = {"request": gr.Request}
    return stylize


def _mask(studio: Studio, content: str | None, painted: dict[str, Any] | None,
          count: int) -> Image.Image | None:
    """The painted regions as the mask the job takes (None: nothing painted)."""
    layers = [layer for layer in (painted or {}).get("layers") or [] if layer is not None]
    if not content or not layers or count < 2:
        return None
    if any(layer.width * layer.height > studio.limits.max_pixels for layer in layers):
        raise ConfigError("the painted mask is larger than this server accepts")
    with Image.open(content) as photo:
        size = photo.size
    return region_mask(layers, count, size)


def _guarded(updates: Iterator[Any]) -> Iterator[Any]:
    """The updates; a user error or GPU out-of-memory raises :class:`PageError`."""
    try:
        while True:
            update = _user_errors(next, updates, None)
            if update is None:
                return
            yield update
    finally:
        updates.close()  # type: ignore[attr-defined]


def _show_entry(gr: Any) -> Callable[..., tuple[Any, ...]]:
    """A click on a history thumbnail: its before/after, options, PNG and re-run button."""
    def show(history: History, event: Any) -> tuple[Any, ...]:
        entry = history.get(event.index if isinstance(event.index, int) else None)
        if entry is None:
            return (gr.skip(),) * 6
        return (event.index, gr.update(visible=False),
                gr.update(value=(entry.before, entry.png), visible=True), entry.describe(),
                gr.update(value=entry.png, visible=True), gr.update(visible=True))

    show.__annotations__ = {"event": gr.SelectData}
    return show


def _rerun(gr: Any) -> Callable[..., tuple[Any, ...]]:
    """Load a history entry's photo, paintings, weights and options back into the controls."""
    names = ui_fields()

    def rerun(history: History, index: int | None,
              catalogue: list[tuple[str, str]]) -> tuple[Any, ...]:
        entry = history.get(index)
        if entry is None:
            return (gr.skip(),) * (3 + 3 * MAX_STYLES + len(names) + 1)
        chosen = list(entry.styles)
        weights = entry.weights + (5.0,) * (MAX_STYLES - len(entry.weights))
        values = [entry.values.get(n, gr.skip()) for n in names]
        return (entry.content, _editor_value(entry.content), chosen,
                *_slots(gr, chosen, catalogue, weights), *values, RELOADED)

    return rerun


# --- the command --------------------------------------------------------------------------------


def launch(studio: Studio, *, host: str = "127.0.0.1", port: int | None = None,
           share: bool = False, auth: tuple[str, str] | None = None,
           block: bool = True) -> Any:
    """Build the page, set up the queue and the upload limit, and serve it.

    Returns:
        The launched Blocks (with ``block=False``; call ``.close()`` to stop it).
    """
    limit_malloc_arenas()  # memory levels off over many jobs (benchmarks/web_soak.py)
    demo = build_app(studio)
    demo.queue(max_size=studio.limits.queue_size, api_open=False, default_concurrency_limit=1)
    # quiet: Gradio's own lines (a share=True hint among them) are replaced by ours below;
    # no footer links: the REST API is closed (api_open=False), so no "Use via API".
    demo.launch(server_name=host, server_port=port, share=share, auth=auth,
                max_file_size=int(studio.limits.max_upload_mb * 1024 * 1024),
                prevent_thread_lock=True, show_error=False, run_history=False,
                enable_monitoring=False, ssr_mode=False, mcp_server=False,
                footer_links=[], inbrowser=False, quiet=True, css=CSS)
    public = f" and {demo.share_url}" if demo.share_url else ""
    print(f"estilo web: serving on {demo.local_url}{public} (Ctrl-C to stop)", file=sys.stderr,
          flush=True)
    if block:
        demo.block_thread()
    return demo
