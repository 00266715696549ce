"""The Ray backend against a real local Ray cluster: a head node and a second worker node.

The cluster (ray.cluster_utils.Cluster: separate raylet processes on 127.0.0.1, one CPU
each) is started once for the module and shut down in a finalizer.
"""

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import make_content, make_style
from estilo import StyleConfig
from estilo.batch import run_batch
from estilo.io.output import read_parameters
from imaging import SRC

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

CONFIG = StyleConfig(weights="random", size=48, iterations=4, scales=1, device="cpu",
                     style_layers=("conv1_1",), content_layers=("conv1_1",))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two Ray nodes with one CPU each; workers import estilo from this checkout."""
    patch = pytest.MonkeyPatch()
    patch.setenv("PYTHONPATH", os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    patch.setenv("RAY_AUTH_MODE", "disabled")
    nodes = cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False})
    try:
        nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
        yield nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()
        nodes.shutdown()
        patch.undo()


@pytest.fixture
def images(tmp_path):
    """Three contents and two styles: six items."""
    for i, size in enumerate([(64, 48), (48, 64), (56, 48)]):
        make_content(size).save(tmp_path / f"photo{i}.png")
    make_style((48, 48)).save(tmp_path / "wave.png")
    make_style((56, 56)).rotate(90).save(tmp_path / "swirl.png")
    return [tmp_path / f"photo{i}.png" for i in range(3)], [tmp_path / "wave.png",
                                                            tmp_path / "swirl.png"]


def _task_processes() -> list[int]:
    """Pids of Ray workers now running a batch item (Ray titles them ray::run_task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::run_task"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_ray_batch_runs_items_on_several_worker_processes(cluster, images, tmp_path):
    contents, styles = images
    report = run_batch(contents, styles, tmp_path / "out", CONFIG, backend="ray",
                       address=cluster.address)
    assert (report.count("done"), report.count("failed"), report.backend) == (6, 0, "ray")
    assert len({r.worker for r in report.results}) >= 2
    for result in report.results:
        params = read_parameters(result.item.output)
        assert params["batch_worker"] == result.worker
        assert params["inputs"]["content"]["name"] == result.item.content.name
    again = run_batch(contents, styles, tmp_path / "out", CONFIG, backend="ray",
                      address=cluster.address)
    assert again.count("skipped") == 6


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
@pytest.mark.parametrize("retries", [2, 0])
def test_a_ray_worker_killed_mid_batch_loses_no_item(cluster, images, tmp_path, retries):
    """With retries Ray runs the item again; without, it is recorded and a resume does it."""
    contents, styles = images
    killed: list[int] = []

    def kill_a_running_worker(result, report):
        if killed:
            return
        deadline = time.monotonic() + 20
        while not (running := _task_processes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if running:
            killed.append(running[0])
            os.kill(running[0], signal.SIGKILL)  # a Ray worker of the cluster this test started

    out, config = tmp_path / "out", CONFIG.replace(iterations=12)
    report = run_batch(contents, styles, out, config, backend="ray", address=cluster.address,
                       retries=retries, progress=kill_a_running_worker)
    assert killed, "no running Ray worker was found to kill"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    if retries:
        assert (report.count("done"), report.count("failed")) == (6, 0)
    else:
        assert (report.count("done"), report.count("failed")) == (5, 1)
        failed = next(r for r in report.results if r.status == "failed")
        assert failed.error.startswith("Ray worker lost") and not failed.item.output.exists()
        resumed = run_batch(contents, styles, out, config, backend="ray", address=cluster.address)
        assert (resumed.count("done"), resumed.count("skipped")) == (1, 5)
    assert len(list(out.glob("*.png"))) == 6


def test_quiet_quiets_ray_and_its_workers(monkeypatch):
    """-q (estilo's logger at ERROR) reaches ray.init: no token-authentication warning."""
    import logging

    from estilo.batch.workers import Task, ray_tasks
    from estilo.config import ConfigError

    seen = {}

    def init(**kwargs):
        seen.update(kwargs)
        raise ConnectionError("no cluster here")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(logging.getLogger("estilo"), "level", logging.ERROR)
    with pytest.raises(ConfigError, match="cannot connect"):
        next(ray_tasks([Task(1, "c.png", "s.png", CONFIG)], "10.0.0.1:6379", 1, 0))
    assert seen["logging_level"] == logging.ERROR and seen["log_to_driver"] is False
    monkeypatch.setattr(logging.getLogger("estilo"), "level", logging.NOTSET)
    with pytest.raises(ConfigError):
        next(ray_tasks([Task(1, "c.png", "s.png", CONFIG)], "10.0.0.1:6379", 1, 0))
    assert seen["logging_level"] == logging.WARNING and seen["log_to_driver"] is True
