"""estilo against the peer ``pastiche``: step time, time to quality and memory.

Run from the repository root (see benchmarks/README.md)::

    flock /tmp/estilo-heavy.lock python benchmarks/bench.py all

Every subcommand writes ``benchmarks/results/<name>.json`` (machine, versions, commit and
the figures) and prints a table with the ratios. pastiche's long reference runs (1000
L-BFGS steps at 256 px, 300 at 512 px) are cached in ``benchmarks/results/`` and reused
unless ``--fresh`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from estilo import transfer
from estilo.config import StyleConfig
from estilo.io.image import to_pil, to_tensor
from estilo.vgg import VGG19Features
from estilo.weights import load_weights

RESULTS = ROOT / "benchmarks" / "results"
# ../shared/images from the repository root (or from a worktree one level further down);
# ESTILO_BENCH_IMAGES points elsewhere.
IMAGES = Path(os.environ.get("ESTILO_BENCH_IMAGES") or next(
    (p / "shared" / "images" for p in ROOT.parents if (p / "shared" / "images").is_dir()),
    ROOT.parent / "shared" / "images"))
CONTENT = IMAGES / "tubingen.jpg"
STYLE = IMAGES / "starry_night.jpg"

# pastiche's objective, read from pastiche/pastiche.py (PasticheArtist._calc_loss):
# content relu4_2 with layer weight 0.01; style relu1_1..relu5_1 with layer weight 10 / C^2;
# Gram = F F^T / (h*w); both terms MSE (means); max pooling; L-BFGS(lr=1, max_iter=1);
# the image starts as the content; images resized with PIL bilinear, the style to the
# content's pixel count; Caffe VGG19 weights on BGR 0-255 minus the mean pixel.
P_CONTENT = ("relu4_2",)
P_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
P_STYLE_WEIGHTS = tuple(10.0 / c ** 2 for c in (64, 128, 256, 512, 512))
P_CONTENT_WEIGHTS = (0.01,)


def pastiche_objective(**changes: Any) -> StyleConfig:
    """estilo configured with pastiche's objective (see the comment above)."""
    options: dict[str, Any] = dict(
        content_layers=P_CONTENT, content_layer_weights=P_CONTENT_WEIGHTS,
        style_layers=P_STYLE, style_layer_weights=P_STYLE_WEIGHTS,
        content_weight=1.0, style_weight=1.0, tv_weight=0.0,
        feature_norm="none", gram_norm="hw", pooling="max", init="content", weights="caffe")
    options.update(changes)
    return StyleConfig(**options)


# ---------------------------------------------------------------- machine and output
def machine() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    import pastiche
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "capability": torch.backends.cpu.get_cpu_capability(),
            "python": platform.python_version(), "torch": torch.__version__,
            "pastiche": pastiche.__version__, "estilo_commit": commit + ("+dirty" if dirty else ""),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def save(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    if path.exists():  # keep the rows of sizes not measured this time
        old = json.loads(path.read_text())
        for key, rows in figures.items():
            if isinstance(rows, dict) and isinstance(old.get(key), dict) and key != "defaults":
                figures[key] = {**old[key], **rows}
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# ---------------------------------------------------------------- pastiche
def pastiche_artist(size: int, **options: Any) -> Any:
    from pastiche.pastiche import PasticheArtist
    return PasticheArtist(str(CONTENT), [str(STYLE)], size=size, device="cpu", **options)


def pastiche_image(artist: Any) -> Image.Image:
    """pastiche's image as an 8-bit RGB picture, exactly as its save_image writes it."""
    from pastiche.pastiche import save_image
    tmp = RESULTS / ".pastiche-tmp.png"
    save_image(artist.pastiche, str(tmp))
    image = Image.open(tmp).convert("RGB")
    image.load()
    tmp.unlink()
    return image


def pastiche_reference(size: int, steps: int, fresh: bool) -> dict[str, Any]:
    """pastiche's default run (L-BFGS, its objective) at ``size``; cached on disk.

    The image is saved every 100 steps (``pastiche-<size>px-<step>.png``) with the wall and
    CPU seconds so far in the JSON, so an interrupted run still gives a reference.
    """
    stem = RESULTS / f"pastiche-{size}px"
    cached = stem.with_suffix(".json")
    if not fresh and cached.exists():
        record = json.loads(cached.read_text())
        if record["steps_done"] >= steps:
            return record
    torch.manual_seed(0)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    artist = pastiche_artist(size)
    record = {"size": size, "steps": steps, "steps_done": 0, "setup_s": time.perf_counter() - wall0,
              "checkpoints": {}, "machine": machine()}
    for step in range(1, steps + 1):
        artist.draw()
        if step % 100 == 0 or step == steps:
            pastiche_image(artist).save(f"{stem}-{step}.png")
            record["checkpoints"][str(step)] = {
                "wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
                "own_loss": artist.loss, "image": f"{stem.name}-{step}.png"}
            record["steps_done"] = step
            cached.write_text(json.dumps(record, indent=1) + "\n")
            print(f"pastiche {size}px step {step}: {record['checkpoints'][str(step)]}", flush=True)
    return record


# ---------------------------------------------------------------- one evaluator
class Evaluator:
    """pastiche's objective, computed by estilo's float32 VGG19 on 8-bit images at one size.

    The content and the style are resized as pastiche resizes them (PIL bilinear; the style
    to the content's pixel count), so the number means the same for both tools' outputs.
    """

    def __init__(self, size: int) -> None:
        weights = load_weights("caffe")
        self.net = VGG19Features(weights.convs, weights.preprocessing,
                                 layers=P_CONTENT + P_STYLE, pooling="max")
        content = Image.open(CONTENT).convert("RGB")
        style = Image.open(STYLE).convert("RGB")
        self.size = _long_side(content.size, size)
        pixels = self.size[0] * self.size[1]
        h = round((pixels * style.size[1] / style.size[0]) ** 0.5)
        style_size = (round(style.size[0] / style.size[1] * h), h)
        self.style_size = style_size
        # The very pictures the objective is defined on: estilo is given these (already at
        # the output size, so it resizes nothing at the last level) in the quality race.
        self.content_image = content.resize(self.size, Image.BILINEAR)
        self.style_image = style.resize(style_size, Image.BILINEAR)
        with torch.no_grad():
            self.content = self.net(to_tensor(self.content_image))
            feats = self.net(to_tensor(self.style_image))
            self.grams = {n: _gram(feats[n]) for n in P_STYLE}

    def terms(self, image: Image.Image) -> dict[str, float]:
        """{"content", "style", "total"} of pastiche's objective for an RGB picture."""
        if image.size != self.size:
            raise ValueError(f"evaluate at {self.size}, not {image.size}")
        with torch.no_grad():
            feats = self.net(to_tensor(image.convert("RGB")))
            content = sum(w * torch.nn.functional.mse_loss(feats[n], self.content[n])
                          for n, w in zip(P_CONTENT, P_CONTENT_WEIGHTS))
            style = sum(w * torch.nn.functional.mse_loss(_gram(feats[n]), self.grams[n])
                        for n, w in zip(P_STYLE, P_STYLE_WEIGHTS))
        return {"content": float(content), "style": float(style),
                "total": float(content) + float(style)}


def _gram(f: torch.Tensor) -> torch.Tensor:
    flat = f.reshape(f.shape[1], -1)
    return flat @ flat.T / flat.shape[1]


def _long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """pastiche's rounding of a size to a long side."""
    w, h = size
    if w >= h:
        return long_side, int(round(long_side / w * h))
    return int(round(long_side / h * w)), long_side


# ---------------------------------------------------------------- step
def estilo_step_times(size: int, steps: int, precision: str) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each L-BFGS step on pastiche's objective (first step dropped)."""
    config = pastiche_objective(size=size, optimizer="lbfgs", scales=1, iterations=steps + 1,
                                precision=precision, checkpointing="off")
    return _time_steps(iter(transfer.Stylizer().job(CONTENT, STYLE, config).steps()), steps + 1)


def pastiche_step_times(size: int, steps: int) -> tuple[list[float], list[float]]:
    artist = pastiche_artist(size)
    return _time_steps((artist.draw() for _ in range(steps + 1)), steps + 1)


def floor_times(size: int, repeats: int, dtype: torch.dtype) -> tuple[list[float], list[float]]:
    """One forward+backward of the truncated VGG19 (pastiche's layers), nothing else."""
    weights = load_weights("caffe")
    net = VGG19Features(weights.convs, weights.preprocessing, layers=P_CONTENT + P_STYLE,
                        pooling="max")
    w, h = _long_side(Image.open(CONTENT).size, size)
    x = torch.rand(1, 3, h, w, requires_grad=True)

    def once() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            feats = net(x)
        sum(f.float().square().mean() for f in feats.values()).backward()

    return _time_steps((once() for _ in range(repeats + 1)), repeats + 1)


def _time_steps(steps: Any, count: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        next(steps)
        now_wall, now_cpu = time.perf_counter(), time.process_time()
        walls.append(now_wall - wall)
        cpus.append(now_cpu - cpu)
        wall, cpu = now_wall, now_cpu
    return walls[1:], cpus[1:]


def step(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per step at each size: pastiche, estilo float32/bfloat16, the bare floor."""
    rows = {}
    for size in args.sizes:
        n = args.repeats if size <= 512 else max(1, args.repeats - 1)
        cases: dict[str, Callable[[], tuple[list[float], list[float]]]] = {
            "floor_float32": lambda: floor_times(size, n, torch.float32),
            "floor_bfloat16": lambda: floor_times(size, n, torch.bfloat16),
            "pastiche": lambda: pastiche_step_times(size, n),
            "estilo_float32": lambda: estilo_step_times(size, n, "float32"),
            "estilo_bfloat16": lambda: estilo_step_times(size, n, "bfloat16"),
        }
        row = {}
        for name, case in cases.items():
            walls, cpus = case()
            row[name] = {"wall_s": median(walls), "cpu_s": median(cpus), "repeats": len(walls)}
            print(f"{size}px {name}: {row[name]}", flush=True)
        row["ratios"] = {f"pastiche/{k}": row["pastiche"][t] / row[k][t]
                         for k in ("estilo_bfloat16", "estilo_float32") for t in ("wall_s",)}
        row["ratios"]["estilo_float32/floor_float32"] = (row["estilo_float32"]["wall_s"]
                                                         / row["floor_float32"]["wall_s"])
        row["ratios"]["estilo_bfloat16/floor_bfloat16"] = (row["estilo_bfloat16"]["wall_s"]
                                                           / row["floor_bfloat16"]["wall_s"])
        rows[str(size)] = row
    return {"step": rows}


# ---------------------------------------------------------------- time to quality
def reference(size: int, steps: int, fresh: bool) -> tuple[dict[str, Any], str]:
    """pastiche's latest cached checkpoint at ``size`` (run it first if there is none)."""
    cached = RESULTS / f"pastiche-{size}px.json"
    record = json.loads(cached.read_text()) if cached.exists() and not fresh else None
    last = str(record["steps_done"]) if record else ""
    if not record or not (RESULTS / record["checkpoints"][last]["image"]).exists():
        record = pastiche_reference(size, steps, fresh=True)  # the images are not in git
        last = str(record["steps_done"])
    return record["checkpoints"][last], last


def estilo_to_quality(size: int, target: float, evaluator: Evaluator, *, every: int,
                      budget_s: float, **options: Any) -> dict[str, Any]:
    """Run estilo on pastiche's objective until the evaluator says it reached ``target``.

    The evaluation (every ``every`` steps at the output size) is not counted in the time.
    """
    config = pastiche_objective(size=evaluator.size, style_size=max(evaluator.style_size), **options)
    job = transfer.Stylizer().job(evaluator.content_image, evaluator.style_image, config)
    spent = cpu_spent = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    terms: dict[str, float] = {}
    last = None
    for last in job.steps():
        final = last.level == last.levels - 1
        if final and (last.iteration % every == 0 or last.iteration == last.total):
            spent += time.perf_counter() - wall
            cpu_spent += time.process_time() - cpu
            picture = to_pil(last.image)
            terms = evaluator.terms(picture)
            print(f"estilo {size}px step {last.iteration}: {spent:.1f} s, {terms}", flush=True)
            if terms["total"] <= target or spent > budget_s:
                break
            wall, cpu = time.perf_counter(), time.process_time()
    assert last is not None
    picture.save(RESULTS / f"estilo-{size}px-pastiche-objective.png")
    job.stylizer._extractors.clear()
    return {"reached": terms["total"] <= target, "wall_s": spent, "cpu_s": cpu_spent,
            "steps": last.iteration, "terms": terms, "config": config.to_dict()}


def quality(args: argparse.Namespace) -> dict[str, Any]:
    """Time to pastiche's final objective value, and both tools' content/style distances."""
    out: dict[str, Any] = {}
    for size, steps in ((256, 1000), (512, 300)):
        if size not in args.sizes:
            continue
        evaluator = Evaluator(size)
        ref, done = reference(size, steps, args.fresh)
        ref_terms = evaluator.terms(Image.open(RESULTS / ref["image"]))
        estilo = estilo_to_quality(size, ref_terms["total"], evaluator, every=args.every,
                                   budget_s=ref["wall_s"],
                                   **{**QUALITY_OPTIONS, **QUALITY_SCHEDULES.get(size, {})})
        # The cached run may have shared the CPU differently: also time pastiche's steps now
        # and scale them to its run (the conservative ratio, used as the headline).
        walls, cpus = pastiche_step_times(size, args.repeats)
        now = {"wall_s": int(done) * median(walls), "cpu_s": int(done) * median(cpus)}
        out[str(size)] = {
            "pastiche": {"steps": int(done), "wall_s": ref["wall_s"], "cpu_s": ref["cpu_s"],
                         "terms": ref_terms, "steps_x_step_time_now": now},
            "estilo": estilo,
            "time_ratio": estilo["wall_s"] / now["wall_s"],
            "cpu_ratio": estilo["cpu_s"] / now["cpu_s"],
            "time_ratio_vs_cached_run": estilo["wall_s"] / ref["wall_s"]}
        print(f"{size}px: {out[str(size)]['time_ratio']:.3f} of pastiche's time", flush=True)
        side_by_side([Image.open(RESULTS / ref["image"]),
                      Image.open(RESULTS / f"estilo-{size}px-pastiche-objective.png")],
                     RESULTS / f"side-by-side-{size}px-pastiche-objective.png")
    return {"quality": out}


# estilo's settings for the time-to-quality race (pastiche's objective, estilo's machinery),
# by output size. The schedule was picked by a sweep on this machine (2026-11-27, 512 px,
# wall seconds to pastiche's value): start 128 px with 100 / 60 / 40 iterations per coarse
# level 35 / 34 / 35 s, 150 / 200: 41 / 49 s; start 256 px with 100: 30 s, 150: 40 s.
QUALITY_OPTIONS: dict[str, Any] = dict(optimizer="lbfgs", start_size=128, scale_iterations=100,
                                       iterations=2000, precision="auto")
QUALITY_SCHEDULES: dict[int, dict[str, Any]] = {256: {}, 512: {"start_size": 256}}


def defaults(args: argparse.Namespace) -> dict[str, Any]:
    """estilo's defaults at 512 px: wall time and content/style distances (one evaluator)."""
    evaluator = Evaluator(512)
    wall, cpu = time.perf_counter(), time.process_time()
    result = transfer.Stylizer().run(CONTENT, STYLE, StyleConfig(size=evaluator.size))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result.image.save(RESULTS / "estilo-512px-defaults.png")
    float32 = transfer.Stylizer().run(CONTENT, STYLE,
                                      StyleConfig(size=evaluator.size, precision="float32"))
    side_by_side([float32.image, result.image], RESULTS / "side-by-side-512px-float32-auto.png")
    figures = {"wall_s": wall, "cpu_s": cpu, "terms": evaluator.terms(result.image),
               "float32_terms": evaluator.terms(float32.image),
               "iterations": len(result.history), "config": result.config.to_dict()}
    print(f"estilo defaults 512px: {figures['wall_s']:.1f} s, {figures['terms']}", flush=True)
    ref = RESULTS / "pastiche-512px.json"
    if ref.exists():
        last = json.loads(ref.read_text())
        image = last["checkpoints"][str(last["steps_done"])]["image"]
        figures["pastiche_terms"] = evaluator.terms(Image.open(RESULTS / image))
    return {"defaults": figures}


def side_by_side(images: list[Image.Image], path: Path) -> None:
    """Save pictures next to each other (same height) for a visual comparison."""
    h = max(i.height for i in images)
    images = [i.resize((round(i.width * h / i.height), h)) for i in images]
    canvas = Image.new("RGB", (sum(i.width for i in images), h), "white")
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width
    canvas.save(path)


# ---------------------------------------------------------------- memory
def memory(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of each tool (a fresh subprocess per case, 2 steps) and estilo's estimate."""
    rows: dict[str, Any] = {}
    for size in args.sizes:
        row = {tool: _child_peak(tool, size) for tool in ("pastiche", "estilo")}
        row["ratio"] = row["estilo"]["peak_rss_bytes"] / row["pastiche"]["peak_rss_bytes"]
        rows[str(size)] = row
        print(f"{size}px memory: {row}", flush=True)
    return {"memory": rows}


def _child_peak(tool: str, size: int, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "_child", tool, str(size), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        return {"tool": tool, "size": size, "error": lines[-1], "returncode": done.returncode}
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(tool: str, size: int, steps: int = 2, *options: str) -> None:
    """Run a few steps of one tool and print its peak RSS as JSON (for :func:`memory`).

    ``tool``: ``pastiche``; ``estilo`` (pastiche's objective, L-BFGS, one level) or
    ``estilo-defaults`` (estilo's defaults); ``options`` are ``field=value`` overrides.
    """
    from estilo import memory
    from estilo.devices import compute_dtype
    wall = time.perf_counter()
    extra: dict[str, Any] = dict(o.split("=", 1) for o in options)
    extra = {k: int(v) if v.isdigit() else v for k, v in extra.items()}
    figures: dict[str, Any] = {}
    if tool == "pastiche":
        artist = pastiche_artist(size)
        for _ in range(steps):
            artist.draw()
    else:
        base = (StyleConfig() if tool == "estilo-defaults"
                else pastiche_objective(optimizer="lbfgs", scales=1))
        config = base.replace(size=size, upscale=True, iterations=steps, **extra)
        job = transfer.Stylizer().job(CONTENT, STYLE, config)
        device = torch.device("cpu")
        dtype = compute_dtype(device, config.precision)
        checkpointing = memory.plan(job.inputs, config, device, dtype).checkpointing
        for _ in job.steps():
            pass
        figures = {"size_px": job.inputs.size, "dtype": str(dtype), "checkpointing": checkpointing,
                   "estimate_bytes": memory.estimate_peak_bytes(
                       job.inputs.size, config.content_layers + config.style_layers, dtype=dtype,
                       checkpointing=checkpointing, style_pixels=1024 * 640)}
    # VmHWM, not ru_maxrss: a process started by vfork keeps its parent's high-water mark in
    # ru_maxrss (the parent here has torch loaded), while VmHWM is this image's own.
    peak = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text()
                .splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"tool": tool, "size": size, "steps": steps, "options": extra,
                      "peak_rss_bytes": peak, "wall_s": time.perf_counter() - wall, **figures}))


def prints(args: argparse.Namespace) -> dict[str, Any]:
    """Print sizes with estilo's defaults: two levels, one step at the output size."""
    rows = {}
    for size in args.sizes:
        rows[str(size)] = _child_peak("estilo-defaults", size, "1", "scales=2",
                                      "scale_iterations=1")
        print(f"{size}px: {rows[str(size)]}", flush=True)
    return {"print": rows}


# ---------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        child(argv[1], int(argv[2]), int(argv[3]) if len(argv) > 3 else 2, *argv[4:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("step", "quality", "defaults", "memory", "print", "all"))
    parser.add_argument("--sizes", type=lambda t: [int(s) for s in t.split(",")], default=None)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per case (median)")
    parser.add_argument("--every", type=int, default=5, help="quality: evaluate every N steps")
    parser.add_argument("--fresh", action="store_true", help="rerun pastiche's reference runs")
    args = parser.parse_args(argv)
    sizes = {"step": [256, 512, 1024], "quality": [256, 512], "memory": [512, 1024],
             "print": [2048, 4096]}
    for what in (("step", "quality", "defaults", "memory", "print") if args.what == "all"
                 else (args.what,)):
        run_args = argparse.Namespace(**{**vars(args), "sizes": args.sizes or sizes.get(what)})
        figures = {"step": step, "quality": quality, "defaults": defaults, "memory": memory,
                   "print": prints}[what](run_args)
        save(what, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
