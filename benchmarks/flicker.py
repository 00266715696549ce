"""Flicker of `estilo video` against frames stylised one by one: the temporal warping error.

The warping error of a clip is the mean absolute colour difference (0-255) between each
frame and the frame before it warped into it by the motion, over the pixels whose source lies
inside the frame before (what comes into view is left out). The clips here are camera moves
filmed by examples/make_clip.py, so the motion is the exact one, not an estimate: the error
measures the output, not a flow method. Three clips are measured:

- **content**: the input clip itself (the floor: resampling and compression only);
- **independent**: every frame stylised as a still (`Stylizer.run`, the options as given);
- **video**: `estilo video` (`estilo.video.video_job`), for each temporal weight and frame
  iteration count asked for.

With the time per frame: a still's (the independent frames' median) against the video's first
frame and its later frames (median).

    python benchmarks/flicker.py                       # the bundled clip, defaults
    python benchmarks/flicker.py --clip tubingen        # a pan over ../shared/images/tubingen.jpg
    python benchmarks/flicker.py --frames 12 --size 120 --temporal-weight 0 50 200 1000 \\
        --frame-iterations 5 10                         # a sweep (chooses the defaults)

Writes benchmarks/results/flicker-<clip>.json; `--strip PNG` also saves frames side by side
(content, independent, video) and `--keep DIR` the painted frames (bundled clip only: pictures
made from tubingen.jpg are never committed).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import logging
import math
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from estilo import StyleConfig, Stylizer
from estilo.demo import example_clip, example_paths
from estilo.io.image import to_tensor
from estilo.video import VideoOptions, flow, video_job
from estilo.video.media import open_clip, read_frames

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "images"
PHOTO_SIDE = 512  # the long side a photo is reduced to before it is filmed (see source_frames)


def make_clip_module() -> Any:
    spec = importlib.util.spec_from_file_location("make_clip", ROOT / "examples" / "make_clip.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def source_frames(name: str, frames: int, work: Path) -> tuple[list[Image.Image], tuple[int, int]]:
    """The clip's first ``frames`` frames (as a video decodes them) and its photo's size."""
    mc = make_clip_module()
    if name == "bundled":
        clip = open_clip(example_clip(), max_frames=10_000)
        with Image.open(example_paths()[0]) as photo:
            size = photo.size
        return list(itertools.islice(read_frames(clip), frames)), size
    photo_path = SHARED / "tubingen.jpg" if name == "tubingen" else Path(name)
    with Image.open(photo_path) as opened:
        # A lens blurs what the sensor cannot resolve; the camera here samples without
        # filtering, so a large photo (tubingen.jpg: 1024 px, four photo pixels a frame
        # pixel) aliases, and the content clip itself shimmers (warping error 10.6, against
        # 1.9 for the bundled clip). Reduced to at most PHOTO_SIDE px first, as the bundled one.
        photo = opened.convert("RGB").reduce(max(1, math.ceil(max(opened.size) / PHOTO_SIDE)))
        filmed = mc.film(photo)
        size = photo.size
    path = work / "filmed.mp4"
    mc.write(path, filmed, mc.FPS, audio=False)
    clip = open_clip(path, max_frames=10_000)
    return list(itertools.islice(read_frames(clip), frames)), size


def warping_error(frames: list[Image.Image], photo: tuple[int, int], total: int) -> float:
    """The mean warping error over consecutive frames, with the exact motion."""
    mc = make_clip_module()
    times = mc.times(total)
    size = frames[0].size
    errors = []
    for i, (a, b) in enumerate(itertools.pairwise(frames)):
        # frame i+1 -> frame i: the flow from t(i+1) to t(i)
        backward = mc.true_flow(times[i + 1], times[i], photo, mc.SIZE)
        if size != mc.SIZE:  # painted at another size: the same motion, scaled
            sx, sy = size[0] / mc.SIZE[0], size[1] / mc.SIZE[1]
            backward = _rescaled(backward, size, (sx, sy))
        weights = flow.inside(backward).astype(np.float32)
        errors.append(flow.warping_error(to_tensor(b), to_tensor(a), backward, weights))
    return float(np.mean(errors))


def _rescaled(field: np.ndarray, size: tuple[int, int], scale: tuple[float, float]) -> np.ndarray:
    t = torch.from_numpy(field).permute(2, 0, 1)[None]
    t = torch.nn.functional.interpolate(t, size=(size[1], size[0]), mode="bilinear",
                                        align_corners=True)[0].permute(1, 2, 0)
    return (t.numpy() * np.array(scale, np.float32)).astype(np.float32)


def moved_still(still: Image.Image, photo: tuple[int, int], frames: int,
                total: int) -> float:
    """The warping error of a clip that is one still moved with the camera (each frame the
    still resampled once by the exact motion): the floor of a stylised clip, what resampling
    fine brush strokes costs the measure. Pixels outside the still are left out."""
    mc = make_clip_module()
    times, size = mc.times(total), still.size
    scale = (size[0] / mc.SIZE[0], size[1] / mc.SIZE[1])
    base = to_tensor(still)

    def field(a: int, b: int) -> np.ndarray:
        f = mc.true_flow(times[a], times[b], photo, mc.SIZE)
        return f if size == mc.SIZE else _rescaled(f, size, scale)

    moved = [base] + [flow.sample(base, field(k, 0), "bicubic") for k in range(1, frames)]
    seen = [np.ones(base.shape[-2:], bool)] + [flow.inside(field(k, 0))
                                               for k in range(1, frames)]
    errors = []
    for k in range(1, frames):
        backward = field(k, k - 1)
        weights = (flow.inside(backward) & seen[k] & seen[k - 1]).astype(np.float32)
        errors.append(flow.warping_error(moved[k], moved[k - 1], backward, weights))
    return float(np.mean(errors))


def detail(frames: list[Image.Image]) -> float:
    """Mean absolute Laplacian (0-255): how much fine texture the frames have."""
    values = []
    for frame in frames:
        x = np.asarray(frame, dtype=np.float32)
        lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
        values.append(float(np.abs(lap).mean()))
    return float(np.mean(values))


def independent(frames: list[Image.Image], style: Path, config: StyleConfig,
                stylizer: Stylizer) -> tuple[list[Image.Image], list[float]]:
    painted, seconds = [], []
    for frame in frames:
        start = time.perf_counter()
        painted.append(stylizer.run(frame, style, config).image)
        seconds.append(time.perf_counter() - start)
    return painted, seconds


def coherent(folder: Path, style: Path, config: StyleConfig, options: VideoOptions,
             stylizer: Stylizer, out: Path) -> tuple[list[Image.Image], list[float]]:
    job = video_job(folder, style, out, config, options=options, stylizer=stylizer,
                    overwrite=True)
    painted, seconds = [], []
    for frame in job.frames():
        painted.append(frame.image)
        seconds.append(frame.seconds)
    return painted, seconds


def strip(rows: list[tuple[str, list[Image.Image]]], picks: list[int], path: Path) -> None:
    """Frames ``picks`` of each row side by side, one row per clip, 4 px gaps."""
    w, h = rows[0][1][0].size
    sheet = Image.new("RGB", (len(picks) * (w + 4) - 4, len(rows) * (h + 4) - 4), "white")
    for r, (_, frames) in enumerate(rows):
        for c, i in enumerate(picks):
            sheet.paste(frames[i], (c * (w + 4), r * (h + 4)))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="bundled", help="bundled, tubingen or a photo to film")
    parser.add_argument("--style", type=Path, default=example_paths()[1])
    parser.add_argument("--frames", type=int, default=24, help="first N frames (default 24)")
    parser.add_argument("--size", type=int, help="output long side (default: StyleConfig's)")
    parser.add_argument("--weights", default=None, help="weights source (default: StyleConfig's)")
    parser.add_argument("--temporal-weight", type=float, nargs="+")
    parser.add_argument("--frame-iterations", type=int, nargs="+")
    parser.add_argument("--no-independent", action="store_true")
    parser.add_argument("--strip", type=Path, help="save frames side by side here (PNG)")
    parser.add_argument("--keep", type=Path, help="keep the painted frames in this folder")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--warp", choices=["bilinear", "bicubic"], help="(experiments)")
    args = parser.parse_args()
    logging.getLogger("estilo.io.image").setLevel(logging.ERROR)  # "larger than the image"
    if args.clip != "bundled" and (args.strip or args.keep):
        parser.error("pictures are only saved for the bundled clip")
    changes = {k: v for k, v in (("size", args.size), ("weights", args.weights)) if v}
    config = StyleConfig(**changes)
    defaults = VideoOptions()
    weights = args.temporal_weight or [defaults.temporal_weight]
    iterations = args.frame_iterations or [defaults.frame_iterations]
    if args.warp:
        flow.WARP_MODE = args.warp
    stylizer = Stylizer()
    mc = make_clip_module()
    total = round(mc.FPS * mc.SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frames, photo = source_frames(args.clip, args.frames, work)
        folder = work / "frames"
        folder.mkdir()
        for i, frame in enumerate(frames, start=1):
            frame.save(folder / f"frame_{i:06d}.png")
        report: dict[str, Any] = {
            "clip": args.clip, "frames": len(frames), "size": list(frames[0].size),
            "config": {k: v for k, v in config.to_dict().items()
                       if k in ("size", "weights", "iterations", "scales", "style_weight",
                                "init", "optimizer", "pooling")},
            "machine": {"cpu": platform.processor() or platform.machine(),
                        "threads": torch.get_num_threads(),
                        "load": Path("/proc/loadavg").read_text().split()[:3]
                        if Path("/proc/loadavg").exists() else None},
            "commit": _commit(), "torch": torch.__version__,
            "content": {"warping_error": warping_error(frames, photo, total)}}
        rows = [("content", frames)]
        print(f"content clip: warping error {report['content']['warping_error']:.2f}", flush=True)
        if not args.no_independent:
            painted, seconds = independent(frames, args.style, config, stylizer)
            report["independent"] = {"warping_error": warping_error(painted, photo, total),
                                     "detail": detail(painted),
                                     "still_s": statistics.median(seconds),
                                     "seconds": [round(s, 3) for s in seconds]}
            rows.append(("independent", painted))
            report["moved_still"] = {"warping_error": moved_still(painted[0], photo,
                                                                  len(frames), total)}
            print(f"a still moved with the camera (the floor of a stylised clip): warping "
                  f"error {report['moved_still']['warping_error']:.2f}", flush=True)
            print(f"independent frames: warping error "
                  f"{report['independent']['warping_error']:.2f}, detail "
                  f"{report['independent']['detail']:.1f}, a still "
                  f"{report['independent']['still_s']:.2f} s", flush=True)
        report["video"] = []
        for weight, its in itertools.product(weights, iterations):
            options = VideoOptions(temporal_weight=weight, frame_iterations=its)
            painted, seconds = coherent(folder, args.style, config, options, stylizer,
                                        work / f"v{len(report['video'])}")
            entry = {"temporal_weight": weight, "frame_iterations": its,
                     "warping_error": warping_error(painted, photo, total),
                     "detail": detail(painted), "detail_last": detail(painted[-1:]),
                     "first_s": seconds[0], "later_s": statistics.median(seconds[1:]),
                     "seconds": [round(s, 3) for s in seconds]}
            if "independent" in report:
                entry["vs_independent"] = (report["independent"]["warping_error"]
                                           / entry["warping_error"])
                entry["time_vs_still"] = entry["later_s"] / report["independent"]["still_s"]
            report["video"].append(entry)
            rows.append((f"video {weight:g} {its}", painted))
            print(f"video (temporal weight {weight:g}, {its} iterations a frame): warping "
                  f"error {entry['warping_error']:.2f}"
                  + (f" ({entry['vs_independent']:.1f}x lower than independent)"
                     if "vs_independent" in entry else "")
                  + f", detail {entry['detail']:.1f} (last frame {entry['detail_last']:.1f})"
                  + f", first frame {entry['first_s']:.2f} s, later {entry['later_s']:.2f} s"
                  + (f" ({entry['time_vs_still']:.2f} of a still)"
                     if "time_vs_still" in entry else ""), flush=True)
            if args.keep:
                keep = args.keep / f"video-{weight:g}-{its}"
                keep.mkdir(parents=True, exist_ok=True)
                for i, image in enumerate(painted, start=1):
                    image.save(keep / f"frame_{i:06d}.png")
        if args.keep and "independent" in report:
            keep = args.keep / "independent"
            keep.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(rows[1][1], start=1):
                image.save(keep / f"frame_{i:06d}.png")
        if args.strip:
            n = len(frames)
            strip(rows, [0, n // 2, n - 1], args.strip)
    out = args.out or RESULTS / f"flicker-{Path(args.clip).stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
