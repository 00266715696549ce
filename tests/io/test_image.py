"""Tests for estilo.image: loading every mode and bad input, sizes, tensors, output paths, saving.

Every file is generated here with Pillow (in tmp_path or in memory).
"""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import random
import struct
import warnings
import zlib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from estilo.io import image as eimage
from estilo.io.image import (
    ImageError,
    load_alpha,
    load_image,
    resize,
    to_pil,
    to_tensor,
    working_size,
)
from estilo.io.output import OutputError
from imaging import assert_one_line, close_to, encode, pixel, write

# --- helpers ---------------------------------------------------------------------------------


def png_with_header_size(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is patched (with a correct CRC) to declare another size."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _max_rss_mb() -> float:
    resource = pytest.importorskip("resource")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- modes -----------------------------------------------------------------------------------

TRANSPARENT_RED = (255, 0, 0, 0)

MODE_CASES = [
    # (mode, pixel value, expected RGB)
    ("1", 1, (255, 255, 255)),
    ("L", 100, (100, 100, 100)),
    ("RGB", (10, 20, 30), (10, 20, 30)),
    ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
    ("RGBA", TRANSPARENT_RED, (255, 255, 255)),
    ("LA", (50, 0), (255, 255, 255)),
    ("LA", (50, 255), (50, 50, 50)),
    ("La", (100, 128), (227, 227, 227)),  # premultiplied: 100 + 255 * (1 - 128/255)
    ("RGBa", (100, 0, 0, 128), (227, 127, 127)),
    ("CMYK", (255, 0, 0, 0), (0, 255, 255)),
    ("LAB", (255, 128, 128), (255, 255, 255)),
    ("I", 100, (100, 100, 100)),  # max <= 255: kept
    ("I", 32768, (128, 128, 128)),  # max <= 65535: /257
    ("I", 1_000_000, (255, 255, 255)),  # larger: scaled by its max
    ("I;16", 32768, (128, 128, 128)),
    ("I;16B", 32768, (128, 128, 128)),
    ("I;16L", 65535, (255, 255, 255)),
    ("F", 0.5, (128, 128, 128)),  # max <= 1.0: x255
    ("F", 100.0, (100, 100, 100)),  # else taken as 0..255
    ("F", 300.0, (255, 255, 255)),  # ... and clipped
]


@pytest.mark.parametrize(("mode", "value", "expected"), MODE_CASES)
def test_every_mode_converts_to_rgb(mode: str, value: object, expected: tuple[int, int, int]):
    out = load_image(Image.new(mode, (5, 3), value))
    assert out.mode == "RGB"
    assert out.size == (5, 3)
    assert close_to(pixel(out), expected, tol=4), pixel(out)


@pytest.mark.parametrize("mode", ["YCbCr", "HSV"])
def test_colour_space_modes_round_trip(mode: str):
    rgb = Image.new("RGB", (4, 4), (200, 40, 90))
    assert close_to(pixel(load_image(rgb.convert(mode))), (200, 40, 90), tol=4)


def test_palette_without_transparency_gives_colours_not_indices(tmp_path: Path):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    assert pixel(load_image(write(tmp_path / "p.png", encode(im, "PNG")))) == (255, 0, 0)


def test_palette_with_transparency_is_composited(tmp_path: Path):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    path = write(tmp_path / "p.png", encode(im, "PNG", transparency=1))
    assert pixel(load_image(path)) == (255, 255, 255)
    assert pixel(load_image(path, background=(0, 0, 0))) == (0, 0, 0)


def test_pa_tiff_is_composited(tmp_path: Path):
    im = Image.new("PA", (4, 4), (1, 0))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    path = write(tmp_path / "pa.tif", encode(im, "TIFF"))
    assert pixel(load_image(path, background=(0, 0, 255))) == (0, 0, 255)


def test_transparent_red_rgba_loads_as_background(tmp_path: Path):
    path = write(tmp_path / "t.png", encode(Image.new("RGBA", (8, 8), TRANSPARENT_RED), "PNG"))
    assert pixel(load_image(path)) == (255, 255, 255)
    assert pixel(load_image(path, background=(0, 0, 0))) == (0, 0, 0)


def test_half_transparent_pixel_is_blended():
    out = load_image(Image.new("RGBA", (2, 2), (255, 0, 0, 128)), background=(0, 0, 255))
    assert close_to(pixel(out), (128, 0, 127), tol=2)


def test_rgb_with_trns_chunk_is_composited(tmp_path: Path):
    path = write(tmp_path / "t.png", encode(Image.new("RGB", (3, 3), (1, 2, 3)), "PNG",
                                            transparency=(1, 2, 3)))  # fmt: skip
    assert pixel(load_image(path)) == (255, 255, 255)


def test_16_bit_png_with_trns_key_is_composited(tmp_path: Path):
    im = Image.new("I;16", (4, 4), 1000)  # key 1000 must not be compared after clipping to 255
    im.putpixel((0, 0), 50000)
    try:
        path = write(tmp_path / "k.png", encode(im, "PNG", transparency=1000))
    except OSError:  # Pillow < 10.2 cannot write this file
        pytest.skip("this Pillow cannot write a 16-bit PNG with a tRNS key")
    out = load_image(path, background=(0, 0, 255))
    assert out.getpixel((1, 1)) == (0, 0, 255)
    assert close_to(pixel(out), (195, 195, 195), tol=1)
    alpha = load_alpha(path)
    assert alpha is not None and (alpha.getpixel((0, 0)), alpha.getpixel((1, 1))) == (255, 0)


def test_bad_background_is_refused():
    with pytest.raises(ValueError, match="background"):
        load_image(Image.new("RGB", (2, 2)), background=(0, 0, 256))


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path: Path):
    path = write(tmp_path / "g16.png", encode(Image.new("I;16", (4, 4), 32768), "PNG"))
    assert close_to(pixel(load_image(path)), (128, 128, 128), tol=1)


def test_cmyk_jpeg_without_profile_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = write(tmp_path / "c.jpg", encode(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), "JPEG"))
    out = load_image(path)
    assert out.mode == "RGB"
    assert close_to(pixel(out), (0, 255, 255), tol=8)
    assert "approximate" in caplog.text


def test_embedded_srgb_profile_is_applied(tmp_path: Path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.new("RGB", (4, 4), (200, 100, 50))
    out = load_image(write(tmp_path / "s.png", encode(im, "PNG", icc_profile=icc)))
    assert close_to(pixel(out), (200, 100, 50), tol=2)
    assert out.info == {}


def test_broken_profile_warns_and_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    im = Image.new("RGB", (4, 4), (200, 100, 50))
    path = write(tmp_path / "b.png", encode(im, "PNG", icc_profile=b"not a profile" * 20))
    assert pixel(load_image(path)) == (200, 100, 50)
    assert "profile" in caplog.text


def test_exif_orientation_is_applied_and_exif_dropped(tmp_path: Path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "o.jpg"
    Image.new("RGB", (40, 20), "red").save(path, exif=exif)
    out = load_image(path)
    assert out.size == (20, 40)
    assert "exif" not in out.info
    assert len(out.getexif()) == 0


def test_result_is_independent_of_the_file(tmp_path: Path):
    path = write(tmp_path / "x.png", encode(Image.new("RGB", (4, 4), "blue"), "PNG"))
    out = load_image(path)
    path.unlink()
    assert pixel(out.copy()) == (0, 0, 255)


def test_pil_source_is_not_modified():
    src = Image.new("RGBA", (4, 4), TRANSPARENT_RED)
    load_image(src)
    assert src.mode == "RGBA" and pixel(src) == TRANSPARENT_RED


def test_path_like_str_bytes_and_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = encode(Image.new("RGB", (6, 4), "green"), "PNG")
    write(tmp_path / "é 图 -x.png", data)
    monkeypatch.setenv("HOME", str(tmp_path))
    for source in (tmp_path / "é 图 -x.png", str(tmp_path / "é 图 -x.png"), "~/é 图 -x.png", data):
        assert load_image(source).size == (6, 4)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_uses_first_frame(fmt: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / f"a.{fmt.lower()}"
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert close_to(pixel(load_image(path)), (255, 0, 0), tol=10)
    assert "animated" in caplog.text


def test_gif_with_corrupt_second_frame_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    second = data.index(b"\x21\xf9\x04", data.index(b"\x21\xf9\x04") + 1)
    assert pixel(load_image(data[: second + 1])) == (255, 0, 0)  # is_animated would raise


# --- load_alpha ------------------------------------------------------------------------------


def test_load_alpha(tmp_path: Path):
    im = Image.new("RGBA", (6, 4), (1, 2, 3, 40))
    alpha = load_alpha(write(tmp_path / "a.png", encode(im, "PNG")))
    assert alpha is not None and alpha.mode == "L" and alpha.size == (6, 4)
    assert alpha.getpixel((0, 0)) == 40


def test_load_alpha_none_when_opaque_or_absent():
    assert load_alpha(Image.new("RGB", (4, 4))) is None
    assert load_alpha(Image.new("RGBA", (4, 4), (0, 0, 0, 255))) is None


def test_load_alpha_from_palette_transparency():
    im = Image.new("P", (4, 4), 3)
    im.info["transparency"] = 3
    alpha = load_alpha(im)
    assert alpha is not None and alpha.getpixel((0, 0)) == 0


# --- input errors ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "nope.png")
    assert_one_line(exc, "not found", repr(str(tmp_path / "nope.png")))


def test_directory(tmp_path: Path):
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path)
    assert_one_line(exc, "directory", repr(str(tmp_path)))


def test_not_a_regular_file():
    with pytest.raises(ImageError) as exc:
        load_image(os.devnull)
    assert_one_line(exc, "not a regular file", repr(os.devnull))


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path / "locked.png", encode(Image.new("RGB", (4, 4)), "PNG"))

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)  # tests run as root, so chmod would not do
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line(exc, "cannot read", "PermissionError", repr(str(path)))


def test_empty_file(tmp_path: Path):
    with pytest.raises(ImageError) as exc:
        load_image(write(tmp_path / "e.jpg", b""))
    assert_one_line(exc, "empty")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\x00\x00\x00\x18ftypheic" + bytes(64), "HEIC"),
        (b"\x00\x00\x00\x18ftypmif1" + bytes(64), "HEIC"),
        (b"\x00\x00\x00\x1cftypavif" + bytes(64), "AVIF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n", "EPS"),
        (b"\xc5\xd0\xd3\xc6" + bytes(40), "EPS"),
    ],
)
def test_known_non_raster_formats(tmp_path: Path, data: bytes, needle: str):
    path = write(tmp_path / "photo.jpg", data)  # the extension lies, as phones' files do
    with pytest.raises(ImageError) as exc:
        load_image(path)
    text = assert_one_line(exc, needle, repr(str(path)))
    assert "JPEG" in text and "PNG" in text  # says what to convert to


@pytest.mark.parametrize("fmt", ["ICO", "TGA", "PPM"])
def test_real_image_in_a_format_we_do_not_allow(tmp_path: Path, fmt: str):
    path = write(tmp_path / "x.png", encode(Image.new("RGB", (16, 16), "red"), fmt))
    with pytest.raises(ImageError) as exc:
        load_image(path)
    text = assert_one_line(exc, "not a supported image", f"detected format {fmt}", "JPEG, PNG")
    assert "convert it to PNG or JPEG" in text  # a real image: converting it is the fix


def test_a_text_file_named_png_is_not_told_to_convert(tmp_path: Path):
    path = write(tmp_path / "notes.png", b"my notes, not a picture\n")
    with pytest.raises(ImageError) as exc:
        load_image(path)
    text = assert_one_line(exc, "not a supported image", "unrecognised or corrupt content")
    assert "convert it" not in text
    assert "its name may not match its content" in text and "give the right file" in text


def test_random_bytes(tmp_path: Path):
    data = random.Random(1).randbytes(4096)
    with pytest.raises(ImageError) as exc:
        load_image(write(tmp_path / "r.png", data))
    assert_one_line(exc, "not a supported image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(tmp_path: Path, fmt: str):
    noise = Image.frombytes("RGB", (64, 64), random.Random(2).randbytes(64 * 64 * 3))
    data = encode(noise, fmt)
    path = write(tmp_path / f"t.{fmt.lower()}", data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line(exc, "truncated or corrupt", repr(str(path)))


def test_our_pixel_limit_is_checked_before_decoding(tmp_path: Path):
    path = write(tmp_path / "big.png", png_with_header_size(8000, 8000))  # 64 MP > 50 MP default
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert_one_line(exc, "too large", "8000x8000", "64,000,000", "50,000,000")
    small = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageError, match="10,000 pixels"):
        load_image(small, max_pixels=5000)
    assert load_image(small, max_pixels=10_000).size == (100, 100)


def test_decompression_bomb_header_without_memory_blowup(tmp_path: Path):
    before = _max_rss_mb()
    path = write(tmp_path / "bomb.png", png_with_header_size(30000, 30000))
    for limit in (eimage.DEFAULT_MAX_PIXELS, 10**12):  # ours, then Pillow's own error
        with pytest.raises(ImageError) as exc:
            load_image(path, max_pixels=limit)
        assert_one_line(exc, "too large")
    assert _max_rss_mb() - before < 200


def test_pillow_bomb_warning_becomes_error_without_changing_globals(tmp_path: Path):
    limit_before = Image.MAX_IMAGE_PIXELS
    path = write(tmp_path / "w.png", png_with_header_size(10000, 10000))  # 100 MP: warning zone
    with pytest.raises(ImageError, match="too large"):
        load_image(path, max_pixels=10**12)
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_wrong_source_type():
    with pytest.raises(TypeError):
        load_image(123)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_load_or_raise_image_error(data: bytes):
    try:
        out = load_image(data)
    except ImageError as exc:
        assert "\n" not in str(exc)
    else:
        assert out.mode == "RGB"


@functools.cache
def _sample_files() -> list[bytes]:
    rnd = random.Random(3)
    noise = Image.frombytes("RGBA", (12, 10), rnd.randbytes(12 * 10 * 4))
    files = [encode(noise.convert(mode), fmt) for fmt, mode in
             [("PNG", "RGBA"), ("JPEG", "RGB"), ("GIF", "P"), ("WEBP", "RGBA"), ("TIFF", "RGB"),
              ("BMP", "RGB"), ("TIFF", "CMYK")]]  # fmt: skip
    return [*files, encode(Image.frombytes("I;16", (12, 10), rnd.randbytes(240)), "PNG")]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_files_load_or_raise_image_error(data: st.DataObject):
    raw = bytearray(data.draw(st.sampled_from(_sample_files())))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(1, len(raw)))]
    try:
        assert load_image(bytes(raw)).mode == "RGB"
    except ImageError:
        pass


def _saveable(mode: str, fmt: str) -> bool:
    """Whether this Pillow saves ``mode`` as ``fmt`` cleanly (a deprecation warning counts as no)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            encode(Image.new(mode, (2, 2)), fmt)
    except (OSError, ValueError, KeyError, TypeError, Warning):
        return False
    return True


ALL_MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "PA", "La", "RGBa", "CMYK", "YCbCr", "LAB",
             "HSV", "I", "I;16", "I;16B", "I;16L", "F"]  # fmt: skip
SAVEABLE = [(m, f) for m in ALL_MODES for f in ("PNG", "TIFF", "WEBP", "BMP", "GIF")
            if _saveable(m, f)]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAVEABLE), st.integers(1, 9), st.integers(1, 9), st.randoms())
def test_random_images_of_every_mode_and_format_load(
    combo: tuple[str, str], width: int, height: int, rnd: random.Random
):
    mode, fmt = combo
    size = len(Image.new(mode, (width, height)).tobytes())
    im = Image.frombytes(mode, (width, height), rnd.randbytes(size))
    data = encode(im, fmt)
    assume(_pillow_reads(data))  # old Pillows write some files they cannot read (odd YCbCr TIFF)
    out = load_image(data)
    assert out.mode == "RGB" and out.size == (width, height)


def _pillow_reads(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except OSError:
        return False
    return True


def test_saveable_combinations_cover_every_format():
    assert {f for _, f in SAVEABLE} == {"PNG", "TIFF", "WEBP", "BMP", "GIF"}
    assert len(SAVEABLE) > 30


# --- working_size, resize -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "target", "expected"),
    [
        ((1000, 500), 512, (512, 256)),
        ((500, 1000), 512, (256, 512)),
        ((1001, 333), 500, (500, 166)),
        ((1000, 500), (640, 320), (640, 320)),
        ((1000, 500), None, (1000, 500)),
        ((512, 512), 512, (512, 512)),
    ],
)
def test_working_size(size, target, expected):
    assert working_size(size, target) == expected


def test_working_size_never_upscales_by_default(caplog: pytest.LogCaptureFixture):
    assert working_size((400, 300), 512) == (400, 300)
    assert "larger than the image" in caplog.text
    assert working_size((400, 300), (800, 200)) == (400, 300)


def test_working_size_allow_upscale():
    assert working_size((400, 300), 512, allow_upscale=True) == (512, 384)
    assert working_size((400, 300), (800, 600), allow_upscale=True) == (800, 600)


def test_working_size_min_side():
    with pytest.raises(ImageError) as exc:
        working_size((40, 20), None)
    assert_one_line(exc, "40x20", "32", "--size")
    assert working_size((40, 20), None, min_side=16) == (40, 20)
    with pytest.raises(ImageError):
        working_size((100, 50), None, min_side=64)


def test_working_size_extreme_aspect_ratio():
    with pytest.raises(ImageError) as exc:
        working_size((10000, 20), 512)
    assert_one_line(exc, "512x1")


@pytest.mark.parametrize("target", [0, -5, True, (0, 10), (10,), (10.0, 10), "512"])
def test_working_size_bad_target(target):
    with pytest.raises(ValueError) as exc:
        working_size((100, 100), target)
    assert not isinstance(exc.value, ImageError)


def test_resize():
    im = Image.new("RGB", (100, 50), "red")
    assert resize(im, (100, 50)) is im
    small = resize(im, (10, 5))
    assert small.size == (10, 5) and pixel(small) == (255, 0, 0)
    assert resize(im, (300, 150)).size == (300, 150)


# --- tensors ---------------------------------------------------------------------------------


def test_tensor_round_trip_is_exact():
    im = Image.frombytes("RGB", (7, 5), random.Random(4).randbytes(7 * 5 * 3))
    t = to_tensor(im)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    assert t[0, 1, 2, 3].item() == pytest.approx(im.getpixel((3, 2))[1] / 255)
    assert to_pil(t).tobytes() == im.tobytes()
    assert to_pil(t[0].double()).tobytes() == im.tobytes()


def test_to_pil_clamps_rounds_and_handles_nan():
    t = torch.tensor([-1.0, 0.5, 2.0, float("nan")]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    out = to_pil(t.half())
    assert out.mode == "RGB" and out.size == (4, 1)
    assert [out.getpixel((x, 0))[0] for x in range(4)] == [0, 128, 255, 0]


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 4, 4, 4), (4, 4), (1, 1, 3, 4, 4)])
def test_to_pil_bad_shape(shape):
    with pytest.raises(ValueError, match="3xHxW"):
        to_pil(torch.zeros(shape))


def test_to_tensor_refuses_non_rgb():
    with pytest.raises(ValueError, match="RGB"):
        to_tensor(Image.new("RGBA", (2, 2)))


def test_pillow_globals_are_left_at_defaults():
    from PIL import ImageFile

    load_image(Image.new("RGB", (2, 2)))
    assert Image.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3  # Pillow's default
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_errors_are_value_errors():
    assert issubclass(ImageError, ValueError) and issubclass(OutputError, ValueError)
    assert logging.getLogger("estilo.io.image") is eimage.logger


def test_reduce_to_decodes_a_large_jpeg_at_a_reduced_scale(tmp_path: Path):
    big = Image.new("RGB", (4000, 3000), (200, 30, 30))
    big.paste((20, 30, 200), (0, 0, 4000, 1000))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated: 3000x4000
    big.save(tmp_path / "camera.jpg", quality=85, exif=exif)
    big.save(tmp_path / "camera.png")
    reduced = load_image(tmp_path / "camera.jpg", reduce_to=500)
    assert reduced.size == (750, 1000)  # 1/4: the smallest scale keeping both sides >= 500
    assert reduced.getpixel((700, 500))[2] > 150  # the blue band, upright on the right
    assert load_image(tmp_path / "camera.png", reduce_to=500).size == (4000, 3000)  # not JPEG
