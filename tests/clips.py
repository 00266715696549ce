"""Synthetic clips for the video tests: textures moved by a known flow, written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageFilter

AUDIO_RATE = 22050


def texture(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth random texture (H x W x 3 uint8): DIS flow finds its motion."""
    w, h = size
    rng = np.random.default_rng(seed)
    noise = Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
    return np.asarray(noise.filter(ImageFilter.GaussianBlur(2.0))).copy()


def panning(frames: int, size: tuple[int, int] = (64, 48), step: tuple[int, int] = (2, 1),
            seed: int = 0) -> list[Image.Image]:
    """Frames of a camera moving over a texture by ``step`` (dx, dy) px a frame: the
    content moves by -step."""
    w, h = size
    dx, dy = step
    big = texture((w + abs(dx) * frames + 1, h + abs(dy) * frames + 1), seed)
    return [Image.fromarray(big[i * dy:i * dy + h, i * dx:i * dx + w]) for i in range(frames)]


def write_clip(path: Path, frames: list[Image.Image], *, fps: int = 12, audio: bool = False,
               video: bool = True) -> Path:
    """An H.264 file (MP4, MOV, MKV by its suffix) of ``frames``, with a sine tone as audio."""
    with av.open(str(path), "w") as out:
        if video:
            stream = out.add_stream("libx264", rate=fps)
            stream.width, stream.height = frames[0].size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "8"}
        sound = out.add_stream("aac", rate=AUDIO_RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        if video:
            for index, image in enumerate(frames):
                frame = av.VideoFrame.from_image(image)
                frame.pts = index
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        if sound is not None:
            t = np.arange(int(AUDIO_RATE * len(frames) / fps)) / AUDIO_RATE
            tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t))
                                              .astype(np.float32)[None], format="flt",
                                              layout="mono")
            tone.sample_rate, tone.pts = AUDIO_RATE, 0
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE,
                                          frame_size=1024)
            for piece in [*resampler.resample(tone), *resampler.resample(None)]:
                out.mux(sound.encode(piece))
            out.mux(sound.encode(None))
    return path


def streams(path: Path) -> dict[str, tuple[str, float]]:
    """{type: (codec, seconds)} of a media file's streams."""
    found = {}
    with av.open(str(path)) as container:
        for s in container.streams:
            seconds = float(s.duration * s.time_base) if s.duration else float(
                (container.duration or 0) / 1e6)
            found[s.type] = (s.codec_context.name, seconds)
    return found


def decoded(path: Path) -> list[np.ndarray]:
    """Every frame of a video as H x W x 3 uint8."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
