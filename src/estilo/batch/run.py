"""Running a planned batch: skip what is done, hand the rest to a backend
(:mod:`estilo.batch.workers`), save each result atomically as it arrives, write the summary."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from ..config import INITS, StyleConfig
from ..files import sha256, write_atomic
from ..io.metadata import run_key, same_run
from ..io.output import OutputError, check_output_path, read_parameters, save_image
from .plan import DEFAULT_NAME, BatchError, Item, plan
from .workers import Outcome, Task, inline, local_workers, pool, ray_tasks

log = logging.getLogger(__name__)

SUMMARY_NAME = "batch-summary.json"
BACKENDS = ("local", "ray")
Status = Literal["done", "skipped", "failed"]


@dataclass
class ItemResult:
    """What became of one item. ``worker`` is ``host:pid`` of the process that ran it."""

    item: Item
    status: Status
    error: str | None = None
    seconds: float = 0.0
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (paths as absolute strings, inputs and output alike)."""
        item = self.item
        return {"index": item.index, "content": os.path.abspath(item.content),
                "style": os.path.abspath(item.style), "output": os.path.abspath(item.output),
                "status": self.status, "error": self.error, "seconds": round(self.seconds, 3),
                "worker": self.worker}


@dataclass
class Summary:
    """The outcome of :func:`run_batch`, also written as JSON (``path``)."""

    results: list[ItemResult]
    backend: str
    workers: int | None             # local processes; None for Ray (the cluster decides)
    total: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    path: Path | None = None

    def count(self, status: Status) -> int:
        """How many items ended with ``status``."""
        return sum(r.status == status for r in self.results)

    @property
    def pending(self) -> int:
        """Items neither done, skipped nor failed (left by an interruption)."""
        return self.total - len(self.results)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts, time, backend and one record per finished item."""
        return {"done": self.count("done"), "skipped": self.count("skipped"),
                "failed": self.count("failed"), "pending": self.pending, "total": self.total,
                "elapsed_s": round(self.elapsed, 3), "interrupted": self.interrupted,
                "backend": self.backend, "workers": self.workers,
                "items": [r.to_dict() for r in sorted(self.results, key=lambda r: r.item.index)]}


# --- resume ----------------------------------------------------------------------------------


class _Hashes:
    """sha256 of input files, each read once (None when unreadable)."""

    def __init__(self) -> None:
        self._known: dict[Path, str | None] = {}

    def __call__(self, path: Path) -> str | None:
        if path not in self._known:
            try:
                self._known[path] = sha256(path)
            except OSError:
                self._known[path] = None
        return self._known[path]


def expected_key(item: Item, config: StyleConfig,
                 digest: Callable[[Path], str | None]) -> tuple[str, ...] | None:
    """The :func:`~estilo.io.metadata.same_run` key (without weights, which the driver does
    not load) of the output ``item`` gets with ``config``; None when an input cannot be read."""
    def sha(path: str | Path | None) -> str | None:
        return digest(Path(path).expanduser()) if path is not None else None

    content = sha(item.content)
    if content is None:
        return None
    return same_run(config.to_dict(), content=content, styles=[sha(item.style)], groups=[0],
                    init=None if config.init in INITS else sha(config.init), mask=sha(config.mask))


def _split_done(items: Sequence[Item], config: StyleConfig,
                overwrite: bool) -> tuple[list[Item], list[Item]]:
    """(items to run, items already done). Existing other outputs need ``overwrite``."""
    digest, todo, done, other = _Hashes(), [], [], []
    for item in items:
        if not item.output.exists():
            todo.append(item)
        elif _finished(item, config, digest):
            done.append(item)
        else:
            todo.append(item)
            other.append(item)
    if other and not overwrite:
        raise BatchError(f"{len(other)} output(s) exist with other parameters, e.g. "
                         f"{str(other[0].output)!r}; use --overwrite to replace them or "
                         "another -o folder")
    return todo, done


def _finished(item: Item, config: StyleConfig, digest: Callable[[Path], str | None]) -> bool:
    """Whether ``item``'s existing output is the finished run of ``config`` on its inputs."""
    expected = expected_key(item, config, digest)
    return expected is not None and run_key(_parameters(item.output), weights=False) == expected


def _parameters(path: Path) -> dict[str, Any] | None:
    try:
        return read_parameters(path)
    except ValueError:
        return None


# --- the driver ------------------------------------------------------------------------------


def run_batch(contents: Sequence[str | os.PathLike[str]] = (),
              styles: Sequence[str | os.PathLike[str]] = (),
              out_dir: str | os.PathLike[str] = ".", config: StyleConfig | None = None, *,
              name: str = DEFAULT_NAME, manifest: str | os.PathLike[str] | None = None,
              backend: str = "local", workers: int | None = None, address: str | None = None,
              cpus_per_task: float = 1, retries: int = 2, overwrite: bool = False,
              summary: str | os.PathLike[str] | None = None,
              progress: Callable[[ItemResult, Summary], None] | None = None) -> Summary:
    """Run a batch; see the module docstring. Ctrl-C stops it with finished items kept.

    Args:
        contents, styles: files, folders or globs; every content is run with every style.
        out_dir: where outputs (named by ``name``) and the summary go.
        config: options shared by every item.
        name: output name template with ``{content}``, ``{style}``, ``{index}``.
        manifest: CSV or TOML file of (content, style[, output]) rows instead of (or with)
            ``contents`` x ``styles``.
        backend: ``local`` or ``ray``.
        workers: local processes (default: one per core, or per GPU; 1 runs in this process).
        address: Ray cluster address (default: start a local one).
        cpus_per_task: Ray ``num_cpus`` (and torch threads) per task.
        retries: how often an item whose worker died is run again.
        overwrite: replace outputs made with other parameters (otherwise an error).
        summary: JSON summary path (default ``out_dir/batch-summary.json``).
        progress: called on the driver with each item's :class:`ItemResult` (skipped ones
            first) and the summary so far.

    Returns:
        The :class:`Summary` (``interrupted`` set after Ctrl-C), also written as JSON.

    Raises:
        BatchError, ConfigError, OutputError: before anything runs.
    """
    start = time.perf_counter()
    config = config or StyleConfig()
    if backend not in BACKENDS:
        raise BatchError(f"unknown backend {backend!r}: use {' or '.join(BACKENDS)}")
    items = plan(contents, styles, out_dir, name=name, manifest=manifest)
    _check_folders(items)
    todo, done = _split_done(items, config, overwrite)
    outcomes, count = _backend(todo, config, backend, workers, address, cpus_per_task, retries)
    path = Path(summary).expanduser() if summary else Path(out_dir).expanduser() / SUMMARY_NAME
    report = Summary([ItemResult(i, "skipped") for i in done], backend, count, total=len(items),
                     path=path)
    try:
        _drive(report, outcomes, {i.index: i for i in todo}, progress)
    finally:
        report.elapsed = time.perf_counter() - start
        _write_summary(report)
    return report


def _check_folders(items: Sequence[Item]) -> None:
    """Each output folder exists (created) and is writable: checked once per folder."""
    checked: set[Path] = set()
    for item in items:
        if item.output.parent not in checked:
            check_output_path(item.output, overwrite=True)
            checked.add(item.output.parent)


def _backend(todo: Sequence[Item], config: StyleConfig, backend: str, workers: int | None,
             address: str | None, cpus: float, retries: int) -> tuple[Iterator[Outcome], int | None]:
    """The outcome stream for ``todo`` and the number of workers behind it."""
    if backend == "ray":
        _require_ray()
        tasks = [Task(i.index, str(i.content), str(i.style), config, max(1, int(cpus)))
                 for i in todo]
        return (ray_tasks(tasks, address, cpus, retries) if tasks else iter(())), None
    count, devices = local_workers(config, len(todo))
    count = workers or count
    tasks = [Task(i.index, str(i.content), str(i.style), config) for i in todo]
    if count <= 1 or len(tasks) <= 1:
        return inline(tasks), 1
    return pool(tasks, count, devices, retries), count


def _require_ray() -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise BatchError("the ray backend needs Ray: pip install 'estilo[ray]'")


def _drive(report: Summary, outcomes: Iterator[Outcome], items: dict[int, Item],
           progress: Callable[[ItemResult, Summary], None] | None) -> None:
    """Report the skipped items, then write each outcome as it arrives; stop on Ctrl-C."""
    try:
        if progress is not None:
            for result in list(report.results):
                progress(result, report)
        for outcome in outcomes:
            result = _store(outcome, items[outcome.index])
            report.results.append(result)
            if progress is not None:
                progress(result, report)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()


def _store(outcome: Outcome, item: Item) -> ItemResult:
    """Save a worker's PNG (atomically, with its parameters) or record its error."""
    if outcome.png is None:
        log.info("item %d (%s x %s) failed: %s", item.index, item.content.name,
                 item.style.name, outcome.error)
        return ItemResult(item, "failed", outcome.error, outcome.seconds, outcome.worker)
    try:
        with Image.open(io.BytesIO(outcome.png)) as image:
            written = save_image(image, item.output, parameters={
                **(outcome.parameters or {}), "batch_worker": outcome.worker})
    except (OutputError, OSError) as e:
        return ItemResult(item, "failed", f"cannot save: {e}", outcome.seconds, outcome.worker)
    done = Item(item.index, item.content, item.style, written)
    return ItemResult(done, "done", None, outcome.seconds, outcome.worker)


def _write_summary(report: Summary) -> None:
    """Write the JSON summary atomically (a failure to write it is logged, not raised)."""
    assert report.path is not None
    try:
        report.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(report.path, json.dumps(report.to_dict(), indent=2) + "\n")
    except OSError as e:
        log.warning("could not write the batch summary %r: %s", str(report.path), e)
