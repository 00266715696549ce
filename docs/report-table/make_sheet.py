"""Re-make the README's sheet of the report's results table (``make seed-table``).

Runs ``estilo grid --preset report-table`` on the bundled examples only: the photo
``content.jpg`` (CC0), *The Starry Night* as style 1 and Turner's *The Shipwreck* as style 2
(public domain; see the package's ``data/examples/LICENSES.md``), with the Caffe VGG19
weights that ship with estilo. Every option that decides the pictures is pinned in the
preset (``src/estilo/data/report_table.toml``), so this script passes none. From the
repository root:

    python docs/report-table/make_sheet.py            # about 20 min on 2 CPU cores

writes ``docs/report-table/sheet.jpg`` (the contact sheet, a compact JPEG) and
``docs/report-table/table.md`` (its table of the fixed loss measure); the full-size rows,
the PNG sheet and the CSV stay in ``out/report-table/`` (``--resume`` reuses finished rows).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PIL import Image

import estilo
from estilo.demo import example_folder

HERE = Path(__file__).resolve().parent
EXAMPLES = example_folder()
CONTENT = EXAMPLES / "content.jpg"
STYLES = [EXAMPLES / "starry_night.jpg", EXAMPLES / "shipwreck.jpg"]
TILE = 256          # px per tile on the committed sheet (the rows themselves are full size)
QUALITY = 85        # JPEG quality of the committed sheet


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/report-table"),
                        help="folder of the full-size rows, PNG sheet and CSV (%(default)s)")
    parser.add_argument("--docs", type=Path, default=HERE, help="where sheet.jpg and table.md "
                        "go (%(default)s)")
    parser.add_argument("--resume", action="store_true", help="reuse finished rows")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=None, help="replace the preset's "
                        "count (a quick look; the committed sheet uses the preset's)")
    return parser.parse_args()


def without_last_column(markdown: str) -> str:
    """The grid's Markdown with the table's last column (links to the uncommitted rows) cut."""
    lines = []
    for line in markdown.splitlines():
        if line.startswith("|---"):
            line = line[: -len("---|")]
        elif line.startswith("| "):
            line = line.rsplit(" | ", 1)[0] + " |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    extra = {} if args.iterations is None else {"iterations": args.iterations}
    result = estilo.grid(CONTENT, STYLES, args.work / "sheet.png", preset="report-table",
                         tile_size=TILE, resume=args.resume, overwrite=not args.resume,
                         device=args.device, **extra)
    args.docs.mkdir(parents=True, exist_ok=True)
    with Image.open(result.sheet) as sheet:
        sheet.convert("RGB").save(args.docs / "sheet.jpg", quality=QUALITY, optimize=True,
                                  progressive=True)
    body = result.markdown.read_text(encoding="utf-8").split("\n", 1)[1]
    title = ("# The report's results table on the bundled examples\n\n"
             "Made by `make seed-table` (`docs/report-table/make_sheet.py`): `estilo grid "
             "content.jpg starry_night.jpg shipwreck.jpg --preset report-table`; the picture is "
             "`sheet.jpg` beside this file.\n")
    (args.docs / "table.md").write_text(title + without_last_column(body), encoding="utf-8")
    total = sum(r.wall_s for r in result.rows)
    print(f"wrote {args.docs / 'sheet.jpg'} and table.md: {len(result.rows)} rows, "
          f"{total / 60:.1f} min of rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
