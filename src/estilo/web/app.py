"""The page (Gradio): pick or upload paintings, paint where each goes, watch, compare, keep,
and go further.

Gradio is imported only inside the functions that build or launch the page. The layout: a
column of controls (the photo; the paintings, bundled ones to click and the user's uploads,
a weight each; the mask painter; the artistic controls, the technical ones under
"Advanced") beside the result's column (Stylize and Stop above the live preview, then a
before/after slider, the PNG, and Continue, Enlarge and "Copy as command"), which stays in
view while the controls scroll on a desktop; the session's history below both. On a phone
the columns stack and Stylize scrolls the page to the preview. Each control's help is in
the page's words (:mod:`estilo.web.words`).

Safety (see docs/design: users.md, section 3): one job at a time (``concurrency_limit=1``)
in a bounded queue, ``queue(api_open=False)``; the photo, paintings and history are kept in
the server's session state, so a client names none of the server's files; every option is
checked again in the job (:class:`~estilo.web.jobs.Studio`). The server removes its folder
on SIGTERM, Ctrl-C and exit (:func:`launch`).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..config import ConfigError, UserError, parse_memory
from ..demo import EXAMPLE_NAMES, example_folder
from ..io.inputs import check_mask
from ..options import layer_list
from ..transfer import NonFiniteError
from . import painter
from .command import commands
from .history import Entry, History
from .jobs import (
    ADVANCED,
    ARTISTIC,
    GPU_OOM,
    Studio,
    Update,
    enlarged,
    field_choices,
    free_memory,
    limit_malloc_arenas,
    long_side,
    ui_fields,
)
from .painted import BRUSHES, MAX_STYLES, PainterValue, layer, painter_value, region_mask
from .styles import PAINTINGS, credits
from .words import choice, info, label, message

INTRO = """# estilo: paint a photo in the style of a painting
Choose a photo and one to three paintings, press **Stylize** and watch the picture form;
then continue it, enlarge it, or copy the command that takes it to print size."""
MASK_HELP = ("With two or three paintings: paint with each painting's colour where it "
             "should go (Fill paints a whole area), or upload a mask. Unpainted parts take "
             "the first painting; with nothing painted, the paintings are blended everywhere "
             "by their weights.")
FURTHER_HELP = ("**Continue**: the Iterations (under Advanced) again, from this picture. "
                "**Enlarge**: twice its size, up to {} px here. **Copy as command**: the "
                "estilo commands that make it again, and at print size on your own machine.")
RELOADED = "Settings loaded, the mask too: change what you like, then **Stylize**."
WEIGHT = 5.0  # a new painting's weight slider (equal weights: the library's default blend)
PRINT_SIZE = 4096  # the long side "Copy as command" proposes for a print (px)
PRINT_MEMORY = "8GB"  # and the memory of the machine it proposes to run on
CSS = """
.gradio-container { overflow: clip !important; }
@media (min-width: 1000px) {
  #result { position: sticky; top: 8px; align-self: flex-start; }
}
#canvas img, #compare img { object-fit: contain; width: 100%; height: 100%; }
#styles .caption-label, #history .caption-label { white-space: normal; font-size: 0.75em; }
#styles .fixed-height { min-height: 0; max-height: none; }
#styles .grid-wrap { overflow-y: visible; }
#styles .thumbnail-item.selected { --ring-color: transparent; box-shadow: none; }
"""
SCROLL_TO_RESULT = """() => {
  const result = document.querySelector('#result');
  if (!result) return;
  const top = result.getBoundingClientRect().top;
  if (top < 0 || top > 0.25 * window.innerHeight) window.scrollTo({top: window.scrollY + top - 8});
}"""
COPY_TO_CLIPBOARD = """(text) => {
  if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
}"""


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
    painter: Any
    mask_upload: Any
    widgets: list[Any]
    go: Any
    halt: Any
    canvas: Any
    compare: Any
    status: Any
    download: Any
    further: Any     # the row of Continue, Enlarge, Copy as command
    more: Any
    enlarge: Any
    copy: Any
    print_size: Any
    memory: Any
    command: Any
    files: Any
    history: Any     # State: History
    shelf: Any       # the history's gallery
    selected: Any    # State: the index of the history entry shown
    details: Any
    rerun: Any

    @property
    def weights(self) -> list[Any]:
        return [slot.weight for slot in self.slots]

    @property
    def slot_parts(self) -> list[Any]:
        return [c for s in self.slots for c in (s.row, s.thumb, s.weight)]

    @property
    def results(self) -> list[Any]:
        """What a run updates."""
        return [self.canvas, self.compare, self.status, self.download, self.shelf,
                self.history, self.selected, self.details, self.rerun, self.further,
                self.command, self.files]


def build_app(studio: Studio | None = None) -> Any:
    """The Gradio Blocks of the page (not launched, no queue settings yet; see :func:`launch`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    studio = studio or Studio()
    bundled = bundled_styles(studio)
    with gr.Blocks(title="estilo", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320, elem_id="controls"):
                with gr.Row(equal_height=True):
                    photo = gr.File(label="Your photo", file_count="single", type="filepath",
                                    height=110, elem_id="photo-file", min_width=200, scale=3)
                    example = gr.Button("Use the example", size="sm", elem_id="example",
                                        min_width=100, scale=1)
                styles = gr.Gallery(value=gallery(bundled, []), label="Paintings: click to "
                                    f"choose (up to {MAX_STYLES}), again to remove", columns=3,
                                    height="auto", allow_preview=False, object_fit="cover",
                                    elem_id="styles", buttons=[])
                gr.Markdown(f"<small>Bundled: {credits()}</small>", elem_id="credits")
                upload = gr.UploadButton("Upload your own painting", file_types=["image"],
                                         size="sm", elem_id="upload-style")
                slots = [_slot(gr, i) for i in range(MAX_STYLES)]
                mask_painter = painter.build(gr)
                mask_upload = gr.UploadButton("Upload a mask (one flat colour per painting, "
                                              "dark to light)", file_types=["image"],
                                              size="sm", elem_id="upload-mask")
                gr.Markdown(f"<small>{MASK_HELP}</small>")
                widgets = {name: _widget(gr, name, studio) for name in _shown(ARTISTIC)}
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    widgets |= {name: _widget(gr, name, studio) for name in _shown(ADVANCED)}
            with gr.Column(scale=6, min_width=320, elem_id="result"):
                with gr.Row():
                    go = gr.Button("Stylize", variant="primary", elem_id="stylize",
                                   min_width=100)
                    halt = gr.Button("Stop", variant="stop", elem_id="stop", min_width=100)
                status = gr.Markdown("Waiting for a photo and a painting.", elem_id="status")
                canvas = gr.Image(label="Painting", type="filepath", format="png",
                                  interactive=False, elem_id="canvas", height="min(54vh, 520px)",
                                  buttons=["fullscreen"])
                compare = gr.ImageSlider(label="Before / after (drag)", type="filepath",
                                         interactive=False, visible=False, elem_id="compare",
                                         max_height=520, buttons=["fullscreen"])
                with gr.Column(visible=False, elem_id="further") as further:
                    with gr.Row():
                        more = gr.Button("Continue", size="sm", elem_id="continue",
                                         min_width=90)
                        enlarge = gr.Button("Enlarge", size="sm", elem_id="enlarge",
                                            min_width=90)
                        copy = gr.Button("Copy as command", size="sm", elem_id="copy",
                                         min_width=90)
                    gr.Markdown(f"<small>{FURTHER_HELP.format(studio.limits.max_size)}</small>")
                    with gr.Row():
                        print_size = gr.Number(PRINT_SIZE, label="Print size (long side, px)",
                                               precision=0, minimum=64, elem_id="print-size",
                                               min_width=120)
                        memory = gr.Textbox(PRINT_MEMORY, label="Memory of the machine "
                                            "that will run it", elem_id="print-memory",
                                            min_width=120)
                command = gr.Code(label="Commands (copied to the clipboard): download the files "
                                  "below into one folder, then run them there", language="shell",
                                  visible=False, elem_id="command", interactive=False,
                                  wrap_lines=True)
                files = gr.File(label="The files they need: download them into one folder",
                                file_count="multiple", interactive=False, visible=False,
                                elem_id="command-files")
                download = gr.File(label="Download PNG (every parameter embedded)",
                                   interactive=False, elem_id="download", visible=False)
        with gr.Column(elem_id="session"):
            shelf = gr.Gallery(label="This session (click one: its settings, PNG, re-run)",
                               columns=8, height=170, fit_columns=False, allow_preview=False,
                               object_fit="cover", elem_id="history", buttons=[])
            details = gr.Markdown("", elem_id="entry-details")
            rerun = gr.Button("Re-run with changes: load these settings", visible=False,
                              size="sm", elem_id="rerun")
        parts = Parts(photo, example, gr.State(None), gr.State(bundled), gr.State([]), styles,
                      upload, slots, mask_painter, mask_upload,
                      [widgets[n] for n in ui_fields()], go, halt, canvas, compare, status,
                      download, further, more, enlarge, copy, print_size, memory, command,
                      files, gr.State(History()), shelf, gr.State(None), details, rerun)
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


def gallery(catalogue: list[tuple[str, str]], chosen: list[str]) -> list[tuple[str, str]]:
    """The paintings offered, the chosen ones marked with their number and brush:
    ``✔ 1 red · The Starry Night (1889)``."""
    marks = {path: f"✔ {i + 1} {BRUSHES[i][0]} · " for i, path in enumerate(chosen)}
    return [(path, marks.get(path, "") + caption) for path, caption in catalogue]


def _shown(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if n in ui_fields())


def _slot(gr: Any, index: int) -> Slot:
    name, _ = BRUSHES[index]
    with gr.Row(visible=False, equal_height=True, elem_id=f"slot-{index}") as row:
        thumb = gr.Image(show_label=False, interactive=False, height=72, min_width=72, scale=1,
                         buttons=[], container=False, elem_id=f"slot-{index}-thumb")
        weight = gr.Slider(0, 10, value=WEIGHT, step=0.5, label=f"Weight ({name} brush)",
                           scale=4, info="this painting's share of the blend (or of its "
                           "region)", elem_id=f"weight-{index}")
        remove = gr.Button("Remove", size="sm", scale=1, min_width=60,
                           elem_id=f"remove-{index}")
    return Slot(row, thumb, weight, remove)


def _widget(gr: Any, name: str, studio: Studio) -> Any:
    """The input for one StyleConfig field, at the server's default (the library's unless
    ``estilo web`` was given options): slider, dropdown, checkbox, number or text."""
    default, limits = getattr(studio.defaults, name), studio.limits
    common = {"label": label(name), "info": info(name), "elem_id": f"opt-{name}",
              "min_width": 160}
    choices = field_choices(name)
    if name == "size":
        return gr.Slider(32, limits.max_size, value=min(long_side(default), limits.max_size),
                         step=1, **common)
    if name == "iterations":
        return gr.Slider(1, limits.max_iterations, value=min(default, limits.max_iterations),
                         step=1, **common)
    if name == "strength":
        return gr.Slider(0, max(5, default), value=default, step=0.01, **common)
    if name == "style_scale":
        return gr.Slider(min(0.25, default), max(4, default), value=default, step=0.05,
                         **common)
    if choices is not None:
        return gr.Dropdown([(choice(name, c), c) for c in choices], value=default, **common)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, **common)
    if name == "style_layers":
        return gr.Textbox(value=layer_list(default, studio.defaults.style_layer_weights),
                          **common)
    return gr.Number(value=default, minimum=0, precision=0 if isinstance(default, int) else None,
                     **common)


# --- events ---------------------------------------------------------------------------------


def _wire(gr: Any, demo: Any, studio: Studio, p: Parts) -> None:
    """Connect the events: uploads and choices (not queued), runs (queued), Stop, history."""
    quick = {"queue": False, "api_visibility": "private"}
    free = {"concurrency_limit": None, "api_visibility": "private"}
    queued = {"concurrency_limit": 1, "concurrency_id": "device", "show_progress": "minimal"}
    painting = [p.chosen, *p.slot_parts, p.styles]
    photo_out = [p.content, p.painter, p.photo, p.canvas, p.compare, p.status, p.download,
                 p.further]
    p.photo.change(_photo(gr, studio, p), p.photo, photo_out, **free)
    p.example.click(_example(gr, studio, p), p.catalogue, [*photo_out, *painting], **free)
    p.styles.select(_toggle(gr, p), [p.catalogue, p.chosen, *p.weights], painting, **quick)
    p.upload.upload(_add_painting(gr, studio, p), [p.upload, p.catalogue, p.chosen, *p.weights],
                    [p.catalogue, *painting, p.status], **free)
    for index, slot in enumerate(p.slots):
        slot.remove.click(_remover(gr, p, index), [p.chosen, p.catalogue, *p.weights], painting,
                          **quick)
    p.mask_upload.upload(_mask_upload(gr, studio, p), [p.mask_upload, p.content, p.chosen],
                         [p.painter, p.status], **free)
    arm = _with_request(gr, lambda request: studio.arm(request.session_hash))
    p.go.click(arm, None, None, js=SCROLL_TO_RESULT, **quick).then(
        _stylizer(gr, studio, p), [p.content, p.chosen, p.painter, *p.weights, p.history,
                                   *p.widgets],
        p.results, api_name="stylize", **queued)
    iterations = p.widgets[ui_fields().index("iterations")]
    for button, grow in ((p.more, False), (p.enlarge, True)):
        button.click(arm, None, None, js=SCROLL_TO_RESULT, **quick).then(
            _further(gr, studio, p, enlarge=grow), [p.history, p.selected, iterations],
            p.results, api_visibility="private", **queued)
    p.copy.click(_copy(gr, p), [p.history, p.selected, p.print_size, p.memory],
                 [p.command, p.files, p.status], **quick).then(
        None, p.command, None, js=COPY_TO_CLIPBOARD, **quick)
    p.halt.click(_with_request(gr, lambda request: studio.stop(request.session_hash)), None, None,
                 **quick)
    p.shelf.select(_show_entry(gr, p), p.history,
                   [p.selected, p.canvas, p.compare, p.details, p.download, p.rerun, p.further,
                    p.command, p.files], **quick)
    p.rerun.click(_rerun(gr, p), [p.history, p.selected, p.catalogue],
                  [p.content, p.painter, *painting, *p.widgets, p.status], **free)
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
    """Call ``fn``; a user error (or running out of GPU memory) becomes a :class:`PageError`
    in the page's words."""
    try:
        return fn(*args)
    except (UserError, NonFiniteError) as e:
        raise PageError(message(str(e), ui_fields())) from None
    except torch.cuda.OutOfMemoryError:
        free_memory()
        raise PageError(GPU_OOM) from None


def error_text(text: str) -> str:
    """The status line for an error (the page shows it instead of the last result)."""
    return f"**Error:** {text}"


def _photo(gr: Any, studio: Studio, p: Parts) -> Callable[..., dict[Any, Any]]:
    """The photo's upload: checked, made upright and small enough, shown in the painter; a
    bad file's message replaces the result, and the file leaves the photo box."""
    def photo(request: Any, path: str | None) -> dict[Any, Any]:
        if path is None:
            return {p.status: gr.skip()}
        try:
            prepared = _user_errors(studio.prepare, path, request.session_hash)
        except PageError as e:
            return {p.content: None, p.painter: None, p.photo: None, p.canvas: None,
                    p.compare: gr.update(visible=False), p.status: error_text(str(e)),
                    p.download: gr.update(value=None, visible=False),
                    p.further: gr.update(visible=False)}
        return {p.content: prepared, p.painter: painter_value(prepared),
                p.status: "Photo ready: choose one to three paintings, then **Stylize**."}

    photo.__annotations__ = {"request": gr.Request}
    return photo


def _example(gr: Any, studio: Studio, p: Parts) -> Callable[..., dict[Any, Any]]:
    """The bundled photo with the first bundled painting."""
    def example(request: Any, catalogue: list[tuple[str, str]]) -> dict[Any, Any]:
        content = studio.prepare(example_folder() / EXAMPLE_NAMES[0], request.session_hash)
        chosen = [catalogue[0][0]]
        return {p.content: content, p.painter: painter_value(content), p.photo: None,
                p.status: "Example ready: press **Stylize**.",
                **_paintings(gr, p, chosen, catalogue, {})}

    example.__annotations__ = {"request": gr.Request}
    return example


def _weights(chosen: list[str], weights: tuple[float, ...]) -> dict[str, float]:
    """Each chosen painting's weight, as its slider says."""
    return {path: float(w) for path, w in zip(chosen, weights)}


def _paintings(gr: Any, p: Parts, chosen: list[str], catalogue: list[tuple[str, str]],
               weights: dict[str, float]) -> dict[Any, Any]:
    """The chosen paintings: their slots (each painting keeps its weight; a new one gets
    :data:`WEIGHT`) and their marks in the gallery."""
    captions = dict(catalogue)
    out: dict[Any, Any] = {p.chosen: chosen,
                           p.styles: gr.update(value=gallery(catalogue, chosen),
                                               selected_index=None)}
    for index, slot in enumerate(p.slots):
        if index >= len(chosen):
            out |= {slot.row: gr.update(visible=False), slot.thumb: None}
            continue
        path = chosen[index]
        title = captions.get(path, Path(path).name)
        out |= {slot.row: gr.update(visible=True), slot.thumb: path,
                slot.weight: gr.update(label=f"{title}: weight ({BRUSHES[index][0]} brush)",
                                       value=weights.get(path, WEIGHT))}
    return out


def _toggle(gr: Any, p: Parts) -> Callable[..., dict[Any, Any]]:
    """A click on a painting: choose it, or un-choose it if it was chosen."""
    def toggle(event: Any, catalogue: list[tuple[str, str]], chosen: list[str],
               *weights: float) -> dict[Any, Any]:
        if not isinstance(event.index, int) or not 0 <= event.index < len(catalogue):
            return {p.chosen: gr.skip()}
        kept = _weights(chosen, weights)
        path = catalogue[event.index][0]
        if path in chosen:
            chosen = [c for c in chosen if c != path]
        elif len(chosen) >= MAX_STYLES:
            gr.Info(f"At most {MAX_STYLES} paintings: remove one first.")
            return {p.styles: gr.update(value=gallery(catalogue, chosen), selected_index=None)}
        else:
            chosen = [*chosen, path]
        return _paintings(gr, p, chosen, catalogue, kept)

    toggle.__annotations__ = {"event": gr.SelectData}
    return toggle


def _add_painting(gr: Any, studio: Studio, p: Parts) -> Callable[..., dict[Any, Any]]:
    """An uploaded painting joins the gallery and the chosen ones (if there is room)."""
    def add(request: Any, path: str | None, catalogue: list[tuple[str, str]],
            chosen: list[str], *weights: float) -> dict[Any, Any]:
        if path is None:
            return {p.status: gr.skip()}
        try:
            prepared = _user_errors(lambda: studio.prepare(path, request.session_hash, style=True))
        except PageError as e:
            return {p.status: error_text(str(e))}
        kept = _weights(chosen, weights)
        catalogue = [*catalogue, (prepared, f"{Path(path).stem} (yours)")]
        if len(chosen) < MAX_STYLES:
            chosen = [*chosen, prepared]
        return {p.catalogue: catalogue, **_paintings(gr, p, chosen, catalogue, kept),
                p.status: f"Added your painting {Path(path).name}."}

    add.__annotations__ = {"request": gr.Request}
    return add


def _remover(gr: Any, p: Parts, index: int) -> Callable[..., dict[Any, Any]]:
    def remove(chosen: list[str], catalogue: list[tuple[str, str]],
               *weights: float) -> dict[Any, Any]:
        kept = _weights(chosen, weights)
        return _paintings(gr, p, [c for i, c in enumerate(chosen) if i != index], catalogue,
                          kept)

    return remove


def _mask_upload(gr: Any, studio: Studio, p: Parts) -> Callable[..., dict[Any, Any]]:
    """An uploaded mask image (the library's format) becomes the painter's strokes."""
    def upload(path: str | None, content: str | None,
               chosen: list[str] | None) -> dict[Any, Any]:
        if path is None:
            return {p.status: gr.skip()}
        try:
            if not content:
                raise PageError("choose a photo first, then its mask")
            mask_image = _user_errors(studio.check_upload, path)
            with Image.open(content) as photo:
                size = photo.size
            count = len(chosen or [])
            _user_errors(check_mask, mask_image, size, count)
            value = painter_value(content, mask_image, count)
        except PageError as e:
            return {p.status: error_text(str(e))}
        return {p.painter: value, p.status: f"Mask {Path(path).name} loaded: one region per "
                "painting (change it with the brush or Fill), then **Stylize**."}

    return upload


def _mask(studio: Studio, content: str | None, painted: PainterValue | None,
          count: int) -> Image.Image | None:
    """The painted regions as the mask the job takes (None: nothing painted)."""
    strokes = layer(painted, studio.limits.max_pixels)
    if not content or strokes is None or count < 2:
        return None
    with Image.open(content) as photo:
        size = photo.size
    return region_mask([strokes], count, size)


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


def _follow(gr: Any, studio: Studio, p: Parts, start: Callable[[], Iterator[Update]],
            history: History, entry: Callable[[Update], Entry]) -> Iterator[dict[Any, Any]]:
    """A run's updates for the page: live previews, then the result (the slider, its PNG,
    the history with the new entry shown), or one error message in place of the result."""
    hidden = gr.update(visible=False)
    try:
        first = True
        for update in _guarded(_user_errors(start)):
            if update.download is None:
                out: dict[Any, Any] = {p.status: update.status}
                if update.image is not None:
                    out[p.canvas] = gr.update(value=update.image, visible=True)
                if first:  # the last result's slider, download and commands go
                    out |= {p.compare: hidden, p.download: gr.update(value=None, visible=False),
                            p.further: hidden, p.command: hidden, p.files: hidden}
                    first = False
                yield out
                continue
            new = entry(update)
            for gone in history.add(new):
                studio.discard(gone.png)
            yield {p.canvas: hidden, p.status: update.status,
                   p.download: gr.update(value=update.download, visible=True),
                   p.compare: gr.update(value=(update.before, update.download), visible=True),
                   p.shelf: history.gallery(), p.history: history, p.selected: 0,
                   p.details: new.describe(), p.rerun: gr.update(visible=True),
                   p.further: gr.update(visible=True), p.command: hidden, p.files: hidden}
    except PageError as e:  # the message replaces the last result, not next to it
        yield {p.canvas: gr.update(value=None, visible=True), p.compare: hidden,
               p.status: error_text(str(e)), p.download: gr.update(value=None, visible=False),
               p.further: hidden, p.command: hidden, p.files: hidden}


def _stylizer(gr: Any, studio: Studio, p: Parts) -> Callable[..., Iterator[dict[Any, Any]]]:
    """The queued handler of Stylize: previews, then the result (see :func:`_follow`)."""
    names = ui_fields()

    def stylize(request: Any, content: str | None, chosen: list[str] | None,
                painted: PainterValue | None, *rest: Any) -> Iterator[dict[Any, Any]]:
        weights = tuple(float(w) for w in rest[:MAX_STYLES])
        history: History = rest[MAX_STYLES] if len(rest) > MAX_STYLES else History()
        values = dict(zip(names, rest[MAX_STYLES + 1:]))
        stop = studio.flag(request.session_hash)
        if stop.is_set():  # Stop was pressed while this job waited in the queue
            yield {p.status: "Stopped before it started."}
            return
        styles = list(chosen or [])
        used = weights[:len(styles)]
        page_values = dict(values)
        if len(styles) > 1:
            values["style_blend"] = used

        def start() -> Iterator[Update]:
            mask = _mask(studio, content, painted, len(styles))
            return studio.run(content, styles, values, stop, session=request.session_hash,
                              mask=mask)

        def entry(update: Update) -> Entry:
            return Entry(str(update.download), str(update.before), str(content), tuple(styles),
                         used, page_values, update.status, update.mask, update.number)

        yield from _follow(gr, studio, p, start, history, entry)

    stylize.__annotations__ = {"request": gr.Request}
    return stylize


def _further(gr: Any, studio: Studio, p: Parts, *,
             enlarge: bool) -> Callable[..., Iterator[dict[Any, Any]]]:
    """The queued handler of Continue (the page's Iterations more from the picture shown)
    and Enlarge (the next size up, see :func:`~estilo.web.jobs.enlarged`)."""
    def further(request: Any, history: History | None, selected: int | None,
                iterations: Any) -> Iterator[dict[Any, Any]]:
        stop = studio.flag(request.session_hash)
        shown = (history or History()).get(selected or 0)
        if stop.is_set():
            yield {p.status: "Stopped before it started."}
            return
        if history is None or shown is None:
            yield {p.status: error_text("make a picture first: press Stylize")}
            return
        size = None
        if enlarge:
            with Image.open(shown.png) as picture:
                side = max(picture.size)
            size = enlarged(side, studio.limits.max_size)
            if size is None:
                yield {p.status: error_text(
                    f"this picture is already this server's largest size "
                    f"({studio.limits.max_size} px): Copy as command takes it further on "
                    "your own machine")}
                return
        parent = shown

        def start() -> Iterator[Update]:
            return studio.further(parent.png, iterations, stop, session=request.session_hash,
                                  size=size)

        def entry(update: Update) -> Entry:
            values = {**parent.values, "iterations": iterations,
                      **({"size": size} if size is not None else {})}
            return Entry(str(update.download), str(update.before), parent.content,
                         parent.styles, parent.weights, values, update.status, update.mask,
                         update.number, "enlarged" if enlarge else "continued")

        yield from _follow(gr, studio, p, start, history, entry)

    further.__annotations__ = {"request": gr.Request}
    return further


def _copy(gr: Any, p: Parts) -> Callable[..., dict[Any, Any]]:
    """"Copy as command": the commands for the picture shown, and the files they name."""
    def copy(history: History | None, selected: int | None, print_size: Any,
             memory: str) -> dict[Any, Any]:
        shown = (history or History()).get(selected or 0)
        try:
            if shown is None:
                raise ConfigError("make a picture first: press Stylize")
            if not isinstance(print_size, (int, float)) or print_size < 64:
                raise ConfigError("the print size must be a long side of at least 64 px")
            parse_memory(memory)
            made = commands(shown.png, print_size=int(print_size), max_memory=memory.strip())
        except ConfigError as e:
            return {p.status: error_text(str(e).replace("max_memory", "the memory"))}
        return {p.command: gr.update(value=made.text, visible=True),
                p.files: gr.update(value=made.files, visible=True)}

    return copy


def _show_entry(gr: Any, p: Parts) -> Callable[..., dict[Any, Any]]:
    """A click on a history thumbnail: its before/after, options, PNG and buttons."""
    def show(event: Any, history: History) -> dict[Any, Any]:
        entry = history.get(event.index if isinstance(event.index, int) else None)
        if entry is None:
            return {p.selected: gr.skip()}
        hidden = gr.update(visible=False)
        return {p.selected: event.index, p.canvas: hidden,
                p.compare: gr.update(value=(entry.before, entry.png), visible=True),
                p.details: entry.describe(),
                p.download: gr.update(value=entry.png, visible=True),
                p.rerun: gr.update(visible=True), p.further: gr.update(visible=True),
                p.command: hidden, p.files: hidden}

    show.__annotations__ = {"event": gr.SelectData}
    return show


def _rerun(gr: Any, p: Parts) -> Callable[..., dict[Any, Any]]:
    """Load a history entry's photo, paintings, weights, mask and options into the controls."""
    names = ui_fields()

    def rerun(history: History, index: int | None,
              catalogue: list[tuple[str, str]]) -> dict[Any, Any]:
        entry = history.get(index)
        if entry is None:
            return {p.status: gr.skip()}
        chosen = list(entry.styles)
        mask_image = None
        if entry.mask and Path(entry.mask).is_file():
            with Image.open(entry.mask) as opened:
                mask_image = opened.convert("RGB")
        values = {widget: entry.values[name] for name, widget in zip(names, p.widgets)
                  if name in entry.values}
        return {p.content: entry.content,
                p.painter: painter_value(entry.content, mask_image, len(chosen)),
                **_paintings(gr, p, chosen, catalogue, dict(zip(chosen, entry.weights))),
                **values, p.status: RELOADED}

    return rerun


# --- the command --------------------------------------------------------------------------------


def launch(studio: Studio, *, host: str = "127.0.0.1", port: int | None = None,
           share: bool = False, auth: tuple[str, str] | None = None,
           block: bool = True, stopping: threading.Event | None = None) -> Any:
    """Build the page, set up the queue and the upload limit, and serve it.

    With ``block``, serve until ``stopping`` is set (by default: SIGTERM or SIGINT, see
    :func:`stop_on_signals`), then stop the runs, remove the studio's folder (uploads,
    results, and Gradio's and torch's caches unless chosen elsewhere, see
    :func:`_keep_caches`) and close the server. Without, return at once.

    Returns:
        The launched Blocks (with ``block=False``; call ``studio.close()`` and ``.close()``
        to stop it).
    """
    if block and stopping is None:
        stopping = stop_on_signals()
    limit_malloc_arenas()  # memory levels off over many jobs (benchmarks/web_soak.py)
    _keep_caches(studio)
    demo = None
    try:
        demo = build_app(studio)
        demo.queue(max_size=studio.limits.queue_size, api_open=False,
                   default_concurrency_limit=1)
        # quiet: Gradio's own lines (a share=True hint among them) are replaced by ours
        # below; no footer links: the REST API is closed (api_open=False), so no "Use via API".
        demo.launch(server_name=host, server_port=port, share=share, auth=auth,
                    max_file_size=int(studio.limits.max_upload_mb * 1024 * 1024),
                    prevent_thread_lock=True, show_error=False, run_history=False,
                    enable_monitoring=False, ssr_mode=False, mcp_server=False,
                    footer_links=[], inbrowser=False, quiet=True, css=CSS)
        public = f" and {demo.share_url}" if demo.share_url else ""
        print(f"estilo web: serving on {demo.local_url}{public} (Ctrl-C to stop)",
              file=sys.stderr, flush=True)
        if stopping is None:
            return demo
        while not stopping.wait(0.5):
            pass
        print("estilo web: stopping: the runs, then the server; removing its files",
              file=sys.stderr, flush=True)
    finally:
        if stopping is not None:
            studio.close()  # the runs end while the server still drives them
            if demo is not None:
                demo.close(verbose=False)
    return demo


_OWN_CACHES: list[str] = []  # the cache folders this process chose


def _keep_caches(studio: Studio) -> None:
    """Keep Gradio's cache (the uploads as received) and torch's (the folder its optimisers
    make in the temp folder) in the studio's folder, so that they go with it; unless the
    user chose them (``GRADIO_TEMP_DIR``, ``TORCHINDUCTOR_CACHE_DIR``)."""
    for variable, name in (("GRADIO_TEMP_DIR", "gradio"), ("TORCHINDUCTOR_CACHE_DIR", "torch")):
        current = os.environ.get(variable)
        if current is None or current in _OWN_CACHES:
            os.environ[variable] = str(studio.root / name)
            _OWN_CACHES.append(os.environ[variable])


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM and SIGINT (Ctrl-C) set from now on, instead of ending the
    process at once (so that the server can remove its files first); a second signal
    while stopping changes nothing. Call it first thing (before the :class:`Studio`) in
    the main thread; elsewhere the event is returned without handlers."""
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return stopping

    def handler(signum: int, frame: object) -> None:
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    return stopping
