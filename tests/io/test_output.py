"""Tests for estilo.output: output paths checked up front, atomic saves, the fallback path.

Every file is generated here with Pillow (in tmp_path or in memory).
"""

from __future__ import annotations

import errno
import io
import os
import random
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from estilo.io.image import ImageError, load_image
from estilo.io.output import OutputError, check_output_path, read_parameters, save_image
from imaging import assert_one_line, close_to, pixel, write

# --- check_output_path -----------------------------------------------------------------------


def test_output_bad_suffix(tmp_path: Path):
    with pytest.raises(OutputError) as exc:
        check_output_path(tmp_path / "out.gif")
    assert_one_line(exc, "'.gif'", ".png", ".jpg", ".webp", ".tiff")


def test_output_exists_needs_overwrite(tmp_path: Path):
    out = write(tmp_path / "out.png", b"old")
    with pytest.raises(OutputError) as exc:
        check_output_path(out)
    assert_one_line(exc, "already exists", "--overwrite")
    assert check_output_path(out, overwrite=True) == out.resolve()


def test_output_same_as_input_refused_even_with_overwrite(tmp_path: Path):
    content = write(tmp_path / "content.png", b"x")
    (tmp_path / "sub").mkdir()
    for out in (content, tmp_path / "sub" / ".." / "content.png"):
        with pytest.raises(OutputError, match="same file as the input"):
            check_output_path(out, overwrite=True, inputs=[str(content)])
    link = tmp_path / "link.png"
    link.symlink_to(content)
    with pytest.raises(OutputError, match="same file"):
        check_output_path(link, overwrite=True, inputs=[content])


def test_output_mkdir_nested(tmp_path: Path):
    out = tmp_path / "a" / "b" / "c" / "out.jpg"
    assert check_output_path(out) == out.resolve()
    assert out.parent.is_dir() and list(out.parent.iterdir()) == []


def test_output_no_mkdir(tmp_path: Path):
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.png", mkdir=False)
    assert not (tmp_path / "missing").exists()


def test_output_parent_is_a_file(tmp_path: Path):
    write(tmp_path / "file", b"x")
    with pytest.raises(OutputError, match="cannot create"):
        check_output_path(tmp_path / "file" / "out.png")


def test_output_is_a_directory(tmp_path: Path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(OutputError, match="directory"):
        check_output_path(tmp_path / "d.png", overwrite=True)


def test_output_folder_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # tests run as root: chmod would not do
    with pytest.raises(OutputError) as exc:
        check_output_path(tmp_path / "out.png")
    assert_one_line(exc, "not writable", repr(str(tmp_path)))


def test_output_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_output_path("~/out.png") == (tmp_path / "out.png").resolve()


# --- save_image ------------------------------------------------------------------------------


def test_save_png_parameters_round_trip(tmp_path: Path):
    params = {"style_weight": 1e5, "size": [512, 384], "layers": ["conv1_1"], "name": "é"}
    path = save_image(Image.new("RGB", (4, 4), "red"), tmp_path / "out.png", parameters=params)
    assert path == (tmp_path / "out.png").resolve()
    assert read_parameters(path) == params
    assert os.listdir(tmp_path) == ["out.png"]  # no temp file left behind


def test_read_parameters_none_cases(tmp_path: Path):
    im = Image.new("RGB", (4, 4))
    assert read_parameters(save_image(im, tmp_path / "plain.png")) is None
    assert read_parameters(save_image(im, tmp_path / "x.jpg", parameters={"a": 1})) is None
    with pytest.raises(ImageError):
        read_parameters(tmp_path / "missing.png")


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"])
def test_save_embeds_srgb_and_no_exif(tmp_path: Path, suffix: str):
    im = Image.new("RGB", (8, 8), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.info["exif"] = exif.tobytes()
    path = save_image(im, tmp_path / f"out{suffix}")
    with Image.open(path) as saved:
        assert saved.size == (8, 8) and saved.mode == "RGB"
        assert "sRGB" in ImageCms.getProfileDescription(
            ImageCms.ImageCmsProfile(io.BytesIO(saved.info["icc_profile"]))
        )
        tags = saved.getexif()  # for TIFF these are the file's own tags
        assert 0x0112 not in tags and (saved.format == "TIFF" or len(tags) == 0)
        assert close_to(pixel(saved.convert("RGB")), (10, 200, 30), tol=4)


def test_save_jpeg_quality_keeps_detail(tmp_path: Path):
    im = Image.frombytes("RGB", (32, 32), random.Random(5).randbytes(32 * 32 * 3))
    with Image.open(save_image(im, tmp_path / "q.jpg")) as saved:
        assert saved.layer[0][1:3] == (1, 1)  # subsampling=0 (4:4:4)
        diffs = [abs(a - b) for a, b in zip(saved.tobytes(), im.tobytes(), strict=True)]
    assert sum(diffs) / len(diffs) < 12


def test_save_bmp(tmp_path: Path):
    path = save_image(Image.new("L", (4, 4), 9), tmp_path / "o.bmp")
    with Image.open(path) as saved:
        assert saved.format == "BMP" and pixel(saved) == (9, 9, 9)


def test_save_bad_suffix(tmp_path: Path):
    with pytest.raises(OutputError, match="extension"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "o.gif")


def test_save_with_alpha(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    im = Image.new("RGB", (8, 8), "red")
    alpha = Image.new("L", (4, 4), 77)  # resized to the image's size
    with Image.open(save_image(im, tmp_path / "a.png", alpha=alpha)) as saved:
        assert saved.mode == "RGBA" and saved.getpixel((5, 5)) == (255, 0, 0, 77)
    with Image.open(save_image(im, tmp_path / "a.jpg", alpha=alpha)) as saved:
        assert saved.mode == "RGB"
    assert "alpha ignored" in caplog.text


def test_save_respects_umask(tmp_path: Path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = save_image(Image.new("RGB", (4, 4)), tmp_path / "m.png")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_overwrites_atomically(tmp_path: Path):
    target = write(tmp_path / "o.png", b"old")
    save_image(Image.new("RGB", (4, 4), "blue"), target)
    assert pixel(load_image(target)) == (0, 0, 255)
    assert os.listdir(tmp_path) == ["o.png"]


def _fail_first_save(monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
    original = Image.Image.save
    calls = {"n": 0}

    def save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] <= failures:
            fp.write(b"partial")  # type: ignore[attr-defined]
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)


def test_save_disk_full_falls_back_to_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    out_dir, fallback_dir = tmp_path / "out", tmp_path / "fallback"
    out_dir.mkdir()
    fallback_dir.mkdir()
    write(fallback_dir / "r.png", b"taken")  # so the fallback needs a unique name
    monkeypatch.setattr(tempfile, "tempdir", str(fallback_dir))
    _fail_first_save(monkeypatch, failures=1)
    written = save_image(Image.new("RGB", (4, 4), "red"), out_dir / "r.png")
    assert written.parent == fallback_dir.resolve() and written.name != "r.png"
    assert written.suffix == ".png" and pixel(load_image(written)) == (255, 0, 0)
    assert os.listdir(out_dir) == []  # no partial file, no temp file
    assert "saved to" in caplog.text and "No space left" in caplog.text


def test_save_fails_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out_dir, fallback_dir = tmp_path / "out", tmp_path / "fallback"
    out_dir.mkdir()
    fallback_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(fallback_dir))
    _fail_first_save(monkeypatch, failures=2)
    with pytest.raises(OutputError) as exc:
        save_image(Image.new("RGB", (4, 4)), out_dir / "r.png")
    assert_one_line(exc, str(out_dir / "r.png"), str(fallback_dir / "r.png"), "No space left")
    assert os.listdir(out_dir) == [] and os.listdir(fallback_dir) == []
