"""Clips in and out: video files (PyAV, which ships FFmpeg), folders of numbered frames, and
the audio track carried across.

* :func:`open_clip` checks an input completely before any work (a video stream that decodes,
  its frame count against ``max_frames``, its frame size), so a bad clip fails in
  milliseconds with one line (:class:`VideoError`), like a bad image.
* :func:`read_frames` yields the frames as 8-bit RGB PIL images.
* :func:`write_clip` writes frames to a video (H.264 MP4/MOV/MKV, VP9 WebM, with the input's
  audio), an animated GIF or WebP (Pillow, one palette for the whole GIF so that it does not
  shimmer), atomically (:func:`estilo.files.write_atomic`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
from PIL import Image

from ..config import UserError
from ..files import sha256, write_atomic
from ..io.image import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, ImageError, image_files, load_image

log = logging.getLogger(__name__)

FILE_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
                ".webm": "webm", ".gif": "gif", ".webp": "webp"}
"""Output suffixes and their formats; a path without a suffix is a folder of frames."""
READ_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")
VIDEO_CODECS = {"mp4": "libx264", "mov": "libx264", "matroska": "libx264", "webm": "libvpx-vp9"}
AUDIO_CODECS = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus"}
DEFAULT_FPS = Fraction(24)  # a folder of frames' rate when none is given
DEFAULT_CRF = 18            # H.264/VP9 constant rate factor: visually lossless for most clips
FRAME_PATTERN = "frame_{:06d}.png"
_STILL_FORMATS = re.compile(r"(_pipe|image2)$")  # FFmpeg's demuxers of single images
_TEXT_FORMATS = ("tty",)  # FFmpeg's demuxers that render a text file as a "video"


class VideoError(UserError, ValueError):
    """A clip cannot be used: missing, not a video, no video stream, undecodable, too long."""


@dataclass(frozen=True)
class Clip:
    """A checked input clip: a video file or a folder of numbered frames."""

    path: Path
    frames: int
    size: tuple[int, int]           # (width, height) of its frames
    fps: Fraction
    audio: bool                     # has an audio track (video files only)
    sha256: str                     # of the file, or of the folder's frame files in order
    files: tuple[Path, ...] = ()    # a folder's frames, in order

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps)


def is_folder_output(path: Path) -> bool:
    """Whether an output path names a folder of frames (no suffix, or an existing folder)."""
    return path.is_dir() or not path.suffix


def output_format(path: Path) -> str | None:
    """The format of an output path (``mp4``, ``gif`` ...), None for a folder of frames.

    Raises:
        VideoError: an unknown suffix.
    """
    if is_folder_output(path):
        return None
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VideoError(f"cannot write {str(path)!r}: unknown video suffix {path.suffix!r}; use "
                         f"one of {', '.join(FILE_FORMATS)}, or a folder for numbered PNG frames")
    return fmt


def open_clip(path: str | Path, *, max_frames: int, fps: Fraction | None = None,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> Clip:
    """Check an input clip completely (its first frame decoded) and describe it.

    Args:
        path: a video file, or a folder of numbered frames (sorted by the number in their
            names; any image format estilo reads).
        max_frames: refuse a longer clip.
        fps: a folder's frame rate (default 24); ignored for a video file.
        max_pixels: refuse larger frames.

    Raises:
        VideoError: missing, not a video, no video stream, nothing decodes, too many frames
            or pixels.
    """
    source = Path(path).expanduser()
    if source.is_dir():
        clip = _open_folder(source, fps or DEFAULT_FPS)
    elif not source.exists():
        raise VideoError(f"cannot read {str(source)!r}: no such file or folder; check the path")
    else:
        clip = _open_file(source)
    w, h = clip.size
    if w * h > max_pixels:
        raise VideoError(f"{str(source)!r} has {w}x{h} frames, over the limit of "
                         f"{max_pixels // 1_000_000} megapixels; scale it down first")
    if clip.frames > max_frames:
        raise VideoError(f"{str(source)!r} has {clip.frames} frames ({clip.seconds:.1f} s at "
                         f"{float(clip.fps):.3g} fps), more than --max-frames {max_frames}; "
                         f"give --max-frames {clip.frames} to stylise all of it, or cut it")
    return clip


def _open_folder(folder: Path, fps: Fraction) -> Clip:
    files = sorted(image_files(folder), key=_frame_number)
    if not files:
        raise VideoError(f"folder {str(folder)!r} has no frames ({', '.join(IMAGE_SUFFIXES)}); "
                         "give a video file or a folder of numbered images")
    try:
        first = load_image(files[0])
    except ImageError as e:
        raise VideoError(f"frame 1 of {str(folder)!r}: {e}") from None
    digest = hashlib.sha256()
    for file in files:
        digest.update(sha256(file).encode())
    return Clip(folder, len(files), first.size, fps, False, digest.hexdigest(), tuple(files))


def _frame_number(path: Path) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


def _open_file(path: Path) -> Clip:
    name = repr(str(path))
    try:
        with av.open(str(path)) as container:
            if container.format.name in _TEXT_FORMATS:
                raise VideoError(f"{name} is a text file, not a video; give an MP4, WebM, MOV, "
                                 "MKV, AVI or GIF file, or a folder of frames")
            if _STILL_FORMATS.search(container.format.name or ""):
                _still(path)
            if not container.streams.video:
                raise VideoError(f"{name} has no video stream (audio only?); give a video file")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
            audio = bool(container.streams.audio)
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoError(f"{name} has a video stream but no frame decodes; re-encode it")
            size = (first.width, first.height)
            container.seek(0)
            frames = sum(1 for p in container.demux(stream) if p.size)
    except av.FFmpegError as e:
        raise VideoError(f"cannot decode {name} as a video ({_reason(e)}); give an MP4, WebM, "
                         "MOV, MKV, AVI or GIF file, or a folder of frames") from None
    return Clip(path, max(frames, 1), size, Fraction(rate), audio, sha256(path))


def _still(path: Path) -> None:
    """Refuse a still image as a clip, or (when it does not even decode) a file that is not one."""
    try:
        load_image(path)
    except ImageError:
        raise VideoError(f"cannot decode {str(path)!r} as a video (nor as an image); give an "
                         "MP4, WebM, MOV, MKV, AVI or GIF file, or a folder of frames") from None
    raise VideoError(f"{str(path)!r} is a still image, not a video; paint it with "
                     "estilo CONTENT STYLE -o OUT.png")


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return str(text).strip().rstrip(".").splitlines()[0] if text else type(error).__name__


def read_frames(clip: Clip) -> Iterator[Image.Image]:
    """The clip's frames in order, as 8-bit RGB PIL images.

    Raises:
        VideoError: a frame fails to decode (a truncated file, a broken frame in a folder).
    """
    if clip.files:
        for index, file in enumerate(clip.files, start=1):
            try:
                yield load_image(file)
            except ImageError as e:
                raise VideoError(f"frame {index} of {str(clip.path)!r}: {e}") from None
        return
    try:
        with av.open(str(clip.path)) as container:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_image().convert("RGB")
    except av.FFmpegError as e:
        raise VideoError(f"cannot decode {str(clip.path)!r} to the end ({_reason(e)}); the "
                         "frames done so far are kept") from None


def write_clip(path: Path, frames: Sequence[Path], fps: Fraction, *, audio: Clip | None = None,
               crf: int = DEFAULT_CRF) -> Path:
    """Write PNG frames to a video, GIF or WebP at ``path``, atomically.

    Args:
        path: the output; its suffix chooses the format (:data:`FILE_FORMATS`).
        frames: the frames' files, in order, all of one size.
        fps: the frame rate.
        audio: the clip whose audio track to carry over (videos only; GIF and WebP have none).
        crf: quality of H.264 and VP9 (0 best, 51 worst; 18 looks lossless).
    """
    fmt = output_format(path)
    if fmt is None:
        raise VideoError(f"{str(path)!r} is a folder: its frames are already written")
    if audio is not None and audio.audio and fmt in ("gif", "webp"):
        log.warning("%s cannot carry sound: the audio track is left out", fmt.upper())
    if fmt in ("gif", "webp"):
        return write_atomic(path, lambda fh: _write_animation(fh, fmt, frames, fps))
    source = audio.path if audio is not None and audio.audio and not audio.files else None
    return write_atomic(path, lambda fh: _write_video(fh, fmt, frames, fps, source, crf))


def _write_animation(fh: BinaryIO, fmt: str, frames: Sequence[Path], fps: Fraction) -> None:
    images = [Image.open(f).convert("RGB") for f in frames]
    if fmt == "webp":
        images[0].save(fh, format="WEBP", save_all=True, append_images=images[1:],
                       duration=frame_durations(len(images), fps, 1), loop=0, quality=90)
        return
    # One palette for the whole clip, without dithering: per-frame palettes and dither
    # patterns change from frame to frame and make a GIF shimmer.
    sheet = Image.new("RGB", (images[0].width, images[0].height * min(len(images), 8)))
    for i, image in enumerate(images[:: max(1, len(images) // 8)][:8]):
        sheet.paste(image, (0, i * images[0].height))
    palette = sheet.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    paletted = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    paletted[0].save(fh, format="GIF", save_all=True, append_images=paletted[1:],
                     duration=frame_durations(len(images), fps, 10), loop=0, optimize=False,
                     disposal=1)


def frame_durations(count: int, fps: Fraction, unit: int) -> list[int]:
    """Each frame's duration in ms, a multiple of ``unit`` ms (GIF stores hundredths of a
    second): rounded so that the frames end at their exact times, so that the clip plays at
    ``fps`` on average (24 fps in a GIF: 40, 40, 40, 50 ms ..., not 40 ms, 25 fps)."""
    ends = [round(k * 1000 / unit / fps) * unit for k in range(count + 1)]
    return [max(unit, b - a) for a, b in itertools.pairwise(ends)]


def _write_video(fh: BinaryIO, fmt: str, frames: Sequence[Path], fps: Fraction,
                 audio_source: Path | None, crf: int) -> None:
    with Image.open(frames[0]) as first:
        width, height = first.size
    # 4:2:0 chroma needs even sides: the last column or row of an odd size is left out.
    width, height = width - width % 2, height - height % 2
    with av.open(fh, "w", format=fmt) as out:
        video: Any = out.add_stream(VIDEO_CODECS[fmt], rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf), **({"b": "0"} if fmt == "webm" else {})}
        if audio_source is not None:
            _copy_audio(audio_source, out, fmt)
        for index, file in enumerate(frames):
            with Image.open(file) as image:
                picture = image.convert("RGB").crop((0, 0, width, height))
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))


def _copy_audio(source: Path, out: Any, fmt: str) -> None:
    """Carry ``source``'s first audio track into ``out``: copied as it is when the container
    takes its codec, else re-encoded (AAC, or Opus for WebM)."""
    with av.open(str(source)) as container:
        stream = container.streams.audio[0]
        if stream.codec_context.name in out.supported_codecs:
            target = out.add_stream_from_template(stream)
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue
                packet.stream = target
                out.mux(packet)
            return
        _transcode_audio(container, stream, out, fmt)


def _transcode_audio(container: Any, stream: Any, out: Any, fmt: str) -> None:
    rate = 48000 if fmt == "webm" else (stream.codec_context.sample_rate or 48000)
    target = out.add_stream(AUDIO_CODECS[fmt], rate=rate)
    target.layout = "stereo" if stream.codec_context.channels > 1 else "mono"
    resampler = av.AudioResampler(format=target.format.name, layout=target.layout.name,
                                  rate=rate, frame_size=target.frame_size or None)
    for frame in container.decode(stream):
        frame.pts = None
        for piece in resampler.resample(frame):
            out.mux(target.encode(piece))
    for piece in resampler.resample(None):
        out.mux(target.encode(piece))
    out.mux(target.encode(None))


def write_frames(frames: Iterable[Image.Image], folder: Path) -> list[Path]:
    """Save frames as numbered PNGs (``frame_000001.png`` ...) in ``folder``, each atomically."""
    written = []
    for index, image in enumerate(frames, start=1):
        written.append(write_atomic(folder / FRAME_PATTERN.format(index), _png(image)))
    return written


def _png(image: Image.Image) -> Callable[[BinaryIO], None]:
    def write(fh: BinaryIO) -> None:
        image.save(fh, format="PNG")

    return write
