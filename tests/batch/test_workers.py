"""Where batch items run: the worker body, in this process, and the local pool's size."""

import io
import os
import socket

from PIL import Image

from estilo import StyleConfig, Stylizer
from estilo.batch.workers import Task, inline, local_workers, run_task


def test_a_task_gives_a_png_and_its_parameters(content_path, style_path, quick):
    outcome = run_task(Task(1, str(content_path), str(style_path), quick))
    assert outcome.error is None and outcome.index == 1 and outcome.seconds > 0
    with Image.open(io.BytesIO(outcome.png)) as image:
        assert image.format == "PNG" and image.size == (48, 36)
    assert outcome.parameters["config"] == quick.to_dict()
    assert outcome.worker == f"{socket.gethostname()}:{os.getpid()}"


def test_errors_are_one_line_estilo_messages_as_they_are(style_path, tmp_path, quick):
    outcome = run_task(Task(2, str(tmp_path / "missing.png"), str(style_path), quick))
    assert outcome.png is None and outcome.error.startswith("input image not found: ")
    assert "\n" not in outcome.error


def test_other_errors_keep_their_class(content_path, style_path, quick, monkeypatch):
    def crash(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nmore")

    monkeypatch.setattr(Stylizer, "job", crash)
    outcome = run_task(Task(3, str(content_path), str(style_path), quick))
    assert outcome.error == "ZeroDivisionError: division by zero"


def test_inline_runs_the_tasks_in_order(content_path, style_path, tmp_path, quick):
    tasks = [Task(i, str(content_path if i != 2 else tmp_path / "none.png"), str(style_path),
                  quick) for i in (1, 2, 3)]
    outcomes = list(inline(tasks))
    assert [o.index for o in outcomes] == [1, 2, 3]
    assert [o.error is None for o in outcomes] == [True, False, True]


def test_local_workers_one_per_core_at_most_one_per_item():
    count, devices = local_workers(StyleConfig(device="cpu"), items=1)
    assert (count, devices) == (1, None)
    count, devices = local_workers(StyleConfig(device="cpu"), items=1000)
    assert 1 <= count <= (os.cpu_count() or 1) and devices is None
    assert local_workers(StyleConfig(device="mps"), items=5) == (1, None)
