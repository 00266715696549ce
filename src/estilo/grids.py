"""Parameter grids: run several settings side by side, then a contact sheet and a table.

A grid is a list of rows, each a set of :class:`StyleConfig` fields over shared options.
Rows come from a preset (``seed-table``: the seed report's section 4, shipped in
``estilo/data``), a TOML file of explicit rows, or the cartesian product of ``--param``
values. Every row runs with the same seed and iteration budget; its image goes to
``SHEET_rows/<index>-<slug>.png`` with its parameters embedded, and :mod:`estilo.sheet`
draws the sheet and writes ``SHEET.md`` and ``SHEET.csv``.

The pure parts (expansion, labels, slugs) come first, then :class:`Evaluator` (one fixed
measure of content and style loss for every row), then :class:`Grid` (the runner) and the
``estilo grid`` command.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import sheet
from .config import FIELDS, ConfigError, StyleConfig
from .devices import resolve_device
from .image import (
    check_output_path,
    read_parameters,
    resize,
    save_image,
    to_pil,
    to_tensor,
    working_size,
)
from .inputs import ImageInput, StyleInput
from .losses import Objective
from .pyramid import levels, style_side
from .transfer import Job, NonFiniteError, Step, Stylizer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

PRESETS = ("seed-table",)
NOTATIONS = ("names", "seed")
LIST_FIELDS = ("content_layers", "style_layers", "content_layer_weights", "style_layer_weights")
"""Fields whose own syntax uses commas: their alternatives in ``--param`` are split on ``;``."""
SEED_ORDER = ("style_layers", "content_layers", "style_weight", "content_weight", "init",
              "pooling", "size")
SEED_NAMES = {"style_layers": "Ts", "content_layers": "Tc", "style_weight": "Ws",
              "content_weight": "Wc"}
_DEFAULTS = StyleConfig.__dataclass_fields__


# --------------------------------------------------------------------------- grid specs

@dataclass(frozen=True)
class GridSpec:
    """Rows of a grid (each a dict of StyleConfig fields), shared options and label style."""

    rows: tuple[dict[str, Any], ...]
    base: dict[str, Any] = field(default_factory=dict)
    notation: str = "names"


def convert(name: str, value: Any) -> Any:
    """A StyleConfig value from text (as the CLI parses it) or from a TOML/Python value.

    Raises:
        ConfigError: unknown field, or a value the field's converter rejects.
    """
    check_names([name])
    default = _DEFAULTS[name].default
    if isinstance(value, str):
        return _from_text(name, value, default)
    if name.endswith("_layers") and isinstance(value, (int, list, tuple)):
        return tuple(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    if isinstance(value, list):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _from_text(name: str, text: str, default: Any) -> Any:
    from .cli import CONVERTERS

    if default is None and text.strip().lower() in ("none", "default"):
        return None
    if isinstance(default, bool):
        return _boolean(name, text)
    try:
        return CONVERTERS.get(name, type(default))(text.strip())
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise ConfigError(f"bad value {text!r} for {name}: {e}") from None


def _boolean(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} takes true or false, not {text!r}")


def check_names(names: Iterable[str]) -> None:
    """Raise :class:`ConfigError` (listing the valid names) for a name that is no option."""
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; valid names: {', '.join(FIELDS)}")


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"style_weight=1e3,1e5"`` -> ``("style_weight", [1000.0, 100000.0])``.

    Alternatives are separated by commas, or by ``;`` for the layer options (whose values
    contain commas): ``style_layers=1,3,5;2,4,8``. Dashes in the name may be used.
    """
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not values.strip():
        raise ConfigError(f"--param takes NAME=V1,V2,..., not {text!r}")
    check_names([name])
    parts = values.split(";" if name in LIST_FIELDS else ",")
    return name, [convert(name, p) for p in parts if p.strip()]


def expand(params: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of parameter values, the last name varying fastest."""
    names = list(params)
    return [dict(zip(names, combo)) for combo in itertools.product(*(params[n] for n in names))]


def load_spec(path: str | Path) -> GridSpec:
    """A grid from a TOML file: ``notation``, an optional ``[base]`` and ``[[rows]]`` tables.

    Raises:
        ConfigError: unreadable file, bad TOML, no rows, or an unknown key.
    """
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read grid file {str(path)!r}: {e.strerror}") from None
    return parse_spec(text, str(path))


def parse_spec(text: str, name: str = "<grid>") -> GridSpec:
    """A grid from TOML text (see :func:`load_spec`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"grid file {name}: {e}") from None
    extra = set(data) - {"notation", "base", "rows", "title", "source"}
    if extra:
        raise ConfigError(f"grid file {name}: unknown key {min(extra)!r}; use notation, "
                          "base and [[rows]]")
    rows = data.get("rows") or []
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"grid file {name}: no [[rows]] tables")
    notation = data.get("notation", "names")
    if notation not in NOTATIONS:
        raise ConfigError(f"grid file {name}: notation must be one of {', '.join(NOTATIONS)}")
    return GridSpec(tuple(_converted(r) for r in rows), _converted(data.get("base", {})), notation)


def _converted(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: convert(k, v) for k, v in table.items()}


def preset(name: str) -> GridSpec:
    """A grid shipped with estilo (``seed-table``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    text = resources.files("estilo").joinpath(f"data/{name.replace('-', '_')}.toml")
    return parse_spec(text.read_text(encoding="utf-8"), f"preset {name}")


def configs(spec: GridSpec, overrides: Mapping[str, Any] | None = None) -> list[StyleConfig]:
    """One config per row: defaults < ``spec.base`` < the row < ``overrides`` (all rows)."""
    overrides = dict(overrides or {})
    clash = sorted({k for row in spec.rows for k in row} & set(overrides))
    if clash:
        log.warning("%s set for all rows: the grid's own values of it are replaced",
                    ", ".join(clash))
    return [StyleConfig(**{**spec.base, **row, **overrides}) for row in spec.rows]


# --------------------------------------------------------------------------- labels

def differing(configs: Sequence[StyleConfig]) -> list[str]:
    """Field names whose values are not the same in every config (in field order)."""
    dicts = [c.to_dict() for c in configs]
    return [n for n in FIELDS if any(d[n] != dicts[0][n] for d in dicts[1:])]


def number(value: float) -> str:
    """Short text for a number: ``500``, ``0.7``, ``1e5``, ``1e-4`` (exact, round-trips)."""
    if isinstance(value, int) and not isinstance(value, float):
        value = float(value)
    plain = np.format_float_positional(value, trim="-")
    short = np.format_float_scientific(value, trim="-", exp_digits=1).replace("+", "")
    return short if len(short) <= len(plain) - 2 else plain


def text(name: str, value: Any) -> str:
    """A value as the CLI would take it: ``1e5``, ``conv1_1,conv2_1``, ``40x32``, ``avg``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, (tuple, list)):
        if name == "size" and len(value) == 2:
            return f"{value[0]}x{value[1]}"
        return ",".join(text(name, v) for v in value)
    return str(value)


def seed_layers(names: Sequence[str]) -> str:
    """Layer names in the seed's 1-based conv indices when they are all conv layers."""
    from .vgg import CONV_NAMES

    if all(n in CONV_NAMES for n in names):
        return ",".join(str(CONV_NAMES.index(n) + 1) for n in names)
    return ",".join(names)


def seed_term(name: str, config: StyleConfig) -> str:
    """One field of a label in the seed's notation (``Ts=2,4,8``, ``Ws=1e5``, ``N``, ``avg``)."""
    value = getattr(config, name)
    if name in ("style_layers", "content_layers"):
        return f"{SEED_NAMES[name]}={seed_layers(value)}"
    if name in SEED_NAMES:
        return f"{SEED_NAMES[name]}={number(value)}"
    if name == "init":
        return {"content+noise": "N", "noise": ""}.get(value, f"init={value}")
    if name == "pooling":
        return "avg" if value == "avg" else ""
    if name == "size":
        return text(name, value)
    return f"{name}={text(name, value)}"


def label(config: StyleConfig, names: Sequence[str], notation: str = "names") -> str:
    """The parameters ``names`` of ``config`` as a short caption.

    ``notation="seed"`` writes the seed's table notation in its column order
    (``Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512``); otherwise ``name=value`` pairs.
    """
    if notation == "seed":
        ordered = [n for n in SEED_ORDER if n in names] + [n for n in names if n not in SEED_ORDER]
        return " ".join(t for t in (seed_term(n, config) for n in ordered) if t)
    return " ".join(f"{n}={text(n, getattr(config, n))}" for n in names)


def slug(caption: str, limit: int = 60) -> str:
    """A file-name-safe version of a label (``ts-2-4-8-ws-1e5-n-avg-512``)."""
    cleaned = re.sub(r"[^a-z0-9._]+", "-", caption.lower()).strip("-._")
    return cleaned[:limit].rstrip("-.") or "row"


# --------------------------------------------------------------------------- evaluation

class Evaluator:
    """One fixed measure of content and style loss, the same for every row.

    The network and layers are StyleConfig's defaults (VGG19 with ``eval_weights``, avg
    pooling, style conv1_1..conv5_1, content conv4_2, RMS-normalised features, Gram / CHW),
    unweighted, at one size (long side ``size``, never above the content's). A row's own
    objective differs by row, so its final loss cannot be compared across rows; this can.
    """

    def __init__(self, job: Job, *, size: int, weights: str, stylizer: Stylizer) -> None:
        self.config = StyleConfig(weights=weights, device=job.config.device, seed=job.config.seed)
        self.device = resolve_device(self.config.device)
        from .weights import load_weights

        loaded = load_weights(weights, seed=self.config.seed)
        self.net = stylizer.extractor(loaded, self.config, self.device)
        inputs = job.inputs
        self.size = working_size(inputs.content.image.size, size)
        with torch.no_grad():
            content = self.net(self._tensor(inputs.content.image))
            styles = [self.net(self._tensor(resize(s.image, style_side(
                s.image.size, self.size, self.size, None)))) for s in inputs.styles]
        ones = dict.fromkeys
        self.objective = Objective.from_features(
            content, styles, content_weights=ones(self.config.content_layers, 1.0),
            style_weights=ones(self.config.style_layers, 1.0))

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        return to_tensor(resize(image, self.size)).to(self.device)

    def __call__(self, image: Image.Image) -> dict[str, float]:
        """``{"content": ..., "style": ...}`` for a row's final image."""
        x = self._tensor(image)
        with torch.no_grad():
            terms = self.objective(self.net(x), x)
        return {"content": float(terms["content"]), "style": float(terms["style"])}


# --------------------------------------------------------------------------- the runner

@dataclass(frozen=True)
class Row:
    """One row of a grid: its 1-based index, config, caption and image path."""

    index: int
    config: StyleConfig
    label: str
    path: Path


@dataclass
class RowResult:
    """A finished row: ``status`` is ``done``, ``resumed`` (image reused) or ``diverged``."""

    row: Row
    status: str
    image: Image.Image
    iterations: int
    wall_s: float
    losses: dict[str, float]


@dataclass(frozen=True)
class GridStep:
    """Progress: step ``step`` of row ``row`` (``position`` of ``pending`` rows to run)."""

    row: Row
    position: int
    pending: int
    step: Step


@dataclass
class GridResult:
    """What :func:`grid` wrote: the sheet, the tables and every row's result."""

    sheet: Path
    markdown: Path
    csv: Path
    rows: list[RowResult]
    interrupted: bool = False


# --------------------------------------------------------------------------- tables

LOSS_COLUMNS = ("status", "iterations", "content_loss", "style_loss", "wall_s")


def csv_table(results: Sequence[RowResult], shown: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``SHEET.csv``: index, label, file, the varied options (CLI text),
    status, iterations, the fixed-measure content and style losses, and wall seconds."""
    header = ["index", "label", "file", *shown, *LOSS_COLUMNS]
    rows = [[r.row.index, r.row.label, f"{r.row.path.parent.name}/{r.row.path.name}",
             *(text(n, getattr(r.row.config, n)) for n in shown), r.status, r.iterations,
             repr(r.losses["content"]), repr(r.losses["style"]), f"{r.wall_s:.3f}"]
            for r in results]
    return header, rows


def seed_cell(name: str, config: StyleConfig) -> tuple[str, str]:
    """(column, cell) of the seed's table for a field: ``("N", "x")``, ``("Ws", "1e5")``."""
    value = getattr(config, name)
    if name == "init":
        return "N", {"content+noise": "x", "noise": ""}.get(value, value)
    if name == "pooling":
        return "avg", "x" if value == "avg" else ""
    if name in ("style_layers", "content_layers"):
        return SEED_NAMES[name], seed_layers(value)
    return SEED_NAMES.get(name, name), text(name, value)


def markdown_table(results: Sequence[RowResult], shown: Sequence[str], notation: str,
                   base: Path) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``SHEET.md`` (the seed's columns for ``notation="seed"``)."""
    ordered = ([n for n in SEED_ORDER if n in shown] + [n for n in shown if n not in SEED_ORDER]
               if notation == "seed" else list(shown))
    cell = seed_cell if notation == "seed" else (lambda n, c: (n, text(n, getattr(c, n))))
    names = [cell(n, results[0].row.config)[0] for n in ordered] if results else ordered
    header = ["#", *names, "content loss", "style loss", "wall s", "image"]
    rows = [[r.row.index, *(cell(n, r.row.config)[1] for n in ordered),
             f"{r.losses['content']:.4g}", f"{r.losses['style']:.4g}", f"{r.wall_s:.1f}",
             f"[{r.row.path.name}]({r.row.path.relative_to(base).as_posix()})"
             + ("" if r.status == "done" else f" ({r.status})")]
            for r in results]
    return header, rows


class Grid:
    """A prepared grid: checked inputs, rows and output paths. Iterate :meth:`steps`."""

    def __init__(self, content: ImageInput, style: StyleInput, spec: GridSpec, output: str | Path,
                 *, overrides: Mapping[str, Any] | None = None, resume: bool = False,
                 overwrite: bool = False, tile_size: int = sheet.TILE, columns: int = 0,
                 eval_size: int | None = None, eval_weights: str | None = None,
                 stylizer: Stylizer | None = None) -> None:
        styles = [style] if isinstance(style, (str, os.PathLike, Image.Image)) else list(style)
        paths = [p for p in (content, *styles) if isinstance(p, (str, os.PathLike))]
        self.output = check_output_path(output, overwrite=overwrite or resume, inputs=paths)
        self.stylizer = stylizer or Stylizer()
        rows = configs(spec, overrides)
        shown = differing(rows)
        folder = self.output.with_name(self.output.stem + "_rows")
        width = len(str(len(rows)))
        self.rows = [Row(i, c, label(c, shown, spec.notation), folder /
                         f"{i:0{width}d}-{slug(label(c, shown, spec.notation))}.png")
                     for i, c in enumerate(rows, start=1)]
        self.jobs = [self.stylizer.job(content, style, r.config) for r in self.rows]
        for row in self.rows:
            check_output_path(row.path, overwrite=overwrite or resume, inputs=paths)
        self.spec, self.shown, self.resume = spec, shown, resume
        self.tile_size, self.columns = tile_size, columns
        self.eval_size = eval_size or max(max(j.inputs.size) for j in self.jobs)
        self.eval_weights = eval_weights or StyleConfig(**{**spec.base, **(overrides or {})}).weights
        self.results: dict[int, RowResult] = {}
        self._done = self._reusable() if resume else {}

    def pending(self) -> list[Row]:
        """Rows that will run (all but those ``resume`` reuses)."""
        return [r for r in self.rows if r.index not in self._done]

    def total_iterations(self) -> int:
        """Iterations over all pending rows (for a progress bar)."""
        return sum(sum(level.iterations for level in _plan(self.jobs[r.index - 1]))
                   for r in self.pending())

    def steps(self) -> Generator[GridStep, None, None]:
        """Run every pending row, yielding a :class:`GridStep` after each iteration.

        Breaking out, Ctrl-C or an error keep the finished rows: the sheet and the tables
        are written with them before the generator ends (and an exception goes on).
        """
        completed = False
        try:
            evaluator = self._evaluator()
            for index, path in self._done.items():
                self.results[index] = self._resumed(self.rows[index - 1], path, evaluator)
            pending = self.pending()
            for position, row in enumerate(pending, start=1):
                yield from self._run_row(row, position, len(pending), evaluator)
            completed = True
        finally:
            if self.results or completed:
                self.write()

    def run(self) -> GridResult:
        """Run to the end (see :meth:`steps`) and return the :class:`GridResult`."""
        for _ in self.steps():
            pass
        return self.result()

    def result(self, *, interrupted: bool = False) -> GridResult:
        """The files and the rows finished so far."""
        return GridResult(self.output, self.output.with_suffix(".md"),
                          self.output.with_suffix(".csv"),
                          [self.results[i] for i in sorted(self.results)], interrupted)

    def write(self) -> None:
        """Write the sheet, ``.md`` and ``.csv`` for the rows finished so far."""
        done = [self.results[i] for i in sorted(self.results)]
        job = self.jobs[0]
        inputs = [("content: " + job.inputs.content.name, job.inputs.content.image)]
        inputs += [("style: " + s.name, s.image) for s in job.inputs.styles]
        tiles = inputs + [(f"#{r.row.index} {r.row.label}".strip(), r.image) for r in done]
        image = sheet.contact_sheet(tiles, tile=self.tile_size, columns=self.columns)
        save_image(image, self.output, parameters=self._sheet_parameters(done))
        header, cells = csv_table(done, self.shown)
        sheet.write_csv(self.output.with_suffix(".csv"), header, cells)
        header, cells = markdown_table(done, self.shown, self.spec.notation, self.output.parent)
        sheet.write_markdown(self.output.with_suffix(".md"), self.output.stem, self._header(job),
                             header, cells)

    # ----------------------------------------------------------------- helpers

    def _evaluator(self) -> Evaluator:
        return Evaluator(self.jobs[0], size=self.eval_size, weights=self.eval_weights,
                         stylizer=self.stylizer)

    def _run_row(self, row: Row, position: int, pending: int,
                 evaluator: Evaluator) -> Generator[GridStep, None, None]:
        job, start = self.jobs[row.index - 1], time.perf_counter()
        last: Step | None = None
        status = "done"
        try:
            for last in job.steps():
                yield GridStep(row, position, pending, last)
            image = to_pil(last.image) if last else to_pil(to_tensor(job.inputs.content.image))
        except NonFiniteError as e:
            log.warning("row %d (%s) diverged: %s", row.index, row.label, e)
            status, image = "diverged", to_pil(e.image)
        wall = time.perf_counter() - start
        row.path.parent.mkdir(parents=True, exist_ok=True)
        save_image(image, row.path, parameters=job.parameters(last, interrupted=False, grid={
            "index": row.index, "label": row.label, "status": status, "wall_s": round(wall, 3)}))
        self.results[row.index] = RowResult(row, status, image, last.iteration if last else 0,
                                            wall, evaluator(image))

    def _reusable(self) -> dict[int, Path]:
        """Rows whose finished image (here or under another row's name) has their parameters."""
        found: dict[tuple[str, ...], Path] = {}
        folder = self.rows[0].path.parent
        for path in sorted(folder.glob("*.png")) if folder.is_dir() else []:
            key = _key(read_parameters(path))
            if key is not None:
                found.setdefault(key, path)
        done: dict[int, Path] = {}
        for row, job in zip(self.rows, self.jobs):
            key = _key(job.parameters(None))
            own = _key(read_parameters(row.path)) if row.path.exists() else None
            match = row.path if own is not None and own == key else found.get(key)  # type: ignore[arg-type]
            if match is not None:
                done[row.index] = match
        return done

    def _resumed(self, row: Row, path: Path, evaluator: Evaluator) -> RowResult:
        if path != row.path:
            shutil.copyfile(path, row.path)
        with Image.open(row.path) as im:
            image = im.convert("RGB")
        params = read_parameters(row.path) or {}
        wall = float((params.get("grid") or {}).get("wall_s", params.get("elapsed_s", 0.0)))
        return RowResult(row, "resumed", image, int(params.get("iterations_done", 0)), wall,
                         evaluator(image))

    def _sheet_parameters(self, done: Sequence[RowResult]) -> dict[str, Any]:
        first = self.jobs[0].parameters(None)
        return {"format": "estilo-grid/1", "inputs": first["inputs"], "shown": self.shown,
                "notation": self.spec.notation, "evaluation": self._evaluation(),
                "rows": [{"index": r.row.index, "label": r.row.label, "file": r.row.path.name,
                          "status": r.status, "config": r.row.config.to_dict()} for r in done],
                "versions": first["versions"]}

    def _evaluation(self) -> dict[str, Any]:
        return {"weights": self.eval_weights, "long_side": self.eval_size, "pooling": "avg",
                "style_layers": list(StyleConfig().style_layers),
                "content_layers": list(StyleConfig().content_layers)}

    def _header(self, job: Job) -> list[str]:
        config, ev = self.rows[0].config, self._evaluation()
        shared = ", ".join(f"{n}={text(n, getattr(config, n))}" for n in FIELDS
                           if n not in self.shown and n != "device")
        styles = ", ".join(f"`{s.name}`" for s in job.inputs.styles)
        measure = (f"{ev['weights']} VGG19, {ev['pooling']} pooling, style "
                   f"{','.join(ev['style_layers'])}, content {','.join(ev['content_layers'])}, "
                   f"RMS-normalised features, unweighted, long side {ev['long_side']} px")
        return [f"Content `{job.inputs.content.name}`, style {styles}.",
                f"Shared options: {shared}.",
                (f"Losses: one fixed measure for every row ({measure}), not each row's own "
                 "objective. Wall time: seconds per row on this machine.")]


def _plan(job: Job) -> list[Any]:
    c = job.config
    return levels(job.inputs.size, iterations=c.iterations, scales=c.scales,
                  start_size=c.start_size, scale_iterations=c.scale_iterations)


def _key(params: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """What makes two row images the same run: options (but the device), inputs, weights."""
    if not params or params.get("interrupted") or params.get("partial"):
        return None
    if params.get("iterations_done") != params.get("iterations_total"):
        return None
    config = {k: v for k, v in (params.get("config") or {}).items() if k != "device"}
    return (json.dumps(config, sort_keys=True), json.dumps(params.get("inputs"), sort_keys=True),
            str((params.get("weights") or {}).get("sha256")))


# --------------------------------------------------------------------------- the API

def spec_from(*, preset_name: str | None = None, grid_file: str | Path | None = None,
              params: Mapping[str, Sequence[Any]] | None = None,
              rows: Sequence[Mapping[str, Any]] | None = None) -> GridSpec:
    """The grid named by exactly one of a preset, a TOML file, parameter lists or rows."""
    given = [x is not None for x in (preset_name, grid_file, params, rows)]
    if sum(given) != 1:
        raise ConfigError("give exactly one of a preset, a grid file, params or rows")
    if preset_name is not None:
        return preset(preset_name)
    if grid_file is not None:
        return load_spec(grid_file)
    if params is not None:
        check_names(params)
        converted = {n: [convert(n, v) for v in values] for n, values in params.items()}
        return GridSpec(tuple(expand(converted)))
    assert rows is not None
    return GridSpec(tuple(_converted(r) for r in rows))


def grid(content: ImageInput, style: StyleInput, output: str | Path, *,
         preset: str | None = None, grid_file: str | Path | None = None,
         params: Mapping[str, Sequence[Any]] | None = None,
         rows: Sequence[Mapping[str, Any]] | None = None, resume: bool = False,
         overwrite: bool = False, tile_size: int = sheet.TILE, columns: int = 0,
         eval_size: int | None = None, eval_weights: str | None = None,
         **options: Any) -> GridResult:
    """Run a parameter grid and write a contact sheet, ``.md`` and ``.csv`` tables.

    Args:
        content, style: the inputs (paths or PIL images), as for :func:`estilo.stylize`.
        output: the sheet's path; rows go to ``<stem>_rows/``, tables beside it.
        preset / grid_file / params / rows: exactly one: ``"seed-table"``, a TOML file,
            ``{"style_weight": [1e3, 1e5], "pooling": ["max", "avg"]}`` (cartesian product)
            or a list of dicts of options.
        resume: reuse row images that already exist with the same parameters and inputs.
        overwrite: replace an existing sheet and row images.
        tile_size: display size of every tile (long side, px).
        eval_size / eval_weights: long side and weights of the fixed loss measure
            (default: the largest row size; the shared ``weights`` option).
        options: StyleConfig fields applied to every row (they replace the rows' values).

    Returns:
        :class:`GridResult`. On Ctrl-C the finished rows are written, then the
        ``KeyboardInterrupt`` goes on.
    """
    spec = spec_from(preset_name=preset, grid_file=grid_file, params=params, rows=rows)
    return Grid(content, style, spec, output, overrides=_converted(options), resume=resume,
                overwrite=overwrite, tile_size=tile_size, columns=columns, eval_size=eval_size,
                eval_weights=eval_weights).run()


# --------------------------------------------------------------------------- the command

def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo grid CONTENT STYLE -o SHEET.png``."""
    from .cli import _Parser, add_config_options

    parser = _Parser(prog="estilo grid", description="Run several settings side by side: a "
                     "contact sheet, every row's image and a table of losses and times.")
    parser.add_argument("content", help="content image (the photo)")
    parser.add_argument("style", nargs="+", help="style image(s) (the painting)")
    parser.add_argument("-o", "--output", default="grid.png", help="the sheet (default "
                        "%(default)s); rows go to SHEET_rows/, tables to SHEET.md and SHEET.csv")
    rows = parser.add_mutually_exclusive_group(required=True)
    rows.add_argument("--preset", choices=PRESETS, help="a shipped grid: seed-table = the seed "
                      "report's nine rows")
    rows.add_argument("--grid", metavar="FILE.toml", help="explicit rows ([[rows]] tables)")
    rows.add_argument("--param", action="append", metavar="NAME=V1,V2",
                      help="vary an option (repeat: cartesian product); ';' separates layer lists")
    parser.add_argument("--resume", action="store_true", help="skip rows whose image exists "
                        "with the same parameters and inputs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing sheet")
    parser.add_argument("--tile-size", type=int, default=sheet.TILE, metavar="PX",
                        help="display size of each tile (default %(default)s)")
    parser.add_argument("--columns", type=int, default=0, help="tiles per line (default: auto)")
    parser.add_argument("--eval-size", type=int, default=None, metavar="PX", help="long side of "
                        "the fixed loss measure (default: the largest row size)")
    parser.add_argument("--eval-weights", default=None, help="weights of the fixed loss measure "
                        "(default: --weights)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    add_config_options(parser)
    return parser


def explicit_options(argv: Sequence[str]) -> dict[str, Any]:
    """The StyleConfig options given on the command line (not their defaults)."""
    probe = build_parser()
    for action in probe._actions:
        if action.dest in FIELDS:
            action.default = argparse.SUPPRESS
    return {k: v for k, v in vars(probe.parse_args(list(argv))).items() if k in FIELDS}


def main(argv: Sequence[str] | None = None) -> int:
    """``estilo grid``: returns the exit code (130/143 after Ctrl-C/SIGTERM, sheet written)."""
    from .cli import guarded

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="estilo: %(message)s")
    return guarded(lambda: _command(args, explicit_options(argv)), debug=args.debug)


def _command(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    params = None
    if args.param:
        parsed = [parse_param(p) for p in args.param]
        if len({n for n, _ in parsed}) != len(parsed):
            raise ConfigError("--param: each option may be varied once")
        params = dict(parsed)
    spec = spec_from(preset_name=args.preset, grid_file=args.grid, params=params)
    runner = Grid(args.content, args.style, spec, args.output, overrides=overrides,
                  resume=args.resume, overwrite=args.overwrite, tile_size=args.tile_size,
                  columns=args.columns, eval_size=args.eval_size, eval_weights=args.eval_weights)
    status = _drive(runner, quiet=args.quiet)
    done = len(runner.results)
    if done:
        print(f"estilo: wrote {runner.output} and its .md/.csv ({done}/{len(runner.rows)} rows, "
              f"{len(runner.rows) - len(runner.pending())} reused)", file=sys.stderr)
    return status


def _drive(runner: Grid, *, quiet: bool) -> int:
    """Drain ``runner.steps()`` under one tqdm bar; the exit status."""
    from tqdm import tqdm

    from .cli import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, terminate_as_exception

    bar = tqdm(total=runner.total_iterations(), disable=quiet, unit="it", dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 10.0)
    steps = runner.steps()
    try:
        with terminate_as_exception():
            for item in steps:
                bar.set_description(f"row {item.position}/{item.pending} #{item.row.index}",
                                    refresh=False)
                bar.set_postfix(loss=f"{item.step.loss:.4g}", refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        return _stopped(steps, bar, EXIT_INTERRUPTED)
    except Terminated:
        return _stopped(steps, bar, EXIT_TERMINATED)
    finally:
        bar.close()
    return 0


def _stopped(steps: Generator[GridStep, None, None], bar: Any, status: int) -> int:
    steps.close()  # writes the sheet with the finished rows
    bar.close()
    print("estilo: interrupted; the sheet keeps the rows finished so far", file=sys.stderr)
    return status

