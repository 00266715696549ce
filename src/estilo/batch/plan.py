"""Planning a batch on the driver: inputs expanded, output names made from a template,
collisions refused up front (before anything runs)."""

from __future__ import annotations

import csv
import glob
import io
import os
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..files import parse_toml
from ..io.image import image_files

DEFAULT_NAME = "{content}_{style}.png"
NAME_FIELDS = ("content", "style", "index")


class BatchError(ConfigError):
    """A batch cannot start: bad inputs, manifest, name template or colliding outputs."""


@dataclass(frozen=True)
class Item:
    """One output to make: ``content`` painted in the style of ``style``."""

    index: int       # 1-based position in the batch
    content: Path
    style: Path
    output: Path


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
    try:
        items = parse_toml(text).get("item", [])
    except ValueError as e:
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
