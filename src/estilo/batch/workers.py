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
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, StyleConfig

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
    from ..devices import resolve_device, tune
    from ..transfer import Stylizer

    start = time.perf_counter()
    if task.threads:
        import torch

        torch.set_num_threads(task.threads)
    stylizer = _worker_state.setdefault("stylizer", Stylizer())
    device = _worker_state.get("device")
    config = task.config.replace(device=device) if device else task.config
    try:
        job = stylizer.job(task.content, task.style, config)
        tune(resolve_device(config.device))  # backend speed settings: the app's choice
        result = job.run()
        buffer = io.BytesIO()
        result.image.save(buffer, format="PNG")
        return Outcome(task.index, buffer.getvalue(), result.parameters,
                       seconds=time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 -- recorded per item; the batch goes on
        return Outcome(task.index, error=_one_line(e), seconds=time.perf_counter() - start)


def _one_line(error: BaseException) -> str:
    """The first line of an error: estilo's own messages as they are (like the CLI's), other
    errors (bugs, crashes) with their class name."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if type(error).__module__.split(".")[0] == "estilo" and text:
        return text
    return f"{type(error).__name__}: {text}".rstrip(": ")


def _init_pool_worker(device: str | None, threads: int, level: int) -> None:
    """Pool worker start: leave Ctrl-C to the driver, take its device, size torch's threads,
    log at the driver's level (``-q``: errors only)."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("estilo").setLevel(level)
    torch.set_num_threads(threads)
    if device is not None:
        _worker_state["device"] = device


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
    """Spawned worker processes, each in its own one-process executor, fed one item at a time.

    A worker that dies (killed, out of memory) loses only the item it was running: that item
    runs again (at most ``retries`` times) on a new process in its place, while the other
    workers go on with theirs.
    """
    context = multiprocessing.get_context("spawn")
    threads = max(1, _cores() // workers) if not devices else 1
    level = logging.getLogger("estilo").getEffectiveLevel()

    def start(number: int) -> ProcessPoolExecutor:
        device = devices[number % len(devices)] if devices else None  # shared in turn
        return ProcessPoolExecutor(1, mp_context=context, initializer=_init_pool_worker,
                                   initargs=(device, threads, level))

    queue = deque(tasks)
    deaths: Counter[int] = Counter()
    executors = [start(n) for n in range(min(workers, len(queue)))]
    running: dict[Future[Outcome], tuple[int, Task]] = {}
    try:
        for number in range(len(executors)):
            _feed(executors, number, queue, running, start)
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                number, task = running.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    executors[number].shutdown(wait=False)
                    executors[number] = start(number)
                    deaths[task.index] += 1
                    if deaths[task.index] > retries:
                        yield _lost(task.index, retries)
                    else:
                        log.warning("a worker process died; running its item %d again on a "
                                    "new process (%d/%d)", task.index, deaths[task.index],
                                    retries)
                        queue.appendleft(task)
                _feed(executors, number, queue, running, start)
    finally:
        for executor in executors:
            if running:  # interrupted: running items are lost, not saved
                _terminate(executor)
            executor.shutdown(wait=True, cancel_futures=True)


def _feed(executors: list[ProcessPoolExecutor], number: int, queue: deque[Task],
          running: dict[Future[Outcome], tuple[int, Task]],
          start: Callable[[int], ProcessPoolExecutor]) -> None:
    """Give worker ``number`` the next item (on a new process if its own died while idle)."""
    if not queue:
        return
    task = queue.popleft()
    try:
        future = executors[number].submit(run_task, task)
    except BrokenProcessPool:
        executors[number] = start(number)
        future = executors[number].submit(run_task, task)
    running[future] = (number, task)


def _lost(index: int, retries: int) -> Outcome:
    return Outcome(index, error=f"a worker process died (killed, or out of memory?) while "
                                f"running this item, {retries + 1} times", worker=None)


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Stop the executor's worker now (interruption): its current item is lost, not saved."""
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


def ray_tasks(tasks: Sequence[Task], address: str | None, cpus: float,
              retries: int) -> Iterator[Outcome]:
    """One Ray task per item, collected on the driver with ``ray.wait`` as they finish."""
    import ray

    started = not ray.is_initialized()
    level = max(logging.WARNING, logging.getLogger("estilo").getEffectiveLevel())
    if started:  # Ray's own messages (and its workers' output) follow estilo's level: -q quiets
        try:
            ray.init(address=address, include_dashboard=False, logging_level=level,
                     log_to_driver=level <= logging.WARNING)
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
