"""Image output for estilo: output paths checked up front, atomic saves, embedded parameters.

* :func:`check_output_path` runs before any computation, so a bad ``-o`` fails in
  milliseconds, not after the run.
* :func:`save_image` writes atomically (temporary file in the target folder, fsync,
  ``os.replace``), so a crash or a full disk never leaves a half-written file; when the target
  cannot be written it falls back to the temp folder and returns where the image went.
* Every problem raises :class:`OutputError`, a ``ValueError`` whose text is one line.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from ..config import UserError
from ..files import write_atomic
from .image import WRITABLE_SUFFIXES, ImageError, describe_error, resize, srgb_profile

logger = logging.getLogger(__name__)

_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}


class OutputError(UserError, ValueError):
    """An output path cannot be written (bad extension, exists, same as input, not writable)."""


def check_output_path(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    mkdir: bool = True,
) -> Path:
    """Validate an output path before any computation.

    Args:
        path: Where the result will be saved (``~`` expanded).
        overwrite: Allow replacing an existing file (never an input).
        inputs: Input paths the output must not resolve to.
        mkdir: Create missing parent folders; otherwise a missing folder is an error.

    Returns:
        The resolved output path.

    Raises:
        OutputError: Bad extension, same file as an input, existing file without
            ``overwrite``, a directory, or a folder that is missing or not writable.
    """
    target = Path(path).expanduser()
    _output_format(target)
    try:
        resolved = target.resolve()
    except (OSError, RuntimeError) as exc:  # e.g. a symlink loop
        raise OutputError(
            f"cannot resolve output path {str(target)!r} ({describe_error(exc)})"
        ) from exc
    for item in inputs:
        if _same_file(resolved, Path(item).expanduser()):
            raise OutputError(
                f"output {str(target)!r} is the same file as the input {str(item)!r}; choose "
                "another output path (--overwrite never replaces an input)"
            )
    if resolved.is_dir():
        raise OutputError(f"output {str(target)!r} is a directory; give a file name")
    if resolved.exists() and not overwrite:
        raise OutputError(f"output {str(target)!r} already exists; use --overwrite to replace it")
    _ensure_folder(resolved.parent, mkdir)
    return resolved


def _output_format(target: Path) -> str:
    """The Pillow format for ``target``'s suffix, or an OutputError listing the allowed ones."""
    fmt = WRITABLE_SUFFIXES.get(target.suffix.lower())
    if fmt is None:
        allowed = ", ".join(WRITABLE_SUFFIXES)
        raise OutputError(
            f"cannot write {str(target)!r}: unsupported extension {target.suffix!r}; "
            f"use one of {allowed}"
        )
    return fmt


def _same_file(a: Path, b: Path) -> bool:
    """True if both paths name one file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _ensure_folder(folder: Path, mkdir: bool) -> None:
    """Create ``folder`` if allowed and prove it is writable with a temporary file."""
    name = repr(str(folder))
    if not folder.is_dir():
        if not mkdir:
            raise OutputError(f"output folder {name} does not exist; create it first")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create output folder {name} ({describe_error(exc)})"
            ) from exc
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".estilo-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"output folder {name} is not writable ({describe_error(exc)}); choose another folder"
        ) from exc


def save_image(
    img: Image.Image,
    path: str | os.PathLike[str],
    *,
    parameters: dict[str, Any] | None = None,
    alpha: Image.Image | None = None,
) -> Path:
    """Save atomically, in the format given by the suffix, with an sRGB profile and no EXIF.

    PNG stores ``parameters`` as sorted JSON in an iTXt chunk ``parameters``; JPEG uses
    quality 95 without chroma subsampling; WEBP uses quality 95. If writing fails with an
    ``OSError`` (disk full, permissions), the same name in ``tempfile.gettempdir()`` is tried
    (with a numeric suffix if taken), a warning is logged, and that path is returned.

    Args:
        img: The image: RGB, or RGBA (what :meth:`estilo.transfer.Job.output` gives with
            ``keep_alpha``), whose alpha is kept; other modes are converted to RGB.
        path: Destination; its parent folder should exist (see :func:`check_output_path`).
        parameters: Settings to store as JSON (PNG only); values JSON cannot encode are
            stored as their ``str()``.
        alpha: Optional ``L`` alpha, resized to ``img.size`` (it replaces an RGBA image's
            own). Transparency makes PNG/WEBP/TIFF output RGBA and is dropped with a warning
            for other formats.

    Returns:
        The path actually written (the fallback path if the target failed).

    Raises:
        OutputError: Bad extension, or both the target and the fallback failed.
    """
    target = Path(path).expanduser()
    fmt = _output_format(target)
    out = _prepare_output(img, alpha, fmt)
    options = _save_options(fmt, parameters)
    try:
        return _atomic_save(out, target, fmt, options)
    except OSError as first:
        return _save_fallback(out, target, fmt, options, first)


def _save_fallback(
    img: Image.Image, target: Path, fmt: str, options: dict[str, Any], first: OSError
) -> Path:
    """Save to the temp folder after ``first`` failed; OutputError naming both if this fails."""
    fallback = _fallback_path(target)
    try:
        written = _atomic_save(img, fallback, fmt, options)
    except OSError as second:
        raise OutputError(
            f"could not save {str(target)!r} ({describe_error(first)}) nor the fallback "
            f"{str(fallback)!r} ({describe_error(second)}); free disk space or choose another path"
        ) from second
    logger.error(  # the command ends with exit status 1: an error, also shown with -q
        "could not save %r (%s); saved to %r instead",
        str(target),
        describe_error(first),
        str(written),
    )
    return written


def _prepare_output(img: Image.Image, alpha: Image.Image | None, fmt: str) -> Image.Image:
    """An RGB (or RGBA, with ``alpha`` or an RGBA ``img``) copy with an empty ``info`` (so
    no EXIF is written)."""
    if alpha is None and img.mode == "RGBA":
        alpha = img.getchannel("A")
    out = img.convert("RGB")
    if alpha is not None and fmt not in _ALPHA_FORMATS:
        logger.warning("%s cannot store transparency: alpha ignored", fmt)
    elif alpha is not None:
        out.putalpha(resize(alpha.convert("L"), out.size))
    out.info = {}
    return out


def _save_options(fmt: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Pillow ``save`` keyword arguments for ``fmt``."""
    icc = {"icc_profile": srgb_profile().tobytes()}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        if parameters is not None:
            info.add_itxt("parameters", json.dumps(parameters, sort_keys=True, default=str))
        return {**icc, "pnginfo": info}
    if fmt == "JPEG":
        return {**icc, "quality": 95, "subsampling": 0}
    if fmt == "WEBP":
        return {**icc, "quality": 95}
    if fmt == "TIFF":
        return {**icc, "compression": "tiff_deflate"}
    return {}


def _atomic_save(img: Image.Image, target: Path, fmt: str, options: dict[str, Any]) -> Path:
    """Save through :func:`estilo.files.write_atomic`; return the resolved path."""
    return write_atomic(target, lambda fh: img.save(fh, format=fmt, **options)).resolve()


def _fallback_path(target: Path) -> Path:
    """``target``'s name in the temp folder, made unique if taken."""
    folder = Path(tempfile.gettempdir())
    candidate = folder / target.name
    counter = 1
    while candidate.exists():
        candidate = folder / f"{target.stem}-{counter}{target.suffix}"
        counter += 1
    return candidate


def read_parameters(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read the settings stored by :func:`save_image` in a PNG.

    Returns:
        The ``parameters`` JSON object, or None if the file has none (or is not such a PNG).

    Raises:
        ImageError: If the file is missing or unreadable.
    """
    file = Path(path).expanduser()
    try:
        with Image.open(file, formats=["PNG"]) as im:
            raw = im.info.get("parameters")
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise ImageError(
            f"cannot read {str(file)!r} ({describe_error(exc)}); check the path"
        ) from exc
    except Exception:  # noqa: BLE001 -- not a PNG, or corrupt: there are no parameters to read
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


__all__ = [
    "OutputError",
    "check_output_path",
    "read_parameters",
    "save_image",
]
