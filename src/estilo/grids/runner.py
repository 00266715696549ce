"""Running a parameter grid: :func:`estilo.grid` (and ``estilo grid``, :mod:`estilo.cli.grid`).

Every row runs with the same seed and iteration budget; its image goes to
``SHEET_rows/<index>-<slug>.png`` with its parameters embedded; then the contact sheet
(:mod:`estilo.grids.sheet`) and ``SHEET.md`` / ``SHEET.csv`` (:mod:`estilo.grids.spec`) are
written, also after Ctrl-C with the rows finished so far. Rows, labels and tables are pure
functions in :mod:`estilo.grids.spec`; this module adds the fixed loss measure
(:class:`Evaluator`) and the runner (:class:`Grid`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..config import FIELDS, StyleConfig
from ..devices import resolve_device
from ..io.image import resize, to_tensor, working_size
from ..io.inputs import ImageInput, Source, StyleInput
from ..io.metadata import run_key
from ..io.output import OutputError, check_output_path, read_parameters, save_image
from ..losses import Moments, Objective, moments
from ..options import flag, text, values
from ..pyramid import style_side
from ..transfer import Job, NonFiniteError, Step, Stylizer
from . import sheet
from .spec import (
    GridResult,
    GridSpec,
    GridStep,
    Row,
    RowResult,
    StyleChoice,
    configs,
    csv_table,
    differing,
    label,
    markdown_table,
    slug,
    spec_from,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- evaluation

EVALUATION: dict[str, Any] = {
    "pooling": "avg", "content_layers": ("conv4_2",),
    "style_layers": ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")}
"""The grid evaluator's network and layers (those of the report's best rows), fixed so that
a table's losses compare across estilo versions."""

def _moments(features: Mapping[str, torch.Tensor]) -> dict[str, Moments]:
    return {name: moments(f) for name, f in features.items()}


class Evaluator:
    """One fixed measure of content and style loss, the same for every row.

    The network and layers are fixed here, not taken from the defaults (which may change):
    VGG19 with ``eval_weights``, :data:`EVALUATION`'s pooling and layers, RMS-normalised
    features, Gram / CHW, unweighted, at one size (long side ``size``; above the content's
    only with ``upscale``, as when the rows upscale). A row's own objective differs by row,
    so its final loss cannot be compared across rows; this can.
    """

    def __init__(self, job: Job, *, size: int, weights: str, stylizer: Stylizer,
                 upscale: bool = False) -> None:
        self.config = StyleConfig(**EVALUATION, weights=weights, device=job.config.device,
                                  seed=job.config.seed)
        self.device = resolve_device(self.config.device)
        from ..weights import load_weights

        loaded = load_weights(weights, seed=self.config.seed)
        self.net = stylizer.extractor(loaded, self.config, self.device)
        inputs = job.inputs
        self.size = working_size(inputs.content.image.size, size, allow_upscale=upscale)
        with torch.no_grad():
            self.content = self.net(self._tensor(inputs.content.image))
        self._objectives: dict[tuple[str, ...], Objective] = {}
        self.styles = inputs.styles
        self.objective = self.objective_for(inputs.styles)

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        return to_tensor(resize(image, self.size)).to(self.device)

    def objective_for(self, styles: Sequence[Source]) -> Objective:
        """The measure against ``styles`` (built once per set of style images)."""
        key = tuple(s.sha256 for s in styles)
        if key not in self._objectives:
            with torch.no_grad():
                features = [self.net(self._tensor(resize(s.image, style_side(
                    s.image.size, self.size, self.size, None)))) for s in styles]
            ones = dict.fromkeys
            self._objectives[key] = Objective.from_moments(
                self.content, _moments(self.content), [_moments(f) for f in features],
                content_weights=ones(self.config.content_layers, 1.0),
                style_weights=ones(self.config.style_layers, 1.0))
        return self._objectives[key]

    def __call__(self, image: Image.Image,
                 styles: Sequence[Source] | None = None) -> dict[str, float]:
        """``{"content": ..., "style": ...}`` for a row's final image, the style loss against
        ``styles`` (the row's style images; default: those of the job it was built with)."""
        objective = self.objective_for(styles or self.styles)
        x = self._tensor(image.convert("RGB"))  # a kept alpha (keep_alpha) is not painted
        with torch.no_grad():
            terms = objective(self.net(x), x)
        return {"content": float(terms["content"]), "style": float(terms["style"])}


class Grid:
    """A prepared grid: checked inputs, rows and output paths. Iterate :meth:`steps`."""

    def __init__(self, content: ImageInput, style: StyleInput, spec: GridSpec, output: str | Path,
                 *, overrides: Mapping[str, Any] | None = None, resume: bool = False,
                 overwrite: bool = False, tile_size: int = sheet.TILE, columns: int = 0,
                 eval_size: int | None = None, eval_weights: str | None = None,
                 stylizer: Stylizer | None = None) -> None:
        given = [style] if isinstance(style, (str, os.PathLike, Image.Image)) else list(style)
        rows = configs(spec, overrides)
        row_styles = [pick_style(spec.style(i), style, given, i + 1) for i in range(len(rows))]
        replaced = sorted({k for row in spec.rows for k in row} & set(overrides or {}))
        numbers, rows, row_styles = distinct_rows(rows, row_styles, replaced)
        paths = [p for p in (content, *given, *row_styles) if isinstance(p, (str, os.PathLike))]
        _refuse_existing(Path(output).expanduser(), overwrite or resume, "sheet")
        self.output = check_output_path(output, overwrite=overwrite or resume, inputs=paths)
        self.stylizer = stylizer or Stylizer()
        self.jobs = [self.stylizer.job(content, s, c) for s, c in zip(row_styles, rows)]
        keys = [tuple(s.sha256 for s in job.inputs.styles) for job in self.jobs]
        self.style_sets = list(dict.fromkeys(keys))  # distinct style images, in order of use
        self.styled = len(self.style_sets) > 1
        shown = differing(rows)
        folder = self.output.with_name(self.output.stem + "_rows")
        width = len(str(len(rows)))
        captions = [" ".join(t for t in (label(c, shown, spec.notation), f"style "
                                         f"{self.style_sets.index(k) + 1}" if self.styled else "")
                             if t) for c, k in zip(rows, keys)]
        self.rows = [Row(i, c, caption, folder / f"{i:0{width}d}-{slug(caption)}.png",
                         " + ".join(s.name for s in job.inputs.styles))
                     for i, c, caption, job in zip(numbers, rows, captions, self.jobs)]
        self._job_of = {row.index: job for row, job in zip(self.rows, self.jobs)}
        for row in self.rows:
            _refuse_existing(row.path, overwrite or resume, "row image")
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
        return sum(self._job_of[r.index].total for r in self.pending())

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
            self.set_aside()
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

    def result(self) -> GridResult:
        """The files and the rows finished so far."""
        return GridResult(self.output, self.output.with_suffix(".md"),
                          self.output.with_suffix(".csv"),
                          [self.results[i] for i in sorted(self.results)])

    def set_aside(self) -> list[Path]:
        """Move row images that are not rows of this grid (an earlier grid's, e.g. before a
        ``--param`` value changed) into ``SHEET_rows/old/``; return their new paths."""
        folder = self.rows[0].path.parent
        current = {row.path.name for row in self.rows}
        stale = [p for p in sorted(folder.glob("*.png")) if p.name not in current
                 and ROW_NAME.fullmatch(p.name)] if folder.is_dir() else []
        if not stale:
            return []
        old = folder / "old"
        old.mkdir(exist_ok=True)
        moved = [Path(shutil.move(str(p), str(old / p.name))) for p in stale]
        log.warning("moved %d row image(s) that are not part of this grid to %s: %s",
                    len(moved), old, ", ".join(p.name for p in moved))
        return moved

    def write(self) -> None:
        """Write the sheet, ``.md`` and ``.csv`` for the rows finished so far."""
        done = [self.results[i] for i in sorted(self.results)]
        job = self.jobs[0]
        inputs = [("content: " + job.inputs.content.name, job.inputs.content.image)]
        inputs += [(f"style {number}: {s.name}" if self.styled else f"style: {s.name}", s.image)
                   for number, styles in enumerate(self._style_inputs(), start=1) for s in styles]
        tiles = inputs + [(f"#{r.row.index} {r.row.label}".strip(), r.image) for r in done]
        image = sheet.contact_sheet(tiles, tile=self.tile_size, columns=self.columns)
        save_image(image, self.output, parameters=self._sheet_parameters(done))
        header, cells = csv_table(done, self.shown, style=self.styled)
        sheet.write_csv(self.output.with_suffix(".csv"), header, cells)
        header, cells = markdown_table(done, self.shown, self.spec.notation, self.output.parent,
                                       style=self.styled)
        sheet.write_markdown(self.output.with_suffix(".md"), self.output.stem, self._header(job),
                             header, cells)

    # ----------------------------------------------------------------- helpers

    def _style_inputs(self) -> list[tuple[Source, ...]]:
        """The style images of each of :attr:`style_sets`."""
        first = {tuple(s.sha256 for s in job.inputs.styles): job.inputs.styles
                 for job in reversed(self.jobs)}
        return [tuple(first[key]) for key in self.style_sets]

    def _evaluator(self) -> Evaluator:
        return Evaluator(self.jobs[0], size=self.eval_size, weights=self.eval_weights,
                         stylizer=self.stylizer,
                         upscale=any(job.config.upscale for job in self.jobs))

    def _run_row(self, row: Row, position: int, pending: int,
                 evaluator: Evaluator) -> Generator[GridStep, None, None]:
        job, start = self._job_of[row.index], time.perf_counter()
        last: Step | None = None
        status = "done"
        try:
            for last in job.steps():
                yield GridStep(row, position, pending, last)
            image = job.picture(last.image) if last else resize(job.inputs.content.image, job.inputs.size)
        except NonFiniteError as e:
            log.warning("row %d (%s) diverged: %s", row.index, row.label, e)
            status, image = "diverged", job.picture(e.image)
        wall = time.perf_counter() - start
        row.path.parent.mkdir(parents=True, exist_ok=True)
        save_image(image, row.path, parameters=job.parameters(last, interrupted=False, grid={
            "index": row.index, "label": row.label, "status": status, "wall_s": round(wall, 3)}))
        self.results[row.index] = RowResult(row, status, image, last.iteration if last else 0,
                                            wall, evaluator(image, job.inputs.styles))

    def _reusable(self) -> dict[int, Path]:
        """Rows whose finished image (here or under another row's name) has their parameters."""
        found: dict[tuple[str, ...], Path] = {}
        folder = self.rows[0].path.parent
        for path in sorted(folder.glob("*.png")) if folder.is_dir() else []:
            key = run_key(read_parameters(path))
            if key is not None:
                found.setdefault(key, path)
        done: dict[int, Path] = {}
        for row, job in zip(self.rows, self.jobs):
            key = run_key(job.parameters(None))
            own = run_key(read_parameters(row.path)) if row.path.exists() else None
            match = row.path if own is not None and own == key else found.get(key or ("",))
            if match is not None:
                done[row.index] = match
        return done

    def _resumed(self, row: Row, path: Path, evaluator: Evaluator) -> RowResult:
        if path != row.path:
            shutil.copyfile(path, row.path)
        with Image.open(row.path) as im:
            image = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        params = read_parameters(row.path) or {}
        wall = float((params.get("grid") or {}).get("wall_s", params.get("elapsed_s", 0.0)))
        return RowResult(row, "resumed", image, int(params.get("iterations_done", 0)), wall,
                         evaluator(image, self._job_of[row.index].inputs.styles))

    def _sheet_parameters(self, done: Sequence[RowResult]) -> dict[str, Any]:
        first = self.jobs[0].parameters(None)
        return {"format": "estilo-grid/1", "inputs": first["inputs"], "shown": self.shown,
                "notation": self.spec.notation, "evaluation": self._evaluation(),
                "rows": [{"index": r.row.index, "label": r.row.label, "file": r.row.path.name,
                          "style": r.row.style, "status": r.status,
                          "config": r.row.config.to_dict()} for r in done],
                "versions": first["versions"]}

    def _evaluation(self) -> dict[str, Any]:
        return {"weights": self.eval_weights, "long_side": self.eval_size,
                "pooling": EVALUATION["pooling"], "style_layers": list(EVALUATION["style_layers"]),
                "content_layers": list(EVALUATION["content_layers"])}

    def _header(self, job: Job) -> list[str]:
        config, ev = self.rows[0].config, self._evaluation()
        shared = ", ".join(f"{n}={text(n, getattr(config, n))}" for n in FIELDS
                           if n not in self.shown and n != "device")
        styles = "style " + ", ".join(f"`{s.name}`" for s in job.inputs.styles)
        if self.styled:
            styles = "styles " + ", ".join(
                f"{n} " + " + ".join(f"`{s.name}`" for s in group)
                for n, group in enumerate(self._style_inputs(), start=1)) + " (the style column "\
                "says which row used which)"
        measure = (f"{ev['weights']} VGG19, {ev['pooling']} pooling, style "
                   f"{','.join(ev['style_layers'])}, content {','.join(ev['content_layers'])}, "
                   f"RMS-normalised features, unweighted, long side {ev['long_side']} px")
        return [f"Content `{job.inputs.content.name}`, {styles}.",
                f"Shared options: {shared}.",
                (f"Losses: one fixed measure for every row ({measure}), not each row's own "
                 "objective. Wall time: seconds per row on this machine.")]


def pick_style(choice: StyleChoice, style: StyleInput, given: Sequence[ImageInput],
               index: int) -> StyleInput:
    """The style input of row ``index``: its own image, the ``choice``-th of the ``given``
    styles, or (None) all of ``style``. A number beyond the styles given falls back to the
    first one, with a warning (the row's caption and table entry name the style it used)."""
    if choice is None:
        return style
    if isinstance(choice, Path):
        return str(choice)
    if choice > len(given):
        log.warning("row %d uses style %d, but %d style image(s) were given: it uses the first",
                    index, choice, len(given))
        return given[0]
    return given[choice - 1]


def distinct_rows(rows: Sequence[StyleConfig], styles: Sequence[StyleInput],
                  replaced: Sequence[str] = ()) -> tuple[list[int], list[StyleConfig],
                                                         list[StyleInput]]:
    """The rows' numbers (1-based), configs and styles without the rows that repeat an earlier
    one, with a warning naming them: ``replaced``, the rows' options that an option for every
    row replaced, can make rows one run (the report's rows 5 and 6 differ only in size:
    ``--size 64`` makes them the same), and so can one style for rows that name two."""
    seen: dict[tuple[str, str], int] = {}
    numbers: list[int] = []
    kept: list[StyleConfig] = []
    kept_styles: list[StyleInput] = []
    for number, (config, style) in enumerate(zip(rows, styles), start=1):
        key = (repr(sorted(config.to_dict().items())), _style_key(style))
        if key in seen:
            why = f" once {', '.join(flag(n) for n in replaced)} applies to every row" \
                if replaced else ""
            log.warning("rows %d and %d are the same run%s: row %d is left out", seen[key],
                        number, why, number)
            continue
        seen[key] = number
        numbers.append(number)
        kept.append(config)
        kept_styles.append(style)
    return numbers, kept, kept_styles


def _style_key(style: StyleInput) -> str:
    items = [style] if isinstance(style, (str, os.PathLike, Image.Image)) else list(style)
    return repr([str(Path(i).expanduser().resolve()) if isinstance(i, (str, os.PathLike))
                 else id(i) for i in items])


ROW_NAME = re.compile(r"\d+-.*\.png")
"""How row images are named (``<index>-<label>.png``); only such files are set aside."""


def _refuse_existing(path: Path, allowed: bool, what: str) -> None:
    """An existing sheet or row image needs --resume (keep finished rows) or --overwrite."""
    if path.is_file() and not allowed:
        raise OutputError(f"the {what} {str(path)!r} already exists: use --resume to keep the rows "
                          "already finished, or --overwrite to run every row again")


# --------------------------------------------------------------------------- the API

def grid(content: ImageInput, style: StyleInput, output: str | Path, *,
         preset: str | None = None, grid_file: str | Path | None = None,
         params: Mapping[str, Sequence[Any]] | None = None,
         rows: Sequence[Mapping[str, Any]] | None = None, resume: bool = False,
         overwrite: bool = False, tile_size: int = sheet.TILE, columns: int = 0,
         eval_size: int | None = None, eval_weights: str | None = None,
         **options: Any) -> GridResult:
    """Run a parameter grid and write a contact sheet, ``.md`` and ``.csv`` tables.

    Args:
        content, style: the inputs (paths or PIL images), as for :func:`estilo.stylize`; rows
            that name a style number take that one of ``style``, the others all of them.
        output: the sheet's path; rows go to ``<stem>_rows/``, tables beside it.
        preset / grid_file / params / rows: exactly one: ``"report-table"``, a TOML file,
            ``{"style_weight": [1e3, 1e5], "pooling": ["max", "avg"]}`` (cartesian product)
            or a list of dicts of options. A row (in a file or a dict) may name its own
            ``style``: an image path, or a number from 1 picking one of the ``style`` images.
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
    return Grid(content, style, spec, output, overrides=values(options), resume=resume,
                overwrite=overwrite, tile_size=tile_size, columns=columns, eval_size=eval_size,
                eval_weights=eval_weights).run()
