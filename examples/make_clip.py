"""Film the bundled example clip: a camera move (pan and zoom) over a photo, with sound.

Writes src/estilo/data/examples/pan.mp4 (package data, so every install has it): 2.5 s at
24 fps, 240 x 160 px, H.264, over the bundled cat photo (`content.jpg`), with a soft
generated chord as its audio track (AAC), so that `estilo video` shows the sound kept.

Every frame is the photo seen through an affine camera (scale s, offset o): frame pixel u
shows photo point s * u + o (pixel centres at whole numbers), sampled bicubically. The true
motion between any two frames is therefore known exactly (:func:`true_flow`), which the
flicker benchmark (benchmarks/flicker.py) uses. `--photo` films another picture the same way
(the benchmark films a pan over tubingen.jpg at run time; such clips are never committed).

    python examples/make_clip.py                      # the bundled clip
    python examples/make_clip.py --photo P.jpg -o clip.mp4 --size 320x240 --no-audio

Needs numpy, torch, Pillow and PyAV (`pip install 'estilo[video]'`); deterministic.
"""

from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "src" / "estilo" / "data" / "examples"
FPS, SECONDS, SIZE = 24, 2.5, (240, 160)
ZOOM = 1.3     # the window's width shrinks by this factor over the clip (zoom in)
START_WIDTH = 0.92  # the first window's width, as a share of the photo's
AUDIO_RATE = 44100


def camera(t: float, photo: tuple[int, int], size: tuple[int, int]) -> tuple[float, float, float]:
    """(s, ox, oy) at time ``t`` in [0, 1]: frame pixel (x, y) shows photo point
    (s * x + ox, s * y + oy). The window zooms in and pans from left to right, eased."""
    (pw, ph), (w, h) = photo, size
    e = 0.5 - 0.5 * math.cos(math.pi * t)   # ease in and out
    width = (pw - 1) * START_WIDTH / (1 + (ZOOM - 1) * e)
    s = width / (w - 1)
    height = s * (h - 1)
    cx = width / 2 + e * (pw - 1 - width)                # left edge to right edge
    cy = (ph - 1) / 2 + (0.18 - 0.3 * e) * (ph - 1 - height)
    return s, cx - width / 2, cy - height / 2


def times(frames: int) -> list[float]:
    return [i / max(frames - 1, 1) for i in range(frames)]


def true_flow(t0: float, t1: float, photo: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The exact flow from the frame at ``t0`` to the frame at ``t1``: H x W x 2 (dx, dy),
    where pixel (x, y) of the first frame is in the second, minus (x, y)."""
    s0, ox0, oy0 = camera(t0, photo, size)
    s1, ox1, oy1 = camera(t1, photo, size)
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    x1 = (s0 * xs + ox0 - ox1) / s1
    y1 = (s0 * ys + oy0 - oy1) / s1
    return np.stack([x1 - xs, y1 - ys], axis=-1).astype(np.float32)


def render(photo: Image.Image, t: float, size: tuple[int, int]) -> Image.Image:
    """The frame at time ``t``: the photo sampled through :func:`camera`."""
    pixels = torch.from_numpy(np.array(photo.convert("RGB"), dtype=np.float32) / 255.0)
    image = pixels.permute(2, 0, 1).unsqueeze(0)
    s, ox, oy = camera(t, photo.size, size)
    (pw, ph), (w, h) = photo.size, size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    gx = (s * xs + ox) * 2 / (pw - 1) - 1
    gy = (s * ys + oy) * 2 / (ph - 1) - 1
    grid = torch.stack([gx, gy], -1).float().unsqueeze(0)
    out = F.grid_sample(image, grid, mode="bicubic", padding_mode="border", align_corners=True)
    array = (out[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(array)


def chord(seconds: float) -> np.ndarray:
    """A soft A-major chord that swells and fades: mono float32 samples in [-1, 1]."""
    t = np.arange(int(AUDIO_RATE * seconds)) / AUDIO_RATE
    notes = [220.0, 277.18, 329.63, 440.0]
    sound = sum(np.sin(2 * np.pi * f * t) * (0.6 ** k) for k, f in enumerate(notes))
    envelope = np.sin(np.pi * t / seconds) ** 2
    return (0.2 * sound * envelope).astype(np.float32)


def write(path: Path, frames: list[Image.Image], fps: int, audio: bool) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height = frames[0].size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "12", "preset": "slow"}
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=AUDIO_RATE)
            sound.layout = "mono"
            sound.bit_rate = 48000
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = chord(len(frames) / fps)[None]
            block = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            block.sample_rate = AUDIO_RATE
            block.pts = 0
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE,
                                          frame_size=1024)
            for piece in [*resampler.resample(block), *resampler.resample(None)]:
                out.mux(sound.encode(piece))
            out.mux(sound.encode(None))


def film(photo: Image.Image, *, size: tuple[int, int] = SIZE, fps: int = FPS,
         seconds: float = SECONDS) -> list[Image.Image]:
    """Every frame of the camera move over ``photo``."""
    return [render(photo, t, size) for t in times(round(fps * seconds))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=EXAMPLES / "content.jpg")
    parser.add_argument("-o", "--output", type=Path, default=EXAMPLES / "pan.mp4")
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="WxH")
    parser.add_argument("--fps", type=int, default=FPS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--no-audio", dest="audio", action="store_false")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    assert len(size) == 2
    with Image.open(args.photo) as photo:
        frames = film(photo, size=(size[0], size[1]), fps=args.fps, seconds=args.seconds)
    write(args.output, frames, args.fps, args.audio)
    print(f"wrote {args.output}: {len(frames)} frames of {size[0]}x{size[1]} at "
          f"{Fraction(args.fps)} fps{', with sound' if args.audio else ''}")


if __name__ == "__main__":
    main()
