"""Image input for estilo: the one place where files and PIL images become tensors and back.

Conventions:

* Every input goes through :func:`load_image`, which validates and *fully* decodes it before
  any model work starts, and returns an 8-bit sRGB ``RGB`` PIL image with an empty ``info``
  (no EXIF, ICC profile or transparency carried over). Every coercion (animated input, CMYK,
  16-bit, broken profile) is logged as a warning on this module's logger.
* Every input problem raises :class:`ImageError`, a ``ValueError`` whose text is one line
  that names the path (``repr``) and says what to do.
* Tensors are float32 RGB in ``[0, 1]``, shape ``1x3xHxW`` (NCHW); sizes are ``(width, height)``
  as in Pillow.
* Pillow's global settings (``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``)
  are never changed; our own pixel limit is checked from the header before decoding.

Writing files (output paths, atomic saves, embedded parameters) lives in :mod:`estilo.output`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TypeGuard, cast

import torch
from PIL import Image, ImageCms, ImageOps

from ..config import UserError

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS: int = 50_000_000  # our own decode limit, checked from the header
MIN_SIDE: int = 32  # minimum working short side in px for VGG19
ASPECT_TOLERANCE = 0.02  # relative difference of two width/height ratios still "the same"
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}
"""The file name suffixes of the formats read (:data:`ALLOWED_FORMATS`), with their format."""
IMAGE_SUFFIXES = tuple(SUFFIXES)
"""Which files in a folder are images (a folder of styles, a batch's inputs)."""
WRITABLE_SUFFIXES = {s: SUFFIXES[s] for s in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff",
                                              ".bmp")}
"""The suffixes an output may have (every format read but GIF), with their format."""

Source = str | os.PathLike[str] | Image.Image | bytes

_HEAD_BYTES = 1024  # enough to sniff HEIC/SVG/PDF/EPS signatures
_HEIF_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"avif"}
_NEVER_OPEN = {"EPS", "PDF"}  # EPS runs Ghostscript (Pillow security.rst E-2)
_CONVERT_HINT = f"allowed formats: {', '.join(ALLOWED_FORMATS)}; convert it to PNG or JPEG"
_REEXPORT = "re-export it as an 8-bit PNG or JPEG"
# Whatever its name says (a notes file called .png): not something to convert, but to replace.
_NOT_AN_IMAGE = ("check that it is the image you meant (its name may not match its content); "
                 "re-export it as PNG or JPEG, or give the right file")
_CONVERT_ERRORS = (
    OSError, ValueError, SyntaxError, struct.error, EOFError,
    IndexError, ZeroDivisionError, MemoryError, TypeError, KeyError,
)  # fmt: skip


class ImageError(UserError, ValueError):
    """An input image is missing, unreadable, unsupported, corrupt, too large or too small."""


# --- loading ---------------------------------------------------------------------------------


def load_image(
    source: Source,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reduce_to: int | None = None,
) -> Image.Image:
    """Open, validate and fully decode an image into 8-bit sRGB RGB.

    Applies EXIF orientation, converts through an embedded ICC profile to sRGB, rescales
    16-bit/``I``/``F`` data to 8 bits (``I;16``: /257; ``I``: kept if max <= 255, /257 if
    max <= 65535, else scaled by its max; ``F``: x255 if max <= 1.0, else clipped to 0..255),
    and composites any transparency onto ``background``. Animated files give their first frame.

    Args:
        source: A path (``~`` expanded), the file's raw bytes, or a PIL image (then only the
            conversions apply, not the format or size checks).
        background: RGB colour that transparent pixels are composited onto.
        max_pixels: Refuse images with more pixels than this, checked before decoding.
        reduce_to: For an image that will be downsized anyway: a JPEG is decoded at 1/2,
            1/4 or 1/8 scale, the smallest that keeps both sides at least this many px
            (Pillow's ``draft``: a 48 MP photo in a fraction of the time and memory).

    Returns:
        A fully loaded ``RGB`` image with an empty ``info`` dict.

    Raises:
        ImageError: For any problem with the input (one line naming it and what to do).
    """
    _check_background(background)
    with _logged_warnings():
        im, name = _decode(source, max_pixels, reduce_to)
        try:
            colour, alpha = _split_alpha(im)
            out = _composite(_colour_to_rgb(colour, name), alpha, background)
        except _CONVERT_ERRORS as exc:
            raise ImageError(
                f"cannot convert {name} to RGB ({describe_error(exc)}); {_REEXPORT}"
            ) from exc
    out.info = {}
    return out


def load_alpha(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               reduce_to: int | None = None) -> Image.Image | None:
    """Return the image's alpha channel, or None when it has no (non-opaque) transparency.

    Args:
        source: As for :func:`load_image`.
        max_pixels: As for :func:`load_image`.
        reduce_to: As for :func:`load_image`.

    Returns:
        An ``L`` image the size of the (EXIF-oriented) image, or None if fully opaque.

    Raises:
        ImageError: As for :func:`load_image`.
    """
    with _logged_warnings():
        im, name = _decode(source, max_pixels, reduce_to)
        try:
            alpha = _split_alpha(im)[1]
        except _CONVERT_ERRORS as exc:
            raise ImageError(
                f"cannot read the alpha of {name} ({describe_error(exc)}); {_REEXPORT}"
            ) from exc
    if alpha is None or alpha.getextrema()[0] == 255:
        return None
    alpha.info = {}
    return alpha


@contextlib.contextmanager
def _logged_warnings() -> Iterator[None]:
    """Turn Pillow's bomb warning into an error and log every other warning raised inside."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        finally:
            for item in caught:
                logger.warning("%s", item.message)


def _decode(source: Source, max_pixels: int,
            reduce_to: int | None = None) -> tuple[Image.Image, str]:
    """Validate and fully decode ``source``; return an in-memory oriented copy and its name."""
    if isinstance(source, Image.Image):
        return _finish(source, "<PIL image>"), "<PIL image>"
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_magic(data[:_HEAD_BYTES], "<bytes>")
        return _decode_stream(io.BytesIO(data), "<bytes>", max_pixels, reduce_to), "<bytes>"
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"load_image expects a path, bytes or PIL image, not {type(source).__name__}"
        )
    path = Path(source).expanduser()
    name = repr(str(path))
    try:
        _check_input_file(path, name)
        with path.open("rb") as fh:
            _check_magic(fh.read(_HEAD_BYTES), name)
            fh.seek(0)
            return _decode_stream(fh, name, max_pixels, reduce_to), name
    except OSError as exc:
        raise ImageError(
            f"cannot read {name} ({describe_error(exc)}); check its permissions"
        ) from exc


def _check_input_file(path: Path, name: str) -> None:
    """Refuse folders, missing paths and non-regular files (FIFOs, devices) before opening."""
    if path.is_dir():
        raise ImageError(f"input is a directory, not an image file: {name}; give an image file")
    if not path.exists():
        raise ImageError(f"input image not found: {name}; check the path")
    if not path.is_file():
        raise ImageError(f"input is not a regular file: {name}; give an image file")


def _check_magic(head: bytes, name: str) -> None:
    """Give specific messages for empty files and known non-raster formats."""
    if not head:
        raise ImageError(f"not a supported image: {name} (the file is empty); {_CONVERT_HINT}")
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        raise ImageError(
            f"not a supported image: {name} (HEIC/HEIF/AVIF is not supported); "
            "convert it to JPEG or PNG"
        )
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    kinds = {
        "SVG": text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text),
        "PDF": head.startswith(b"%PDF"),
        "EPS/PostScript": head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")),
    }
    for kind, found in kinds.items():
        if found:
            raise ImageError(
                f"not a supported image: {name} ({kind}: vector/document format not "
                "supported); export it as PNG or JPEG"
            )


def _decode_stream(fp: IO[bytes], name: str, max_pixels: int,
                   reduce_to: int | None = None) -> Image.Image:
    """Open ``fp`` with the format allowlist, check its size, decode it (a JPEG reduced as
    ``reduce_to`` allows) and orient it."""
    im = _open(fp, name)
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise ImageError(
                f"image too large: {name} is {width}x{height} = {width * height:,} pixels, above "
                f"the limit of {max_pixels:,}; downscale it first"
            )
        if reduce_to is not None and im.format == "JPEG":
            im.draft(None, (reduce_to, reduce_to))
        out = _finish(im, name)
        if _is_animated(im):  # asked after decoding frame 0: it seeks ahead in the file
            logger.warning("%s has several frames (animated): using the first", name)
        return out


def _is_animated(im: Image.Image) -> bool:
    """Whether ``im`` has more than one frame; a corrupt later frame counts as 'no'."""
    try:
        return bool(getattr(im, "is_animated", False))
    except Exception:  # noqa: BLE001 -- Pillow plugins raise many undocumented types
        return False


def _open(fp: IO[bytes], name: str) -> Image.Image:
    """``Image.open`` with the allowlist; every failure becomes an ImageError."""
    try:
        return Image.open(fp, formats=list(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"image too large: {name} ({describe_error(exc)}); downscale it first"
        ) from exc
    except Exception as exc:  # Pillow plugins raise a wide, undocumented set of exceptions
        fp.seek(0)
        detected = _detect_format(fp)
        what = f"detected format {detected}" if detected else "unrecognised or corrupt content"
        hint = _CONVERT_HINT if detected else _NOT_AN_IMAGE
        raise ImageError(f"not a supported image: {name} ({what}); {hint}") from exc


@functools.cache
def _detect_formats() -> list[str]:
    """All formats Pillow can identify, minus the dangerous ones (used for messages only)."""
    Image.init()
    return [fmt for fmt in Image.OPEN if fmt not in _NEVER_OPEN]


def _detect_format(fp: IO[bytes]) -> str | None:
    """Name the file's real format (header only, never decoded), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. deprecation notices of formats we refuse
            with Image.open(fp, formats=_detect_formats()) as im:
                fmt: str | None = im.format
                return fmt
    except Exception:  # noqa: BLE001 -- only used to word a message; anything may fail here
        return None


def _finish(im: Image.Image, name: str) -> Image.Image:
    """Decode the pixels now (inside a try) and return an EXIF-oriented in-memory copy."""
    try:
        im.load()
    except Exception as exc:  # Pillow plugins raise a wide, undocumented set of exceptions
        if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
            raise ImageError(
                f"image too large: {name} ({describe_error(exc)}); downscale it first"
            ) from exc
        raise ImageError(
            f"truncated or corrupt image: {name} ({describe_error(exc)}); "
            "re-export or re-download the file"
        ) from exc
    try:
        return ImageOps.exif_transpose(im)
    except Exception as exc:  # noqa: BLE001 -- malformed EXIF must not make a valid image unusable
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", name, describe_error(exc))
        return im.copy()


# --- mode conversion ------------------------------------------------------------------------


def _split_alpha(im: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Separate colour and alpha ('L'); un-premultiplies La/RGBa, expands P/PA/tRNS."""
    if im.mode in ("La", "RGBa"):
        im = im.convert("LA" if im.mode == "La" else "RGBA")
    if im.mode in ("LA", "RGBA"):
        return im.convert(im.mode[:-1]), im.getchannel("A")
    if im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
        return _split_alpha(im.convert("RGBA"))
    if im.mode == "P":
        return im.convert("RGB"), None
    if "transparency" in im.info:
        alpha = _key_alpha(im, im.info["transparency"])
        colour = im.copy()
        del colour.info["transparency"]
        return colour, alpha
    return im, None


def _key_alpha(im: Image.Image, key: int) -> Image.Image:
    """Alpha from a tRNS colour key: 0 where a pixel equals ``key``, else 255."""
    if im.mode.startswith("I"):  # Pillow would compare 16/32-bit keys after clipping to 8 bits
        values = torch.frombuffer(bytearray(im.convert("I").tobytes()), dtype=torch.int32)
        mask = (values != int(key)).to(torch.uint8) * 255
        return Image.frombytes("L", im.size, _tensor_bytes(mask))
    return im.convert("RGBA").getchannel("A")


def _colour_to_rgb(im: Image.Image, name: str) -> Image.Image:
    """Convert an alpha-free image of any mode to 8-bit sRGB RGB."""
    im = _to_8bit(im, name)
    if im.mode == "1":
        im = im.convert("L")
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("L", "RGB", "CMYK"):
        converted = _icc_to_srgb(im, icc, name)
        if converted is not None:
            return converted
    if im.mode == "CMYK":
        logger.warning("%s: CMYK without a usable colour profile: colours approximate", name)
    return im.convert("RGB")


def _to_8bit(im: Image.Image, name: str) -> Image.Image:
    """Scale (not clip) I;16*, I and F images to 8-bit L; other modes pass through."""
    if im.mode.startswith("I;16"):
        scale = 1 / 257
    elif im.mode in ("I", "F"):
        high = cast(tuple[float, float], im.getextrema())[1]
        if im.mode == "F":
            scale = 255.0 if high <= 1.0 else 1.0  # F above 1.0 is taken as 0..255 and clipped
        else:
            scale = 1.0 if high <= 255 else 1 / 257 if high <= 65535 else 255 / high
    else:
        return im
    logger.warning("%s: %s image reduced to 8 bits per channel", name, im.mode)
    scaled = im.convert("I").convert("F") if im.mode != "F" else im
    out = scaled.point(lambda v: v * scale + 0.5).convert("L")  # +0.5: round, not truncate
    out.info = dict(im.info)
    return out


def _icc_to_srgb(im: Image.Image, icc: bytes, name: str) -> Image.Image | None:
    """Convert through the embedded profile to sRGB; None (and a warning) if it is unusable."""
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, src, srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        logger.warning("%s: ignoring a broken colour profile (%s)", name, describe_error(exc))
        return None


@functools.cache
def srgb_profile() -> ImageCms.ImageCmsProfile:
    """The sRGB profile, built once on first use (not at import)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _composite(
    rgb: Image.Image, alpha: Image.Image | None, background: tuple[int, int, int]
) -> Image.Image:
    """Composite ``rgb`` with ``alpha`` over a solid ``background``; opaque input passes through."""
    if alpha is None or alpha.getextrema()[0] == 255:
        return rgb
    top = rgb.convert("RGBA")
    top.putalpha(alpha)
    base = Image.new("RGBA", rgb.size, (*background, 255))
    return Image.alpha_composite(base, top).convert("RGB")


def _check_background(background: tuple[int, int, int]) -> None:
    """Refuse anything but three ints in 0..255."""
    ok = len(background) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in background)
    if not ok:
        raise ValueError(f"background must be three integers in 0..255, not {background!r}")


def describe_error(exc: BaseException) -> str:
    """``Type: message`` on one line (for error messages and logs)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def image_files(folder: Path) -> list[Path]:
    """The image files in ``folder`` (by suffix, hidden files skipped), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith(".") and p.is_file())


# --- sizes and tensors -----------------------------------------------------------------------


def same_aspect(a: tuple[int, int], b: tuple[int, int],
                tolerance: float = ASPECT_TOLERANCE) -> bool:
    """Whether sizes ``a`` and ``b`` (w, h) have the same aspect ratio, within ``tolerance``."""
    return abs((a[0] / a[1]) / (b[0] / b[1]) - 1.0) <= tolerance


def working_size(
    size: tuple[int, int],
    target: int | tuple[int, int] | None,
    *,
    allow_upscale: bool = False,
    min_side: int = MIN_SIDE,
    warn: bool = True,
) -> tuple[int, int]:
    """Compute the ``(width, height)`` to work at.

    Args:
        size: The image's ``(width, height)``.
        target: Long side in px (aspect kept, rounded), an exact ``(width, height)``, or None
            for the image's own size.
        allow_upscale: Allow a target larger than the image; otherwise the image's own size is
            used and (``warn``) a warning is logged.
        min_side: Smallest allowed short side of the result, in px.
        warn: Say so when the image's size replaces a larger target (False: the target was
            not asked for, e.g. the default size).

    Returns:
        The working ``(width, height)``.

    Raises:
        ImageError: If the result's short side is below ``min_side`` (also after resizing an
            extreme aspect ratio).
        ValueError: If ``target`` is not a positive int or a pair of positive ints.
    """
    width, height = size
    new = _target_size(size, target)
    if not allow_upscale and (new[0] > width or new[1] > height):
        if warn:
            logger.warning(
                "target size %dx%d is larger than the image (%dx%d): using the image's size "
                "(upscaling is off)", new[0], new[1], width, height,
            )  # fmt: skip
        new = (width, height)
    if min(new) < min_side:
        raise ImageError(
            f"working size {new[0]}x{new[1]} (from a {width}x{height} image) is too small: the "
            f"short side must be at least {min_side} px; use a larger image or --size"
        )
    return new


def _target_size(size: tuple[int, int], target: int | tuple[int, int] | None) -> tuple[int, int]:
    """The requested size before the upscale and minimum-side rules."""
    width, height = size
    if target is None:
        return (width, height)
    if _positive_int(target):
        scale = target / max(width, height, 1)
        return (round(width * scale), round(height * scale))
    if isinstance(target, tuple) and len(target) == 2 and all(map(_positive_int, target)):
        return (target[0], target[1])
    raise ValueError(f"size must be a positive int or (width, height), not {target!r}")


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """High-quality resize (Lanczos, with ``reducing_gap`` for big downscales).

    Args:
        img: Any PIL image.
        size: Target ``(width, height)``.

    Returns:
        The resized image, or ``img`` itself if it already has that size.
    """
    width, height = size
    if img.size == (width, height):
        return img
    return img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert an ``RGB`` PIL image to a ``1x3xHxW`` float32 tensor in ``[0, 1]``.

    Raises:
        ValueError: If ``img`` is not ``RGB`` (use :func:`load_image` first).
    """
    if img.mode != "RGB":
        raise ValueError(f"to_tensor expects an RGB image, not {img.mode!r}; use load_image")
    width, height = img.size
    data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    pixels = data.view(height, width, 3).permute(2, 0, 1).unsqueeze(0)
    return pixels.to(torch.float32).div_(255.0).contiguous()


def to_pil(t: torch.Tensor) -> Image.Image:
    """Convert a ``1x3xHxW`` or ``3xHxW`` tensor in ``[0, 1]`` to an 8-bit ``RGB`` image.

    Any device or dtype is accepted; values are clamped to ``[0, 1]`` (NaN becomes 0) and rounded.

    Raises:
        ValueError: For any other shape.
    """
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"to_pil expects a 1x3xHxW or 3xHxW tensor, not {tuple(t.shape)}")
    x = t.detach().to("cpu", torch.float32).nan_to_num(0.0).clamp(0.0, 1.0)
    x = x.mul(255.0).round().to(torch.uint8).permute(1, 2, 0)
    return Image.frombytes("RGB", (x.shape[1], x.shape[0]), _tensor_bytes(x))


def _tensor_bytes(t: torch.Tensor) -> bytes:
    """The raw bytes of a CPU tensor in C order (through NumPy's buffer: ``bytes()`` of a
    torch storage reads it item by item in Python, a third of a second for 240x160 RGB)."""
    return t.contiguous().numpy().tobytes()


__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "MIN_SIDE",
    "SUFFIXES",
    "WRITABLE_SUFFIXES",
    "ImageError",
    "describe_error",
    "image_files",
    "load_alpha",
    "load_image",
    "resize",
    "same_aspect",
    "srgb_profile",
    "to_pil",
    "to_tensor",
    "working_size",
]
