"""The web app's Gradio layer, built but not launched: the handler, errors, the queue settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from estilo import StyleConfig
from estilo.web import GPU_OOM, Limits, Studio, ui_fields

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


def _values(studio: Studio) -> list[object]:
    return [getattr(studio.defaults, n) for n in ui_fields()]


def test_the_handler_streams_images_then_the_slider_and_the_history(
        studio: Studio, content_path: Path, style_path: Path) -> None:
    from estilo.web.app import _stylizer
    from estilo.web.history import History

    handler = _stylizer(gr, studio)
    history = History()
    outputs = list(handler(SimpleNamespace(session_hash="s1"), str(content_path),
                           [str(style_path)], None, 5, 5, 5, history, *_values(studio)))
    images = [o[0]["value"] for o in outputs if isinstance(o[0], dict)
              and isinstance(o[0].get("value"), Image.Image)]
    assert len(images) == 8  # tiny: 8 iterations, a preview after each (preview_every=0)
    canvas, compare, status, download, shelf, kept = outputs[-1]
    assert canvas["visible"] is False and compare["visible"] is True
    assert compare["value"] == (history.entries[0].before, download) and download.endswith(".png")
    assert "Done" in status and kept is history and shelf == history.gallery()
    entry = history.entries[0]
    assert entry.styles == (str(style_path),) and entry.values["iterations"] == 8
    assert "iterations: `8`" in entry.describe() and "style.png" in entry.describe()


def test_the_handler_reports_errors_and_gpu_oom(studio: Studio,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from estilo.web.app import _stylizer

    handler = _stylizer(gr, studio)
    request = SimpleNamespace(session_hash="s2")
    outputs = list(handler(request, None, [], None, 5, 5, 5))
    # One message in the status line; the canvas, slider and download are cleared.
    message = ("**Error:** choose a photo and at least one painting first (or press 'Use the "
               "example')")
    assert [o[2:4] for o in outputs] == [(message, None)]
    assert outputs[0][0]["value"] is None and outputs[0][1]["visible"] is False

    def oom(*args: object, **kwargs: object) -> object:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        yield

    monkeypatch.setattr(studio, "run", oom)
    assert [o[2] for o in handler(request, "c", ["s"], None, 5, 5, 5)] == [f"**Error:** {GPU_OOM}"]


def test_a_bad_upload_replaces_the_result_with_its_message(studio: Studio, tmp_path: Path,
                                                           content_path: Path) -> None:
    from estilo.web.app import _photo

    check = _photo(gr, studio)
    request = SimpleNamespace(session_hash="s4")
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    content, editor, canvas, compare, status, download = check(request, str(bad))
    assert content is None and editor is None and canvas is None and download is None
    assert compare["visible"] is False
    assert status.startswith("**Error:** not a supported image: notes.png")
    content, editor, *_ = check(request, str(content_path))
    assert Path(content).name == "content.png" and editor["background"] == content


def test_a_stop_before_the_job_starts_skips_it(studio: Studio) -> None:
    from estilo.web.app import _stylizer

    studio.stop("s3")
    outputs = list(_stylizer(gr, studio)(SimpleNamespace(session_hash="s3"), "c", ["s"], None))
    assert outputs[-1][2] == "Stopped before it started."


def test_clicking_paintings_chooses_up_to_three(studio: Studio) -> None:
    from estilo.web.app import _toggle, bundled_styles

    catalogue = bundled_styles(studio) + [("/tmp/mine.png", "mine (yours)")]
    toggle = _toggle(gr)
    chosen: list[str] = []
    for index in (0, 2, 1):
        chosen, *slots = toggle(catalogue, chosen, SimpleNamespace(index=index))
    assert [Path(c).name for c in chosen] == ["starry_night.jpg", "shipwreck.jpg",
                                              "the_scream.jpg"]
    assert slots[5]["label"] == "The Shipwreck (1805): weight (blue brush)"
    assert all(isinstance(o, type(gr.skip())) for o in toggle(catalogue, chosen,
                                                              SimpleNamespace(index=3)))
    chosen, *slots = toggle(catalogue, chosen, SimpleNamespace(index=0))  # un-choose
    assert len(chosen) == 2 and slots[6]["visible"] is False


def test_every_control_has_its_options_help(studio: Studio) -> None:
    from estilo.options import help_text
    from estilo.web.app import _widget, info

    assert info("preserve_color").startswith("keep the photo's colours")
    assert info("strength") == help_text("strength")
    with gr.Blocks():
        for name in ui_fields():
            assert _widget(gr, name, studio).info == info(name)


def test_the_app_builds_with_a_queued_stylize_endpoint(studio: Studio) -> None:
    from estilo.web import build_app

    demo = build_app(studio)
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    stylize = fns["stylize"]
    assert stylize.queue and stylize.concurrency_limit == 1 and stylize.concurrency_id == "device"
    assert demo.delete_cache is not None
    assert all(fn.api_visibility == "private" for name, fn in fns.items() if name != "stylize")
