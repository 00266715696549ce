"""Batch runs: every content image times every style, resumable, on a process pool or Ray.

A batch is planned on the driver (inputs expanded, output names made from a template,
collisions refused up front), then each item runs on a worker that keeps one
:class:`~estilo.transfer.Stylizer` (so the network is loaded once per worker process) and
returns the PNG bytes and the parameters to embed. The driver writes every output
atomically with :func:`~estilo.image.save_image`, so an interrupted batch leaves only
finished images behind.

Resume: an output that already exists is skipped when its embedded parameters name the
same options (the device aside) and the same input hashes; anything else is run again.
A failed item (an unreadable image, a diverged run, a worker that died more than
``retries`` times) is recorded with a one-line error and the batch goes on.

Backends (:mod:`estilo.workers`): ``local`` runs in this process (one worker) or on a
``spawn`` process pool (one worker per core, or per GPU); ``ray`` submits one Ray task per
item to a cluster (``address``) or to a local one it starts, with ``num_cpus``/``num_gpus``
declared and ``max_retries`` for workers that die. Ray is imported only by that backend.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from .config import INITS, ConfigError, StyleConfig
from .files import sha256, write_atomic
from .image import image_files
from .output import OutputError, check_output_path, read_parameters, save_image
from .workers import Outcome, Task, inline, local_workers, pool, ray_tasks

log = logging.getLogger(__name__)

DEFAULT_NAME = "{content}_{style}.png"
NAME_FIELDS = ("content", "style", "index")
SUMMARY_NAME = "batch-summary.json"
BACKENDS = ("local", "ray")
Status = Literal["done", "skipped", "failed"]


class BatchError(ConfigError):
    """A batch cannot start: bad inputs, manifest, name template or colliding outputs."""


@dataclass(frozen=True)
class Item:
    """One output to make: ``content`` painted in the style of ``style``."""

    index: int       # 1-based position in the batch
    content: Path
    style: Path
    output: Path


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


# --- planning ------------------------------------------------------------------------------


def expand_inputs(patterns: Iterable[str | os.PathLike[str]], what: str = "input") -> list[Path]:
    """Files, folders (their images, not recursive) and globs, in order, without duplicates.

    Raises:
        BatchError: a path that does not exist or a glob or folder without images.
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        text = os.path.expanduser(os.fspath(pattern))
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        paths = [p for m in matches for p in _images_at(Path(m), what)]
        if not paths:
            raise BatchError(f"no {what} images match {text!r}")
        found.update(dict.fromkeys(paths))
    return list(found)


def _images_at(path: Path, what: str) -> list[Path]:
    if path.is_dir():
        return image_files(path)
    if not path.exists():
        raise BatchError(f"{what} {str(path)!r} does not exist; check the path")
    return [path]


def check_name(template: str) -> None:
    """Check an output name template: known placeholders only, a ``.png`` name.

    Raises:
        BatchError: unknown or positional placeholder, bad syntax, or not ``.png``.
    """
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise BatchError(f"bad --name template {template!r}: {e}") from None
    for name in fields:
        if name not in NAME_FIELDS:
            raise BatchError(f"unknown placeholder {{{name}}} in --name {template!r}; use "
                             + ", ".join(f"{{{f}}}" for f in NAME_FIELDS))
    if not template.lower().endswith(".png"):
        raise BatchError(f"--name {template!r} must end in .png (resume reads the parameters "
                         "embedded in PNG outputs)")


def read_manifest(path: str | os.PathLike[str]) -> list[tuple[Path, Path, Path | None]]:
    """``(content, style, output or None)`` rows of a CSV or TOML manifest.

    CSV: a header with ``content``, ``style`` and optionally ``output`` columns. TOML:
    ``[[item]]`` tables with the same keys. Relative paths are relative to the manifest.

    Raises:
        BatchError: missing, unreadable or malformed manifest.
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BatchError(f"cannot read manifest {str(file)!r}: {e}") from None
    rows = _toml_rows(text, file) if file.suffix.lower() == ".toml" else _csv_rows(text, file)
    if not rows:
        raise BatchError(f"manifest {str(file)!r} lists no items")
    base = file.parent
    return [(base / Path(c).expanduser(), base / Path(s).expanduser(),
             Path(o) if o else None) for c, s, o in rows]


def _csv_rows(text: str, file: Path) -> list[tuple[str, str, str | None]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"content", "style"} <= set(reader.fieldnames):
        raise BatchError(f"manifest {str(file)!r} needs a header line with content,style "
                         "(and optionally output) columns")
    rows = []
    for line, row in enumerate(reader, start=2):
        if not row.get("content") or not row.get("style"):
            raise BatchError(f"manifest {str(file)!r} line {line}: content and style are required")
        rows.append((row["content"], row["style"], row.get("output") or None))
    return rows


def _toml_rows(text: str, file: Path) -> list[tuple[str, str, str | None]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        items = tomllib.loads(text).get("item", [])
    except tomllib.TOMLDecodeError as e:
        raise BatchError(f"manifest {str(file)!r} is not valid TOML: {e}") from None
    rows = []
    for number, entry in enumerate(items, start=1):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str)
                                                  for k in ("content", "style")):
            raise BatchError(f"manifest {str(file)!r} [[item]] {number}: content and style "
                             "(strings) are required")
        rows.append((entry["content"], entry["style"], entry.get("output")))
    return rows


def plan(contents: Sequence[str | os.PathLike[str]] = (),
         styles: Sequence[str | os.PathLike[str]] = (), out_dir: str | os.PathLike[str] = ".",
         *, name: str = DEFAULT_NAME,
         manifest: str | os.PathLike[str] | None = None) -> list[Item]:
    """The items of a batch: every content x every style, or the manifest's rows.

    Raises:
        BatchError: bad inputs, manifest or template, or two items with one output.
    """
    check_name(name)
    out = Path(out_dir).expanduser()
    if manifest is not None:
        rows = read_manifest(manifest)
        rows += [(c, s, None) for c, s in _pairs(contents, styles)] if contents else []
    else:
        if not contents or not styles:
            raise BatchError("give content images and --style images (or --manifest)")
        rows = [(c, s, None) for c, s in _pairs(contents, styles)]
    items = [Item(i, c, s, out / (o if o else _fill(name, c, s, i)))
             for i, (c, s, o) in enumerate(rows, start=1)]
    for item in items:
        if item.output.suffix.lower() != ".png":
            raise BatchError(f"manifest output {str(item.output)!r} must end in .png (resume "
                             "reads the parameters embedded in PNG outputs)")
    _check_collisions(items)
    return items


def _pairs(contents: Sequence[str | os.PathLike[str]],
           styles: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    if not styles:
        raise BatchError("give --style images for the content images")
    return [(c, s) for c in expand_inputs(contents, "content")
            for s in expand_inputs(styles, "style")]


def _fill(template: str, content: Path, style: Path, index: int) -> str:
    return template.format(content=content.stem, style=style.stem, index=index)


def _check_collisions(items: Sequence[Item]) -> None:
    seen: dict[Path, Item] = {}
    inputs = {p.resolve() for item in items for p in (item.content, item.style)}
    for item in items:
        key = item.output.resolve()
        if key in inputs:
            raise BatchError(f"output {str(item.output)!r} would replace an input; choose "
                             "another -o folder or --name")
        if key in seen:
            first = seen[key]
            raise BatchError(
                f"items {first.index} ({first.content.name} x {first.style.name}) and "
                f"{item.index} ({item.content.name} x {item.style.name}) would both write "
                f"{str(item.output)!r}; add {{index}} to --name or rename the inputs")
        seen[key] = item


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


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    """JSON round trip without the device (which does not change what is computed)."""
    data = json.loads(json.dumps(config, sort_keys=True, default=str))
    data.pop("device", None)
    return data


def same_run(params: dict[str, Any] | None, item: Item, config: StyleConfig,
             digest: Callable[[Path], str | None]) -> bool:
    """True when an output's embedded ``params`` are those ``item`` would get with ``config``."""
    if not params or params.get("interrupted") or params.get("partial"):
        return False
    inputs = params.get("inputs") or {}
    styles = [s.get("sha256") for s in inputs.get("styles") or []]
    init = (inputs.get("init") or {}).get("sha256")
    expected_init = None if config.init in INITS else digest(Path(config.init).expanduser())
    content = digest(item.content)
    return (content is not None and (inputs.get("content") or {}).get("sha256") == content
            and styles == [digest(item.style)] and init == expected_init
            and _normalised(params.get("config") or {}) == _normalised(config.to_dict()))


def _split_done(items: Sequence[Item], config: StyleConfig,
                overwrite: bool) -> tuple[list[Item], list[Item]]:
    """(items to run, items already done). Existing other outputs need ``overwrite``."""
    digest, todo, done, other = _Hashes(), [], [], []
    for item in items:
        if not item.output.exists():
            todo.append(item)
        elif same_run(_parameters(item.output), item, config, digest):
            done.append(item)
        else:
            todo.append(item)
            other.append(item)
    if other and not overwrite:
        raise BatchError(f"{len(other)} output(s) exist with other parameters, e.g. "
                         f"{str(other[0].output)!r}; use --overwrite to replace them or "
                         "another -o folder")
    return todo, done


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


__all__ = [
    "DEFAULT_NAME",
    "BatchError",
    "Item",
    "ItemResult",
    "Summary",
    "check_name",
    "expand_inputs",
    "plan",
    "read_manifest",
    "run_batch",
    "same_run",
]
