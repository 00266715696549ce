"""Batch runs: planning, names, manifests, resume, failures, the local pool and the CLI.

The Ray backend has its own file (test_batch_ray.py): it starts a real local cluster.
"""

import json
import os
import signal
from pathlib import Path

import pytest

from conftest import make_style
from estilo.batch import BatchError, run_batch
from estilo.io.output import read_parameters

FAST = ["--weights", "random", "--size", "48", "--iterations", "2", "--scales", "1",
        "--style-layers", "1", "--content-layers", "1", "--device", "cpu"]


def test_batch_writes_outputs_records_failures_and_resumes(tmp_path, images, quick):
    out = tmp_path / "out"
    contents = [*images["contents"], *images["broken"]]
    first = run_batch(contents, images["styles"][:1], out, quick, workers=1)
    assert (first.count("done"), first.count("skipped"), first.count("failed")) == (2, 0, 1)
    failed = next(r for r in first.results if r.status == "failed")
    assert failed.item.content.name == "broken.png"
    assert failed.error.startswith("not a supported image: ")  # estilo's message, no class name
    assert "\n" not in failed.error
    params = read_parameters(out / "a_swirl.png")
    assert params["config"]["size"] == 48
    assert params["inputs"]["styles"][0]["name"] == "swirl.png"
    saved = json.loads((out / "batch-summary.json").read_text())
    assert (saved["done"], saved["failed"], saved["total"]) == (2, 1, 3)
    assert saved["items"][2]["status"] == "failed" and saved["items"][2]["error"] == failed.error
    images["broken"][0].write_bytes((images["contents"][0]).read_bytes())  # repaired
    second = run_batch(contents, images["styles"][:1], out, quick, workers=1)
    assert (second.count("done"), second.count("skipped"), second.count("failed")) == (1, 2, 0)
    assert [r.item.content.name for r in second.results if r.status == "done"] == ["broken.png"]


def test_summary_paths_are_all_absolute(
        tmp_path, images, quick, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = run_batch([Path("photos") / "a.png"], [Path("styles") / "wave.png"], "out", quick,
                       workers=1)
    item = json.loads((tmp_path / "out" / "batch-summary.json").read_text())["items"][0]
    assert [item[k] for k in ("content", "style", "output")] == [
        str(tmp_path / "photos" / "a.png"), str(tmp_path / "styles" / "wave.png"),
        str(tmp_path / "out" / "a_wave.png")]
    assert report.count("done") == 1


def test_an_interrupted_batch_keeps_finished_items_and_resume_completes_it(tmp_path, images, quick):
    out = tmp_path / "out"
    seen = []

    def stop_after_two(result, report):
        seen.append(result.item.output)
        if len(seen) == 2:
            raise KeyboardInterrupt

    first = run_batch(images["contents"], images["styles"], out, quick, workers=1,
                      progress=stop_after_two)
    assert first.interrupted and first.count("done") == 2 and first.pending == 2
    assert sorted(p.name for p in out.glob("*.png")) == sorted(p.name for p in seen)
    assert json.loads((out / "batch-summary.json").read_text())["interrupted"] is True
    mtimes = {p: p.stat().st_mtime_ns for p in seen}
    second = run_batch(images["contents"], images["styles"], out, quick, workers=1)
    assert not second.interrupted
    assert (second.count("skipped"), second.count("done")) == (2, 2)
    assert {r.item.output for r in second.results if r.status == "skipped"} == set(seen)
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # not rewritten


def test_outputs_from_other_options_or_inputs_are_not_taken_as_done(tmp_path, images, quick):
    out = tmp_path / "out"
    run_batch(images["contents"][:1], images["styles"][:1], out, quick, workers=1)
    with pytest.raises(BatchError, match="1 output.* exist with other parameters.*--overwrite"):
        run_batch(images["contents"][:1], images["styles"][:1], out, quick.replace(seed=1))
    redone = run_batch(images["contents"][:1], images["styles"][:1], out, quick.replace(seed=1),
                       overwrite=True)
    assert redone.count("done") == 1 and read_parameters(out / "a_swirl.png")["seed"] == 1
    make_style((56, 56)).rotate(45).save(images["styles"][0])  # same name, new pixels
    with pytest.raises(BatchError, match="other parameters"):
        run_batch(images["contents"][:1], images["styles"][:1], out, quick.replace(seed=1))
    same = run_batch(images["contents"][:1], images["styles"][:1], out,
                     quick.replace(seed=1, device="auto"), overwrite=True)
    assert same.count("done") == 1  # the new style pixels ran; the device alone would not


def test_the_process_pool_uses_several_workers_and_survives_a_killed_worker(tmp_path, images,
                                                                            quick):
    killed = []

    def kill_one_worker(result, report):
        if not killed and result.status == "done":
            pid = int(result.worker.rsplit(":", 1)[1])
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)  # a pool worker this test started

    config = quick.replace(iterations=6)
    report = run_batch(images["contents"] * 1, images["styles"], tmp_path / "out", config,
                       name="{index}_{content}_{style}.png", workers=2, progress=kill_one_worker)
    assert report.workers == 2 and report.count("done") == 4 and report.count("failed") == 0
    workers = {r.worker for r in report.results}
    assert len(workers) >= 2
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


def test_a_killed_worker_loses_only_its_own_item(tmp_path, images, quick, caplog):
    """The other workers' running items finish on their own processes; only the lost item
    runs again (ProcessPoolExecutor alone would break the whole pool and rerun them all)."""
    import multiprocessing

    alive, killed = set(), []

    def kill_one_worker(result, report):
        if not killed and result.status == "done":
            pid = int(result.worker.rsplit(":", 1)[1])
            alive.update(p.pid for p in multiprocessing.active_children() if p.pid != pid)
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)  # a pool worker this test started

    report = run_batch(images["contents"], images["styles"], tmp_path / "out",
                       quick.replace(iterations=8), workers=2, progress=kill_one_worker)
    assert report.count("done") == 4 and report.count("failed") == 0
    pids = [int(r.worker.rsplit(":", 1)[1]) for r in report.results]
    assert alive and any(pid in alive for pid in pids[1:])  # the healthy worker went on
    assert killed[0] not in pids[1:]
    # The killed worker, the healthy one and one new process in the killed one's place
    # (a restarted pool would have brought two new processes: four in all).
    assert len(set(pids)) == 3, pids
    assert caplog.text.count("a worker process died") <= 1
