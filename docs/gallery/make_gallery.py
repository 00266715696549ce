"""Re-make the README's gallery: one picture per artistic-control option.

Uses only the bundled examples (content.jpg, style.jpg and style-ember.jpg in the package's
data folder, both styles painted by examples/make_style.py) and the default
Caffe VGG19 weights; every run is small (256 px, 60 iterations, estilo's other defaults)
so the whole gallery takes a few minutes on a CPU. From the repository root:

    python docs/gallery/make_gallery.py            # writes docs/gallery/*.png, docs/demo.jpg

The README shows strength.png, style-scale.png and preserve-color.png in "Start here" (the
three options that change a picture most) and the others in its gallery; two-regions.png
(the mask) and content-alpha.png (the photo cut out by an oval) are the inputs its gallery
commands name.

Each picture is a strip of labelled panels; the labels are the command-line options that
made each panel (on top of the common ones printed by ``--help``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from PIL import Image, ImageDraw

from estilo import StyleConfig, Stylizer
from estilo.demo import demo_paths, example_folder
from estilo.recolor import recolor_image

EXAMPLES = example_folder()
CONTENT, STYLE, EMBER = (EXAMPLES / n for n in ("content.jpg", "style.jpg", "style-ember.jpg"))
LABEL_HEIGHT = 16
STRENGTHS = (0.03, 0.1, 0.3, 1.0, 3.0)
log = logging.getLogger("gallery")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--size", type=int, default=256, help="output long side (px)")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--device", default="auto")
    return parser.parse_args()


class Gallery:
    """Runs estilo with shared settings and writes the labelled strips."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.out = args.out
        self.base = StyleConfig(size=args.size, iterations=args.iterations, device=args.device)
        self.stylizer = Stylizer()  # keeps the network between runs
        self.cache: dict[str, Image.Image] = {}

    def run(self, key: str, styles: list[Path], content: Path = CONTENT,
            **options: object) -> Image.Image:
        """Stylise (once per key) and return the result."""
        if key not in self.cache:
            start = time.perf_counter()
            result = self.stylizer.run(content, styles, self.base.replace(**options))
            self.cache[key] = result.image
            log.info("%s: %.0f s", key, time.perf_counter() - start)
        return self.cache[key]

    def save(self, name: str, panels: list[tuple[Image.Image, str]]) -> None:
        """Write panels side by side with their labels, as a small palette PNG."""
        height = max(p.height for p, _ in panels)
        strip = Image.new("RGB", (sum(p.width for p, _ in panels) + 4 * (len(panels) - 1),
                                  height + LABEL_HEIGHT), "white")
        draw, x = ImageDraw.Draw(strip), 0
        for panel, label in panels:
            strip.paste(_on_checkerboard(panel), (x, 0))
            draw.text((x + 2, height + 2), label, fill="black")
            x += panel.width + 4
        path = self.out / f"{name}.png"
        strip.quantize(colors=256).save(path, optimize=True)
        log.info("wrote %s (%d KB)", path, path.stat().st_size // 1024)


def _thumb(path: Path, height: int) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
        return img.resize((round(img.width * height / img.height), height), Image.LANCZOS)


def _on_checkerboard(img: Image.Image) -> Image.Image:
    """RGBA images over a grey checkerboard (to show transparency); RGB unchanged."""
    if img.mode != "RGBA":
        return img
    board = Image.new("RGB", img.size, (200, 200, 200))
    draw = ImageDraw.Draw(board)
    for y in range(0, img.height, 8):
        for x in range((y // 8) % 2 * 8, img.width, 16):
            draw.rectangle([x, y, x + 7, y + 7], fill=(245, 245, 245))
    board.paste(img, mask=img.getchannel("A"))
    return board


def make_mask(path: Path) -> Path:
    """Two regions for the mask demo: the left 45 % black (style 1), the rest white (style 2)."""
    with Image.open(CONTENT) as content:
        size = content.size
    mask = Image.new("L", size, 255)
    ImageDraw.Draw(mask).rectangle([0, 0, int(size[0] * 0.45), size[1]], fill=0)
    mask.save(path)
    return path


def make_transparent_content(path: Path) -> Path:
    """The cat photo with an oval cut-out, at 256 px: transparent outside an ellipse."""
    with Image.open(CONTENT) as content:
        rgba = content.convert("RGBA")
    rgba.thumbnail((256, 256), Image.Resampling.LANCZOS)
    alpha = Image.new("L", rgba.size, 0)
    ImageDraw.Draw(alpha).ellipse([11, 6, rgba.width - 11, rgba.height - 6], fill=255)
    rgba.putalpha(alpha)
    rgba.save(path, optimize=True)
    return path


def make_demo(path: Path, device: str) -> None:
    """The README's top picture: content, The Starry Night and ``estilo demo``'s result (every
    default), side by side at one height."""
    start = time.perf_counter()
    content, painting = demo_paths()
    result = Stylizer().run(content, painting, StyleConfig(device=device)).image
    height = 240
    panels = [_thumb(content, height), _thumb(painting, height),
              result.resize((round(result.width * height / result.height), height), Image.LANCZOS)]
    strip = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), height), "white")
    x = 0
    for panel in panels:
        strip.paste(panel.convert("RGB"), (x, 0))
        x += panel.width + 8
    strip.save(path, quality=88, optimize=True)
    log.info("wrote %s (%.0f s)", path, time.perf_counter() - start)


def main() -> None:
    start = time.perf_counter()
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    make_demo(args.out.parent / "demo.jpg", args.device)
    g = Gallery(args)
    base = g.run("base", [STYLE])
    h = base.height
    g.save("strength", [(g.run(f"strength-{k}", [STYLE], strength=k) if k != 1 else base,
                         f"--strength {k:g}" + (" (default)" if k == 1 else ""))
                        for k in STRENGTHS])
    g.save("blend", [(base, "style.jpg"), (_thumb(STYLE, h), "style.jpg"),
                     (_thumb(EMBER, h), "style-ember.jpg"),
                     (g.run("blend", [STYLE, EMBER], style_blend=(1, 1)), "--style-blend 1,1")])
    g.save("style-scale", [(g.run("scale-0.5", [STYLE], style_scale=0.5), "--style-scale 0.5"),
                           (base, "1 (default)"),
                           (g.run("scale-2", [STYLE], style_scale=2.0), "--style-scale 2")])
    g.save("preserve-color", [
        (base, "none"), (g.run("luminance", [STYLE], preserve_color="luminance"), "luminance"),
        (g.run("match", [STYLE], preserve_color="match"), "match"),
        (recolor_image(base, Image.open(CONTENT).convert("RGB")), "estilo recolor")])
    mask = make_mask(args.out / "two-regions.png")
    g.save("mask", [(_thumb(mask, h), "two-regions.png"),
                    (g.run("mask", [STYLE, EMBER], mask=str(mask)),
                     "--mask two-regions.png, two styles")])
    g.save("style-loss", [(base, "gram (default)"),
                          (g.run("meancov", [STYLE], style_loss="meancov"), "--style-loss meancov"),
                          (g.run("channels", [STYLE], layer_weighting="channels"),
                           "--layer-weighting channels")])
    cutout = make_transparent_content(args.out / "content-alpha.png")  # the README's command
    g.save("keep-alpha", [(_thumb(cutout, h), "content with alpha"),
                          (g.run("alpha", [STYLE], content=cutout, keep_alpha=True),
                           "--keep-alpha")])
    log.info("gallery done in %.0f s", time.perf_counter() - start)


if __name__ == "__main__":
    main()
