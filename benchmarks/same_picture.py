"""Does a change to the engine change the pictures? Paint the quality panel's pairs with a fixed
seed, then compare two such folders pixel by pixel.

Run from the repository root (see benchmarks/README.md, "Same picture")::

    .venv/bin/python benchmarks/same_picture.py paint out/same/after     # this tree's code
    .venv/bin/python benchmarks/same_picture.py compare out/same/before out/same/after

``paint`` imports estilo from the tree the script lies in (copy it into an older checkout to
paint "before"); it writes one PNG per pair and variant at 256 px (the default options, and
on the first pairs the luminance-only and meancov runs). ``compare`` prints the largest
difference of any pixel, in 0-255 levels, per picture and over all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import PAIRS, image_path

from estilo.transfer import Stylizer

SIZE = 256
VARIANTS = {"default": {}, "luminance": {"preserve_color": "luminance"},
            "meancov": {"style_loss": "meancov"}}
"""Options per variant; the variants beyond the default run on the first ``VARIANT_PAIRS``."""
VARIANT_PAIRS = 3


def paint(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stylizer = Stylizer()
    for index, pair in enumerate(PAIRS):
        for variant, options in VARIANTS.items():
            if variant != "default" and index >= VARIANT_PAIRS:
                continue
            path = folder / f"{pair.name}--{variant}.png"
            result = stylizer.run(image_path(pair.content), image_path(pair.style), size=SIZE,
                                  seed=0, device="cpu", **options)
            result.image.convert("RGB").save(path)
            print(path, flush=True)


def compare(before: Path, after: Path) -> int:
    worst, compared = 0, 0
    for path in sorted(before.glob("*.png")):
        other = after / path.name
        if not other.exists():
            print(f"{path.name}: missing in {after}")
            continue
        compared += 1
        a = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        b = np.asarray(Image.open(other).convert("RGB"), dtype=np.int16)
        diff = np.abs(a - b)
        worst = max(worst, int(diff.max()))
        print(f"{path.name}: largest difference {int(diff.max())}, mean {diff.mean():.4f}, "
              f"pixels that differ {float((diff.max(-1) > 0).mean()):.2%}")
    print(f"largest difference over the {compared} pictures in both: {worst} of 255 levels")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("paint").add_argument("folder", type=Path)
    both = sub.add_parser("compare")
    both.add_argument("before", type=Path)
    both.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "paint":
        paint(args.folder)
    else:
        compare(args.before, args.after)


if __name__ == "__main__":
    main()
