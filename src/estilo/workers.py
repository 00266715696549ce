"""Where batch items run: in this process, on a ``spawn`` process pool, or as Ray tasks.

Every backend is a generator of :class:`Outcome` (closing it stops its workers) around the
same worker body, :func:`run_task`: one :class:`~estilo.transfer.Stylizer` per worker
process (the network is loaded once per worker), the PNG bytes and the parameters to embed
sent back to the driver, or a one-line error. Ray is imported only by :func:`ray_tasks`.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, StyleConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """What a worker needs for one item (picklable)."""

    index: int
    content: str
    style: str
    config: StyleConfig
    threads: int | None = None


@dataclass
class Outcome:
    """What a worker sends back: the PNG and its parameters, or a one-line error."""

    index: int
    png: bytes | None = None
    parameters: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str | None = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


_worker_state: dict[str, Any] = {}  # per worker process: the Stylizer and the assigned device


def run_task(task: Task) -> Outcome:
    """Run one item in this process (the body of every backend's worker)."""
    from .transfer import Stylizer

    start = time.perf_counter()
    if task.threads:
        import torch

        torch.set_num_threads(task.threads)
    stylizer = _worker_state.setdefault("stylizer", Stylizer())
    device = _worker_state.get("device")
    config = task.config.replace(device=device) if device else task.config
    try:
        job = stylizer.job(task.content, task.style, config)
        result = job.run()
        buffer = io.BytesIO()
        result.image.save(buffer, format="PNG")
        return Outcome(task.index, buffer.getvalue(), result.parameters,
                       seconds=time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 -- recorded per item; the batch goes on
        return Outcome(task.index, error=_one_line(e), seconds=time.perf_counter() - start)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _init_pool_worker(devices: Any, threads: int) -> None:
    """Pool worker start: leave Ctrl-C to the driver, take a device, size torch's threads."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    if devices is not None:
        _worker_state["device"] = devices.get()


# --- backends: generators of Outcome; closing them stops their workers ----------------------


def inline(tasks: Sequence[Task]) -> Iterator[Outcome]:
    """Run the tasks one after the other in this process."""
    for task in tasks:
        yield run_task(task)


def local_workers(config: StyleConfig, items: int) -> tuple[int, list[str] | None]:
    """(worker count, one device per worker or None) for the local pool on this machine."""
    import torch

    if config.device == "auto" and torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        return min(gpus, max(items, 1)), [f"cuda:{i}" for i in range(gpus)]
    if config.device != "cpu" and config.device != "auto":
        return 1, None
    return max(1, min(_cores(), items)), None


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def pool(tasks: Sequence[Task], workers: int, devices: list[str] | None,
         retries: int) -> Iterator[Outcome]:
    """A spawn process pool; rebuilt (up to ``retries`` times) when a worker process dies."""
    pending = {t.index: t for t in tasks}
    for attempt in range(retries + 1):
        yield from _pool_round(pending, workers, devices)
        if not pending:
            return
        if attempt < retries:
            log.warning("a worker process died; running %d item(s) again on a new pool "
                        "(%d/%d)", len(pending), attempt + 1, retries)
    for index in list(pending):
        yield Outcome(index, error=f"a worker process died (killed, or out of memory?) and "
                                   f"the pool was restarted {retries} times", worker=None)


def _pool_round(pending: dict[int, Task], workers: int,
                devices: list[str] | None) -> Iterator[Outcome]:
    context = multiprocessing.get_context("spawn")
    queue = None
    if devices:
        queue = context.Queue()
        for number in range(workers):  # more workers than devices share them in turn
            queue.put(devices[number % len(devices)])
    threads = max(1, _cores() // workers) if not devices else 1
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_pool_worker,
                                   initargs=(queue, threads))
    finished = False
    try:
        futures: dict[Future[Outcome], int] = {executor.submit(run_task, t): i
                                                for i, t in pending.items()}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except BrokenProcessPool:
                continue  # run again in a new pool
            del pending[futures[future]]
            yield outcome
        finished = True
    finally:
        if not finished:
            _terminate(executor)
        executor.shutdown(wait=True, cancel_futures=True)


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Stop the pool's workers now (interruption): their current items are lost, not saved."""
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


def ray_tasks(tasks: Sequence[Task], address: str | None, cpus: float,
              retries: int) -> Iterator[Outcome]:
    """One Ray task per item, collected on the driver with ``ray.wait`` as they finish."""
    import ray

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, ray.exceptions.RayError) as e:
            raise ConfigError(f"cannot connect to the Ray cluster at {address!r}: "
                              f"{_one_line(e)}; check --address") from None
    use_gpu = tasks[0].config.device in ("auto", "cuda") and ray.cluster_resources().get("GPU", 0) > 0
    remote = ray.remote(run_task).options(num_cpus=cpus, num_gpus=1 if use_gpu else 0,
                                          max_retries=retries)
    refs = {remote.remote(task): task.index for task in tasks}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                yield _ray_result(ray, ref, refs.pop(ref), retries)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _ray_result(ray: Any, ref: Any, index: int, retries: int) -> Outcome:
    try:
        return ray.get(ref)  # type: ignore[no-any-return]
    except ray.exceptions.RayError as e:
        return Outcome(index, error=f"Ray worker lost after {retries} retries: {_one_line(e)}",
                       worker=None)
