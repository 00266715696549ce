"""Parameter grids, the pure part: rows of options, labels and result tables.

A grid is a list of rows, each a set of :class:`StyleConfig` fields over shared options,
and optionally its own style image (``style``: a path, or the number of one of the styles the
grid is run with). Rows come from a preset (``report-table``: the results table of the 2018 report estilo
started from, shipped in ``estilo/data``), a TOML file of explicit rows, or the cartesian
product of ``--param`` values. :mod:`estilo.grids.runner` runs them; :mod:`estilo.grids.sheet` draws the contact
sheet.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import FIELDS, ConfigError, StyleConfig
from ..files import parse_toml
from ..options import LIST_OPTIONS, check_names, number, text, value, values
from ..transfer import Step

PRESETS = ("report-table",)
NOTATIONS = ("names", "conv-index")
OLD_NAMES = {"seed-table": "report-table", "seed": "conv-index"}
"""Earlier names of a preset and a notation, still accepted."""
TABLE_ORDER = ("style_layers", "content_layers", "style_weight", "content_weight", "init",
              "pooling", "size")
TABLE_NAMES = {"style_layers": "Ts", "content_layers": "Tc", "style_weight": "Ws",
              "content_weight": "Wc"}
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- grid specs

StyleChoice = int | Path | None
"""A row's style: the number (1-based) of one of the styles a grid runs with, an image path,
or None: all the styles it runs with (blended, as for a single run)."""


@dataclass(frozen=True)
class GridSpec:
    """Rows of a grid (each a dict of StyleConfig fields), shared options and label style;
    ``styles`` holds each row's :data:`StyleChoice` (empty: None for every row)."""

    rows: tuple[dict[str, Any], ...]
    base: dict[str, Any] = field(default_factory=dict)
    notation: str = "names"
    styles: tuple[StyleChoice, ...] = ()

    def style(self, index: int) -> StyleChoice:
        """The style choice of row ``index`` (0-based)."""
        return self.styles[index] if self.styles else None


def style_choice(raw: Any, folder: Path | None = None, where: str = "grid") -> StyleChoice:
    """A row's ``style`` entry: a number from 1 (the n-th style the grid runs with) or a path
    (relative to ``folder``, the grid file's, else the working directory).

    Raises:
        ConfigError: anything else (0, a negative number, an empty string, a list).
    """
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            raise ConfigError(f"{where}: style = {raw} must be a style number from 1 (the first "
                              "style given) or an image path")
        return raw
    if isinstance(raw, (str, os.PathLike)) and str(raw).strip():
        path = Path(raw).expanduser()
        return path if path.is_absolute() or folder is None else folder / path
    raise ConfigError(f"{where}: style must be a style number from 1 or an image path, not {raw!r}")


def _split_style(table: Mapping[str, Any], folder: Path | None,
                 where: str) -> tuple[dict[str, Any], StyleChoice]:
    """A row's StyleConfig fields (parsed) and its style choice."""
    fields = dict(table)
    choice = style_choice(fields.pop("style", None), folder, where)
    return values(fields), choice


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"style_weight=1e3,1e5"`` -> ``("style_weight", [1000.0, 100000.0])``.

    Alternatives are separated by commas, or by ``;`` for the layer options (whose values
    contain commas): ``style_layers=1,3,5;2,4,8``. Dashes in the name may be used.
    """
    name, sep, alternatives = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not alternatives.strip():
        raise ConfigError(f"--param takes NAME=V1,V2,..., not {text!r}")
    check_names([name])
    parts = alternatives.split(";" if name in LIST_OPTIONS else ",")
    return name, [value(name, p) for p in parts if p.strip()]


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
    return parse_spec(text, str(path), folder=Path(path).expanduser().parent)


def parse_spec(text: str, name: str = "<grid>", folder: Path | None = None) -> GridSpec:
    """A grid from TOML text (see :func:`load_spec`); ``style`` paths are relative to ``folder``."""
    try:
        data = parse_toml(text)
    except ValueError as e:
        raise ConfigError(f"grid file {name}: {e}") from None
    extra = set(data) - {"notation", "base", "rows", "title", "source"}
    if extra:
        raise ConfigError(f"grid file {name}: unknown key {min(extra)!r}; use notation, "
                          "base and [[rows]]")
    rows = data.get("rows") or []
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"grid file {name}: no [[rows]] tables")
    given = data.get("notation", "names")
    notation = OLD_NAMES.get(given, given)
    if notation not in NOTATIONS:
        raise ConfigError(f"grid file {name}: notation must be one of {', '.join(NOTATIONS)}")
    base, shared = _split_style(data.get("base", {}), folder, f"grid file {name}")
    parsed = [_split_style(r, folder, f"grid file {name}, row {i}")
              for i, r in enumerate(rows, start=1)]
    styles = tuple(shared if "style" not in r else choice for r, (_, choice) in zip(rows, parsed))
    return GridSpec(tuple(fields for fields, _ in parsed), base, notation,
                    styles if any(s is not None for s in styles) else ())


def preset(name: str) -> GridSpec:
    """A grid shipped with estilo (``report-table``)."""
    name = OLD_NAMES.get(name, name)
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    text = resources.files("estilo").joinpath(f"data/{name.replace('-', '_')}.toml")
    return parse_spec(text.read_text(encoding="utf-8"), f"preset {name}")


def configs(spec: GridSpec, overrides: Mapping[str, Any] | None = None, *,
            defaults: StyleConfig | None = None) -> list[StyleConfig]:
    """One config per row: ``defaults`` (``StyleConfig()``) < ``spec.base`` < the row <
    ``overrides`` (all rows). Other ``defaults`` show what a grid leaves to the defaults."""
    overrides = dict(overrides or {})
    clash = sorted({k for row in spec.rows for k in row} & set(overrides))
    if clash:
        log.warning("%s set for all rows: the grid's own values of it are replaced",
                    ", ".join(clash))
    if defaults is None:
        return [StyleConfig(**{**spec.base, **row, **overrides}) for row in spec.rows]
    return [defaults.replace(**{**spec.base, **row, **overrides}) for row in spec.rows]


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
        lists = {n: [value(n, v) for v in vs] for n, vs in params.items()}
        return GridSpec(tuple(expand(lists)))
    assert rows is not None
    parsed = [_split_style(r, None, f"row {i}") for i, r in enumerate(rows, start=1)]
    styles = tuple(choice for _, choice in parsed)
    return GridSpec(tuple(fields for fields, _ in parsed),
                    styles=styles if any(s is not None for s in styles) else ())


# --------------------------------------------------------------------------- labels

def differing(configs: Sequence[StyleConfig]) -> list[str]:
    """Field names whose values are not the same in every config (in field order)."""
    dicts = [c.to_dict() for c in configs]
    return [n for n in FIELDS if any(d[n] != dicts[0][n] for d in dicts[1:])]


def conv_indices(names: Sequence[str]) -> str:
    """Layer names as 1-based conv indices (1 = conv1_1) when they are all conv layers."""
    from ..config import CONV_NAMES

    if all(n in CONV_NAMES for n in names):
        return ",".join(str(CONV_NAMES.index(n) + 1) for n in names)
    return ",".join(names)


def table_term(name: str, config: StyleConfig) -> str:
    """One field of a label in the conv-index notation (``Ts=2,4,8``, ``Ws=1e5``, ``N``, ``avg``)."""
    value = getattr(config, name)
    if name in ("style_layers", "content_layers"):
        return f"{TABLE_NAMES[name]}={conv_indices(value)}"
    if name in TABLE_NAMES:
        return f"{TABLE_NAMES[name]}={number(value)}"
    if name == "init":
        return {"content+noise": "N", "noise": ""}.get(value, f"init={value}")
    if name == "pooling":
        return "avg" if value == "avg" else ""
    if name == "size":
        return text(name, value)
    return f"{name}={text(name, value)}"


def label(config: StyleConfig, names: Sequence[str], notation: str = "names") -> str:
    """The parameters ``names`` of ``config`` as a short caption.

    ``notation="conv-index"`` writes the results table's notation in its column order
    (``Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512``); otherwise ``name=value`` pairs.
    """
    if notation == "conv-index":
        ordered = [n for n in TABLE_ORDER if n in names] + [n for n in names if n not in TABLE_ORDER]
        return " ".join(t for t in (table_term(n, config) for n in ordered) if t)
    return " ".join(f"{n}={text(n, getattr(config, n))}" for n in names)


def slug(caption: str, limit: int = 60) -> str:
    """A file-name-safe version of a label (``ts-2-4-8-ws-1e5-n-avg-512``)."""
    cleaned = re.sub(r"[^a-z0-9._]+", "-", caption.lower()).strip("-._")
    return cleaned[:limit].rstrip("-.") or "row"


# --------------------------------------------------------------------------- rows and results

@dataclass(frozen=True)
class Row:
    """One row of a grid: its 1-based index, config, caption, image path and the name(s) of
    its style image(s)."""

    index: int
    config: StyleConfig
    label: str
    path: Path
    style: str = ""


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


# --------------------------------------------------------------------------- tables

LOSS_COLUMNS = ("status", "iterations", "content_loss", "style_loss", "wall_s")


def csv_table(results: Sequence[RowResult], shown: Sequence[str], *,
              style: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``SHEET.csv``: index, label, file, the varied options (CLI text),
    the style image (``style``: when rows use different ones), status, iterations, the
    fixed-measure content and style losses, and wall seconds."""
    header = ["index", "label", "file", *shown, *(["style"] if style else []), *LOSS_COLUMNS]
    rows = [[r.row.index, r.row.label, f"{r.row.path.parent.name}/{r.row.path.name}",
             *(text(n, getattr(r.row.config, n)) for n in shown),
             *([r.row.style] if style else []), r.status, r.iterations,
             repr(r.losses["content"]), repr(r.losses["style"]), f"{r.wall_s:.3f}"]
            for r in results]
    return header, rows


def table_cell(name: str, config: StyleConfig) -> tuple[str, str]:
    """(column, cell) of the results table for a field: ``("N", "x")``, ``("Ws", "1e5")``."""
    value = getattr(config, name)
    if name == "init":
        return "N", {"content+noise": "x", "noise": ""}.get(value, value)
    if name == "pooling":
        return "avg", "x" if value == "avg" else ""
    if name in ("style_layers", "content_layers"):
        return TABLE_NAMES[name], conv_indices(value)
    return TABLE_NAMES.get(name, name), text(name, value)


def markdown_table(results: Sequence[RowResult], shown: Sequence[str], notation: str,
                   base: Path, *, style: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``SHEET.md`` (the results table's columns for ``notation="conv-index"``;
    ``style``: a column of each row's style image)."""
    ordered = ([n for n in TABLE_ORDER if n in shown] + [n for n in shown if n not in TABLE_ORDER]
               if notation == "conv-index" else list(shown))
    cell = table_cell if notation == "conv-index" else (lambda n, c: (n, text(n, getattr(c, n))))
    names = [cell(n, results[0].row.config)[0] for n in ordered] if results else ordered
    header = ["#", *names, *(["style"] if style else []), "content loss", "style loss",
              "wall s", "image"]
    rows = [[r.row.index, *(cell(n, r.row.config)[1] for n in ordered),
             *([r.row.style] if style else []),
             f"{r.losses['content']:.4g}", f"{r.losses['style']:.4g}", f"{r.wall_s:.1f}",
             f"[{r.row.path.name}]({r.row.path.relative_to(base).as_posix()})"
             + ("" if r.status == "done" else f" ({r.status})")]
            for r in results]
    return header, rows


