"""Paint the bundled example style: a deterministic, swirling brush-stroke "painting".

Writes src/estilo/data/examples/style.jpg (package data, so every install has it).

Thick curved strokes are traced along a flow field made of a few vortices on a
gentle sine current.  Each stroke gets a dark edge and several bristle lines
of jittered colour, drawn semi-opaque in passes from broad to fine.  Colours
come from a bold palette: blues and cyan in the swirling sky, ochre/yellow and
white near the vortex "moons".  Needs only numpy and Pillow; fixed seed, so
`python examples/make_style.py` always writes the same image.

`python examples/make_style.py --palette ember --seed 11 -o src/estilo/data/examples/style-ember.jpg`
paints the second bundled style (reds, oranges and violet; used by the gallery for
style blending and masks).
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

W, H, SEED = 512, 512, 7
OUT = Path(__file__).resolve().parents[1] / "src" / "estilo" / "data" / "examples" / "style.jpg"
rng = np.random.default_rng(SEED)  # reseeded by main()
# (x, y, strength, radius): vortex centres; sign sets the turning direction.
VORTICES = [
    (140, 160, 1.4, 60),
    (380, 110, 1.2, 45),
    (300, 330, 1.3, 70),
    (90, 420, -1.1, 40),
    (450, 430, 1.1, 50),
]
BLUES = np.array(
    [(18, 38, 110), (30, 70, 160), (40, 110, 190), (70, 160, 200), (15, 25, 70), (90, 180, 210)],
    float,
)
WARMS = np.array([(230, 190, 60), (210, 150, 40), (245, 225, 120), (250, 245, 225)], float)
EDGE = (10, 16, 40, 255)
BACKGROUND = (25, 45, 110, 255)
# name: (cool colours, warm colours, stroke edge, background)
PALETTES = {
    "blue": (BLUES, WARMS, EDGE, BACKGROUND),
    "ember": (
        np.array([(120, 20, 30), (170, 40, 30), (90, 20, 70), (200, 70, 40), (60, 10, 50)], float),
        np.array([(250, 170, 40), (240, 120, 30), (255, 220, 120), (250, 240, 210)], float),
        (30, 8, 20, 255),
        (70, 15, 40, 255),
    ),
}
palette = PALETTES["blue"]  # set by main()


def flow(p):
    """Unit flow direction at points p (n, 2): vortices + sine current."""
    x, y = p[:, 0], p[:, 1]
    vx, vy = 0.8 + 0.3 * np.sin(y / 60.0), 0.5 * np.sin(x / 70.0 + y / 110.0)
    for cx, cy, s, r in VORTICES:
        dx, dy = x - cx, y - cy
        k = s * 2.5 * r / (dx * dx + dy * dy + r * r) ** 0.5
        vx, vy = vx - k * dy / (np.hypot(dx, dy) + 1), vy + k * dx / (np.hypot(dx, dy) + 1)
    n = np.hypot(vx, vy) + 1e-9
    return np.stack([vx / n, vy / n], 1)


def warmth(p):
    """0..1 closeness to a vortex centre: picks warm vs blue paint."""
    d = [np.hypot(p[:, 0] - cx, p[:, 1] - cy) / r for cx, cy, _, r in VORTICES]
    return np.exp(-(np.min(d, axis=0) ** 2) / 1.2)


def paint_pass(img, n, length, width, step=4.0):
    """Trace n strokes of `length` steps and draw them semi-opaque onto img."""
    pts = [rng.uniform([-20, -20], [W + 20, H + 20], (n, 2))]
    for _ in range(length):
        pts.append(pts[-1] + step * flow(pts[-1]))
    paths = np.stack(pts, 1)  # (n, length+1, 2)
    warm = warmth(paths[:, 0]) > rng.uniform(0.15, 1.0, n)
    layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for path, is_warm in zip(paths, warm):
        pal = palette[1] if is_warm else palette[0]
        base = pal[rng.integers(len(pal))]
        draw.line([tuple(q) for q in path], fill=palette[2], width=width + 3, joint="curve")
        d = np.gradient(path, axis=0)
        normal = np.stack([-d[:, 1], d[:, 0]], 1) / (np.hypot(*d.T)[:, None] + 1e-9)
        for off in np.linspace(-width / 2 + 1, width / 2 - 1, max(2, width // 4)):
            c = np.clip(base + rng.normal(0, 16, 3), 0, 255).astype(int)
            bristle = path + normal * off
            draw.line([tuple(q) for q in bristle], fill=(*c, 235), width=6, joint="curve")
    img.alpha_composite(layer)


def main(argv=None):
    global rng, palette
    parser = argparse.ArgumentParser(description="Paint a bundled example style image.")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (default %(default)s)")
    parser.add_argument("--palette", choices=sorted(PALETTES), default="blue")
    parser.add_argument("-o", "--output", type=Path, default=OUT, help="default: the bundled style.jpg")
    args = parser.parse_args(argv)
    rng, palette = np.random.default_rng(args.seed), PALETTES[args.palette]
    img = Image.new("RGBA", (W, H), palette[3])
    for n, length, width in [(220, 40, 16), (500, 28, 11), (700, 20, 8), (300, 14, 6)]:
        paint_pass(img, n, length, width)
    img.convert("RGB").save(args.output, quality=92)


if __name__ == "__main__":
    main()
