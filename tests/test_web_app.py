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


def test_the_handler_streams_images_and_the_png(studio: Studio, content_path: Path,
                                               style_path: Path) -> None:
    from estilo.web import _stylizer

    handler = _stylizer(gr, studio)
    request = SimpleNamespace(session_hash="s1")
    outputs = list(handler(request, str(content_path), str(style_path),
                           *[getattr(studio.defaults, n) for n in ui_fields()]))
    images = [o[0] for o in outputs if isinstance(o[0], Image.Image)]
    assert len(images) == 8  # tiny: 8 iterations, a preview after each (preview_every=0)
    assert outputs[-1][0] == outputs[-1][2] and outputs[-1][2].endswith(".png")
    assert "Done" in outputs[-1][1]


def test_the_handler_reports_errors_and_gpu_oom(studio: Studio,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from estilo.web import _stylizer

    handler = _stylizer(gr, studio)
    request = SimpleNamespace(session_hash="s2")
    outputs = list(handler(request, None, None))
    # One message in the status line; the canvas and the download are cleared (None).
    message = ("**Error:** upload a content image and a style image first (or press 'Use the "
               "example')")
    assert outputs == [(None, message, None)]

    def oom(*args: object) -> object:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        yield

    monkeypatch.setattr(studio, "run", oom)
    assert list(handler(request, "c", "s")) == [(None, f"**Error:** {GPU_OOM}", None)]


def test_a_bad_upload_replaces_the_result_with_its_message(studio: Studio, tmp_path: Path,
                                                           content_path: Path) -> None:
    from estilo.web import _checker

    check = _checker(gr, studio)
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    preview, canvas, status, download = check(str(bad))
    assert preview is None and canvas is None and download is None
    assert status.startswith("**Error:** not a supported image: notes.png")
    preview, *rest = check(str(content_path))
    assert isinstance(preview, Image.Image) and all(isinstance(r, type(gr.skip())) for r in rest)


def test_a_stop_before_the_job_starts_skips_it(studio: Studio) -> None:
    from estilo.web import _stylizer

    studio.stop("s3")
    outputs = list(_stylizer(gr, studio)(SimpleNamespace(session_hash="s3"), "c", "s"))
    assert outputs[-1][1] == "Stopped before it started."


def test_the_app_builds_with_a_queued_stylize_endpoint(studio: Studio) -> None:
    from estilo.web import build_app

    demo = build_app(studio)
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    stylize = fns["stylize"]
    assert stylize.queue and stylize.concurrency_limit == 1 and stylize.concurrency_id == "device"
    assert demo.delete_cache is not None
    assert all(fn.api_visibility == "private" for name, fn in fns.items() if name != "stylize")
