"""The web app's Gradio layer, built but not launched: the handlers (found by the components
they update, as the page calls them), errors, the queue settings, the controls' words."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from estilo import StyleConfig
from estilo.options import layer_list
from estilo.web import GPU_OOM, Limits, Studio, build_app, ui_fields
from estilo.web.history import History
from estilo.web.words import info, label

gr = pytest.importorskip("gradio")

# Building Blocks leaves asyncio event loops to the garbage collector (Gradio's, not ours):
# collect them inside each test, where these filters apply, not at the end of the session.
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(autouse=True)
def _collect_gradio_loops() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def studio(tiny: StyleConfig) -> Studio:
    return Studio(tiny, Limits(max_size=96, max_iterations=50, preview_every=0.0))


class App:
    """A built page: its components by ``elem_id`` and its events' functions."""

    def __init__(self, studio: Studio) -> None:
        self.demo = build_app(studio)
        self.ids = {block.elem_id: block for block in self.demo.blocks.values()
                    if getattr(block, "elem_id", None)}

    def handler(self, trigger: str, event: str) -> Any:
        """The function of ``event`` (click, change, ...) on the component ``trigger``."""
        block = self.ids[trigger]
        for fn in self.demo.fns.values():
            if any(t[0] == block._id and t[1] == event for t in fn.targets) and fn.fn:
                return fn.fn
        raise LookupError(f"no {event} on {trigger}")

    def endpoint(self, api_name: str) -> Any:
        """The function of the event with this API name (``stylize``)."""
        return next(fn.fn for fn in self.demo.fns.values() if fn.api_name == api_name)

    def named(self, outputs: dict[Any, Any]) -> dict[str, Any]:
        """A handler's outputs by elem_id (State values under their type's name)."""
        return {getattr(c, "elem_id", None) or type(v).__name__: v for c, v in outputs.items()}


def _values(studio: Studio) -> list[object]:
    defaults = studio.defaults
    return [layer_list(defaults.style_layers, defaults.style_layer_weights)
            if n == "style_layers" else getattr(defaults, n) for n in ui_fields()]


def test_the_handler_streams_images_then_the_slider_and_the_history(
        studio: Studio, content_path: Path, style_path: Path) -> None:
    app = App(studio)
    stylize = app.endpoint("stylize")
    history = History()
    outputs = [app.named(o) for o in stylize(
        SimpleNamespace(session_hash="s1"), str(content_path), [str(style_path)], None,
        5, 5, 5, history, *_values(studio))]
    images = [o["canvas"]["value"] for o in outputs
              if isinstance(o.get("canvas", {}).get("value"), Image.Image)]
    assert len(images) == 8  # tiny: 8 iterations, a preview after each (preview_every=0)
    assert "estimating the time left" in outputs[1]["status"]  # the first step's line
    assert "s left" in outputs[-2]["status"]
    final = outputs[-1]
    entry = history.entries[0]
    assert final["canvas"]["visible"] is False and final["compare"]["visible"] is True
    assert final["compare"]["value"] == (entry.before, final["download"]["value"])
    assert Path(entry.png).name == "content-style-1.png" and final["download"]["visible"]
    assert "Done" in final["status"] and final["History"] is history
    assert final["history"] == history.gallery() and final["further"]["visible"] is True
    assert final["int"] == 0 and final["entry-details"] == entry.describe()  # the new one
    assert entry.styles == (str(style_path),) and entry.values["iterations"] == 8
    assert "Iterations: `8`" in entry.describe() and "style.png" in entry.describe()


def test_the_handler_reports_errors_and_gpu_oom(studio: Studio,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    app = App(studio)
    stylize = app.endpoint("stylize")
    request = SimpleNamespace(session_hash="s2")
    outputs = [app.named(o) for o in stylize(request, None, [], None, 5, 5, 5)]
    # One message in the status line; the canvas, slider, download and buttons are cleared.
    assert len(outputs) == 1
    assert outputs[0]["status"] == ("**Error:** choose a photo and at least one painting "
                                    "first (or press 'Use the example')")
    assert outputs[0]["download"]["value"] is None and outputs[0]["canvas"]["value"] is None
    assert outputs[0]["compare"]["visible"] is False and outputs[0]["further"]["visible"] is False

    def oom(*args: object, **kwargs: object) -> object:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        yield

    monkeypatch.setattr(studio, "run", oom)
    assert [app.named(o)["status"] for o in stylize(request, "c", ["s"], None, 5, 5, 5)] \
        == [f"**Error:** {GPU_OOM}"]


def test_a_bad_upload_replaces_the_result_and_leaves_the_photo_box(
        studio: Studio, tmp_path: Path, content_path: Path) -> None:
    app = App(studio)
    photo = app.handler("photo-file", "change")
    request = SimpleNamespace(session_hash="s4")
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    out = app.named(photo(request, str(bad)))
    assert out["photo-file"] is None and out["mask"] is None
    assert out["download"] == {"value": None, "visible": False, "__type__": "update"}
    assert out["compare"]["visible"] is False
    assert out["status"].startswith("**Error:** not a supported image: notes.png")
    out = app.named(photo(request, str(content_path)))
    assert out["mask"]["width"] == 64 and out["mask"]["photo"].startswith("data:image/jpeg")
    assert "photo-file" not in out  # the good photo stays in its box


def test_a_stop_before_the_job_starts_skips_it(studio: Studio) -> None:
    app = App(studio)
    studio.stop("s3")
    stylize = app.endpoint("stylize")
    outputs = list(stylize(SimpleNamespace(session_hash="s3"), "c", ["s"], None))
    assert app.named(outputs[-1])["status"] == "Stopped before it started."


def test_every_control_is_labelled_and_helped_in_the_pages_words(studio: Studio) -> None:
    app = App(studio)
    for name in ui_fields():
        widget = app.ids[f"opt-{name}"]
        assert widget.label == label(name) and widget.info == info(name)
        assert "--" not in widget.info and "(default" not in widget.info
    assert info("preserve_color").startswith("keep the photo's colours")
    assert ("off", "none") in app.ids["opt-preserve_color"].choices
    assert ("the photo with noise", "content+noise") in app.ids["opt-init"].choices


def test_the_app_builds_with_a_queued_stylize_endpoint(studio: Studio) -> None:
    demo = build_app(studio)
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    stylize = fns["stylize"]
    assert stylize.queue and stylize.concurrency_limit == 1 and stylize.concurrency_id == "device"
    assert demo.delete_cache is not None
    assert all(fn.api_visibility == "private" for name, fn in fns.items() if name != "stylize")
    runs = [fn for fn in demo.fns.values() if fn.concurrency_id == "device"]
    assert len(runs) == 3 and all(fn.concurrency_limit == 1 for fn in runs)  # and Continue, Enlarge
