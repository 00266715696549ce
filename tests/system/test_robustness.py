"""The robustness matrix: every kind of input through the CLI and the API, and fault injection.

Every input is generated here (tiny files made with Pillow, or raw bytes). Each kind either
works as documented (an output of the right size is written) or is refused with exit code 2
and exactly one line on stderr (``ImageError`` through the API), leaving no output and no
temporary file behind. The fault tests cover a folder that becomes unwritable, a full disk
(mocked ENOSPC, and a real 64 KiB tmpfs where mounting is permitted), SIGTERM mid-run and a
NaN injected into a step. See notes/issue-7.md for the table of cases.
"""

from __future__ import annotations

import errno
import io
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageCms

import estilo
from conftest import make_content, make_style
from estilo import cli
from estilo.cli import stylize
from estilo.io.image import ImageError, load_image
from estilo.io.output import read_parameters
from estilo.transfer import Stylizer
from imaging import fault_in_the_network, subprocess_env, wait_for

FAST = ["--weights", "random", "--size", "48", "--iterations", "1", "--scales", "1", "-q",
        "--style-layers", "1,3", "--content-layers", "3", "--device", "cpu"]
API = {"weights": "random", "size": 48, "iterations": 1, "scales": 1, "device": "cpu",
       "style_layers": ("conv1_1", "conv2_1"), "content_layers": ("conv2_1",)}
OUTPUT_SIZE = (48, 36)  # the 64x48 content at --size 48

# --- the inputs --------------------------------------------------------------------------------


def _photo() -> Image.Image:
    return make_content((64, 48))


def _save(name: str, im: Image.Image, **options: object) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        im.save(path, **options)
        return path
    return make


def _raw(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path
    return make


def _encoded(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def _alpha(mode: str) -> Image.Image:
    im = _photo().convert(mode)
    mask = Image.new("L", im.size, 255)
    mask.paste(0, (0, 0, 20, 20))
    im.putalpha(mask)
    return im


def _palette_with_transparency() -> Image.Image:
    im = _photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    im.info["transparency"] = 0
    return im


def _grey16() -> Image.Image:
    return _photo().convert("L").convert("I").point(lambda v: v * 257).convert("I;16")


def _animated(folder: Path, name: str) -> Path:
    frames = [_photo(), make_style((64, 48)), Image.new("RGB", (64, 48), "red")]
    path = folder / name
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _exif_rotated(folder: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48x64, shown (and loaded) as 64x48
    path = folder / "phone.jpg"
    _photo().rotate(-90, expand=True).save(path, exif=exif)
    return path


def _png_declaring(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (with a valid CRC) claims ``width`` x ``height``: a bomb header."""
    data = bytearray(_encoded(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _truncated(fmt: str, suffix: str) -> Callable[[Path], Path]:
    data = _encoded(make_style((64, 64)), fmt)
    return _raw(f"cut{suffix}", data[: len(data) * 2 // 3])


def _directory(folder: Path) -> Path:
    path = folder / "folder.png"
    path.mkdir()
    return path


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

# kind: (make the file in a folder, None if it works or a phrase of the one-line error)
KINDS: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "jpeg": (_save("c.jpg", _photo()), None),
    "png": (_save("c.png", _photo()), None),
    "webp": (_save("c.webp", _photo()), None),
    "bmp": (_save("c.bmp", _photo()), None),
    "tiff": (_save("c.tif", _photo()), None),
    "gif": (_save("c.gif", _photo()), None),
    "grey_L": (_save("g.png", _photo().convert("L")), None),
    "bilevel_1": (_save("b.png", _photo().convert("1")), None),
    "grey_alpha_LA": (_save("la.png", _alpha("L")), None),
    "rgba": (_save("rgba.png", _alpha("RGB")), None),
    "rgba_webp": (_save("rgba.webp", _alpha("RGB"), lossless=True), None),
    "palette_transparency": (_save("p.png", _palette_with_transparency()), None),
    "grey_16bit_png": (_save("g16.png", _grey16()), None),
    "int32_tiff": (_save("i.tif", _photo().convert("L").convert("I")), None),
    "float_tiff": (_save("f.tif", _photo().convert("L").convert("F").point(lambda v: v / 255)),
                   None),
    "cmyk_jpeg": (_save("cmyk.jpg", _photo().convert("CMYK")), None),
    "cmyk_tiff": (_save("cmyk.tif", _photo().convert("CMYK")), None),
    "animated_gif": (lambda d: _animated(d, "anim.gif"), None),
    "animated_webp": (lambda d: _animated(d, "anim.webp"), None),
    "exif_rotated": (_exif_rotated, None),
    "icc_srgb": (_save("icc.png", _photo(), icc_profile=SRGB), None),
    "icc_broken": (_save("badicc.jpg", _photo(), icc_profile=b"not a profile"), None),
    "png_named_jpg": (_raw("really_png.jpg", _encoded(_photo(), "PNG")), None),
    "unicode_name": (_save("é 写真 ñ.png", _photo()), None),
    "space_name": (_save("my photo.png", _photo()), None),
    "leading_dash": (_save("-photo.png", _photo()), None),
    "empty": (_raw("empty.png", b""), "the file is empty"),
    "random_bytes": (_raw("noise.jpg", random.Random(7).randbytes(2000)), "not a supported image"),
    "text_as_jpg": (_raw("text.jpg", b"hello, I am not a picture\n"), "not a supported image"),
    "truncated_png": (_truncated("PNG", ".png"), "corrupt"),
    "truncated_jpeg": (_truncated("JPEG", ".jpg"), "truncated or corrupt"),
    "bomb_header": (_raw("bomb.png", _png_declaring(100_000, 100_000)), "too large"),
    "heic": (_raw("iphone.jpg", b"\0\0\0\x18ftypheic" + bytes(64)), "HEIC"),
    "svg": (_raw("logo.png", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'),
            "SVG"),
    "pdf": (_raw("scan.png", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), "PDF"),
    "eps": (_raw("art.png", b"%!PS-Adobe-3.0 EPSF-3.0\n"), "EPS"),
    "ico_not_allowed": (_save("c.ico", _photo()), "detected format ICO"),
    "directory": (_directory, "is a directory"),
    "missing": (lambda d: d / "missing.png", "not found"),
    "too_small": (_save("tiny.png", Image.new("RGB", (16, 16), "red")), "too small"),
    "extreme_wide": (_save("wide.png", Image.new("RGB", (400, 20), "red")), "too small"),
    "extreme_tall": (_save("tall.png", Image.new("RGB", (20, 400), "red")), "too small"),
}
WORKS = [k for k, (_, error) in KINDS.items() if error is None]


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An input folder with a plain content and style image, and an empty output folder."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    _photo().save(inputs / "content.png")
    make_style().save(inputs / "style.png")
    return inputs, outputs


def _argv(content: Path, style: Path, out: Path, *extra: str) -> list[str]:
    """CLI arguments; names starting with '-' go after '--', as the README says."""
    if content.name.startswith("-") or style.name.startswith("-"):
        return ["-o", str(out), *FAST, *extra, "--", str(content), str(style)]
    return [str(content), str(style), "-o", str(out), *FAST, *extra]


def _check_error(err: str, code: int, phrase: str, outputs: Path) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("estilo: error: "), err
    assert phrase in lines[0], lines[0]
    assert list(outputs.iterdir()) == []  # no output, no temporary file


def _check_written(out: Path, size: tuple[int, int] = OUTPUT_SIZE) -> None:
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary file
    with Image.open(out) as img:
        assert img.size == size and img.mode == "RGB"
    assert read_parameters(out)["interrupted"] is False


# --- the matrix: CLI -------------------------------------------------------------------------


@pytest.mark.parametrize("slot", ["content", "style"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_cli_matrix(kind: str, slot: str, folders: tuple[Path, Path], capsys):
    inputs, outputs = folders
    make, error = KINDS[kind]
    path = make(inputs)
    content, style = (path, inputs / "style.png") if slot == "content" else (
        inputs / "content.png", path)
    out = outputs / "out.png"
    code = cli.main(_argv(content, style, out))
    err = capsys.readouterr().err
    if kind == "directory" and slot == "style":
        error = "has no images"  # a folder is a set of styles (issue 5); this one is empty
    if error is None:
        assert code == 0, err
        _check_written(out)
    else:
        _check_error(err, code, error, outputs)


def test_cli_leading_dash_needs_dot_slash_or_double_dash(folders, monkeypatch, capsys):
    inputs, outputs = folders
    KINDS["leading_dash"][0](inputs)
    monkeypatch.chdir(inputs)
    with pytest.raises(SystemExit) as info:
        cli.main(["content.png", "-photo.png", "-o", str(outputs / "o.png"), *FAST])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "--help" in err
    assert list(outputs.iterdir()) == []
    assert cli.main(["content.png", "./-photo.png", "-o", str(outputs / "o.png"), *FAST]) == 0
    _check_written(outputs / "o.png")


def test_cli_tilde_paths(folders, monkeypatch, capsys):
    inputs, outputs = folders
    monkeypatch.setenv("HOME", str(inputs.parent))
    assert cli.main(["~/in/content.png", "~/in/style.png", "-o", "~/out/o.png", *FAST]) == 0
    _check_written(outputs / "o.png")


def _subprocess(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(**env)
    return subprocess.run([sys.executable, "-m", "estilo", *argv], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_subprocess_unicode_path_works_and_bomb_exits_2(folders):
    inputs, outputs = folders
    content = KINDS["unicode_name"][0](inputs)
    out = outputs / "résultat 写真.png"
    proc = _subprocess(*_argv(content, inputs / "style.png", out))
    assert proc.returncode == 0, proc.stderr
    _check_written(out)
    out.unlink()
    bomb = KINDS["bomb_header"][0](inputs)
    proc = _subprocess(*_argv(bomb, inputs / "style.png", out))
    _check_error(proc.stderr, proc.returncode, "too large", outputs)


# --- the matrix: API -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_api_matrix(kind: str, folders: tuple[Path, Path]):
    inputs, _ = folders
    make, error = KINDS[kind]
    path = make(inputs)
    if error is None:
        assert estilo.stylize(path, inputs / "style.png", **API).size == OUTPUT_SIZE
        job = Stylizer().job(inputs / "content.png", path, estilo.StyleConfig(**API))
        assert job.inputs.styles[0].image.mode == "RGB"
        return
    for content, style in ((path, inputs / "style.png"), (inputs / "content.png", path)):
        with pytest.raises(ImageError) as info:
            Stylizer().job(content, style, estilo.StyleConfig(**API))
        expected = "has no images" if kind == "directory" and style == path else error
        assert expected in str(info.value) and "\n" not in str(info.value)


def test_api_accepts_pil_images_of_every_kind_that_works(folders: tuple[Path, Path]):
    inputs, _ = folders
    for kind in WORKS:
        with Image.open(KINDS[kind][0](inputs)) as im:
            job = Stylizer().job(im, inputs / "style.png", estilo.StyleConfig(**API))
        assert job.inputs.size[0] == 48, kind


@pytest.mark.parametrize(("background", "expected"), [("white", (255, 255, 255)),
                                                       ("black", (0, 0, 0)),
                                                       ("#102030", (16, 32, 48))])
def test_background_reaches_the_loader_for_every_input(folders, background, expected):
    inputs, _ = folders
    transparent = inputs / "clear.png"
    Image.new("RGBA", (64, 48), (255, 0, 0, 0)).save(transparent)
    config = estilo.StyleConfig(**API, background=background, init=str(transparent))
    job = Stylizer().job(transparent, transparent, config)
    for source in (job.inputs.content, job.inputs.styles[0], job.inputs.init):
        assert source.image.getpixel((5, 5)) == expected


def test_background_through_the_cli(folders, capsys):
    inputs, outputs = folders
    rgba = KINDS["rgba"][0](inputs)
    out = outputs / "o.png"
    # The photo as it is at the start (not recoloured to the painting's palette), barely moved.
    assert cli.main(_argv(rgba, inputs / "style.png", out, "--background", "black",
                          "--init", "content", "--palette", "photo", "--lr", "1e-6")) == 0
    with Image.open(out) as img:
        assert sum(img.getpixel((2, 2))) < 40  # the transparent corner, on black
    capsys.readouterr()
    code = cli.main(_argv(rgba, inputs / "style.png", out, "--overwrite", "--background", "red!"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "background" in err


# --- faults ----------------------------------------------------------------------------------


@pytest.fixture
def fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temp folder for save_image's fallback path."""
    folder = tmp_path / "fallback"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _file_name(fp: object) -> str:
    """The path of an open file (save_image writes through ``os.fdopen``: name is the fd)."""
    name = getattr(fp, "name", "")
    return os.readlink(f"/proc/self/fd/{name}") if isinstance(name, int) else str(name)


def _fail_in(folder: Path, monkeypatch: pytest.MonkeyPatch, where: str, err: int) -> None:
    """Make writes into ``folder`` fail with ``err`` at ``where``: open, write or replace."""
    folder = folder.resolve()

    def inside(path: object) -> bool:
        return Path(str(path)).resolve().parent == folder

    if where == "open":
        real_open = os.open

        def fake_open(path, flags, *args, **kwargs):
            if inside(path) and flags & os.O_CREAT:
                raise OSError(err, os.strerror(err), str(path))
            return real_open(path, flags, *args, **kwargs)
        monkeypatch.setattr(os, "open", fake_open)
    elif where == "replace":
        real_replace = os.replace

        def fake_replace(src, dst, *args, **kwargs):
            if inside(dst):
                raise OSError(err, os.strerror(err))
            return real_replace(src, dst, *args, **kwargs)
        monkeypatch.setattr(os, "replace", fake_replace)
    else:
        real_save = Image.Image.save

        def fake_save(self, fp, *args, **kwargs):
            if inside(_file_name(fp)):
                fp.write(b"partial")
                raise OSError(err, os.strerror(err))
            return real_save(self, fp, *args, **kwargs)
        monkeypatch.setattr(Image.Image, "save", fake_save)


@pytest.mark.parametrize(("where", "err"), [("write", errno.ENOSPC), ("replace", errno.ENOSPC),
                                            ("open", errno.EACCES), ("write", errno.EIO)])
def test_failed_final_save_goes_to_the_fallback_and_exits_1(where, err, folders, fallback,
                                                            monkeypatch, capsys, caplog):
    inputs, outputs = folders
    out = outputs / "o.png"
    argv = _argv(inputs / "content.png", inputs / "style.png", out, "--iterations", "3")
    real_check = stylize.check_output_path

    def check_then_break(*args, **kwargs):  # the folder is fine at the start, not at the end
        path = real_check(*args, **kwargs)
        _fail_in(outputs, monkeypatch, where, err)
        return path

    monkeypatch.setattr(stylize, "check_output_path", check_then_break)
    code = cli.main(argv)
    monkeypatch.undo()
    stderr = capsys.readouterr().err
    saved = fallback / "o.png"
    assert code == 1, stderr
    assert f"instead of {out.resolve()}" in stderr and str(saved) in stderr
    assert os.strerror(err) in caplog.text  # why: logged by estilo.output (on stderr in use)
    assert list(outputs.iterdir()) == []  # nothing half-written, no temporary file
    assert read_parameters(saved)["iterations_done"] == 3
    with Image.open(saved) as img:
        assert img.size == OUTPUT_SIZE


def test_failed_save_everywhere_exits_2_in_one_line(folders, fallback, monkeypatch, capsys):
    inputs, outputs = folders
    real_check = stylize.check_output_path

    def check_then_break(*args, **kwargs):
        path = real_check(*args, **kwargs)
        _fail_in(outputs, monkeypatch, "write", errno.ENOSPC)
        _fail_in(fallback, monkeypatch, "replace", errno.ENOSPC)
        return path

    monkeypatch.setattr(stylize, "check_output_path", check_then_break)
    code = cli.main(_argv(inputs / "content.png", inputs / "style.png", outputs / "o.png"))
    monkeypatch.undo()
    err = capsys.readouterr().err
    _check_error(err, code, "nor the fallback", outputs)
    assert list(fallback.iterdir()) == []


def test_intermediate_saves_that_fall_back_reuse_one_file(folders, fallback, monkeypatch,
                                                          capsys):
    inputs, outputs = folders
    _fail_in(outputs, monkeypatch, "replace", errno.ENOSPC)
    code = cli.main(_argv(inputs / "content.png", inputs / "style.png", outputs / "o.png",
                          "--iterations", "6", "--save-every", "1"))
    monkeypatch.undo()
    assert code == 1, capsys.readouterr().err
    # five intermediate saves went to one fallback file (o.png), the final one tried the
    # target again, then went to o-1.png; the stale intermediate is removed
    assert [p.name for p in fallback.iterdir()] == ["o-1.png"]
    assert list(outputs.iterdir()) == []


def test_unwritable_folder_at_the_start_exits_2_before_any_work(folders, monkeypatch, capsys):
    inputs, outputs = folders

    def refuse(*args, **kwargs):  # tests run as root: chmod would not stop them
        raise PermissionError(errno.EACCES, "Permission denied")

    def never(*args, **kwargs):
        raise AssertionError("the network must not be loaded")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(Stylizer, "job", never)
    code = cli.main(_argv(inputs / "content.png", inputs / "style.png", outputs / "o.png"))
    _check_error(capsys.readouterr().err, code, "not writable", outputs)


def test_ctrl_c_before_the_run_exits_130_in_one_line(folders, monkeypatch, capsys):
    inputs, outputs = folders

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Stylizer, "job", interrupted)
    code = cli.main(_argv(inputs / "content.png", inputs / "style.png", outputs / "o.png"))
    err = capsys.readouterr().err.strip()
    assert code == 130 and err == "estilo: interrupted before the run started; nothing saved"
    assert list(outputs.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real 64 KiB tmpfs (root only; skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_real_full_disk(tiny_disk, folders, fallback):
    inputs, _ = folders
    filler = tiny_disk / "filler"
    with filler.open("wb") as fh:  # leave less room than the output needs
        try:
            fh.write(b"\0" * (64 * 1024 - 3000))
        except OSError:
            pass
    out = tiny_disk / "o.png"
    proc = _subprocess(*_argv(inputs / "content.png", inputs / "style.png", out, "--size", "64"),
                       TMPDIR=str(fallback))
    assert proc.returncode == 1, proc.stderr
    why, where = proc.stderr.strip().splitlines()
    assert "could not save" in why and "No space left on device" in why
    assert where.startswith(f"estilo: wrote {fallback / 'o.png'} instead of {out}")
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]  # no partial file
    with Image.open(fallback / "o.png") as img:
        assert img.size == (64, 48)


def test_sigterm_mid_run_saves_a_resumable_png(folders):
    inputs, outputs = folders
    out = outputs / "term.png"
    argv = [sys.executable, "-m", "estilo", str(inputs / "content.png"), str(inputs / "style.png"),
            "-o", str(out), "--weights", "random", "--size", "48", "--iterations", "100000",
            "--scales", "1", "--device", "cpu", "--save-every", "1", "-q"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    wait_for(out.exists, what="the first save (the run is inside its loop)")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "interrupted at iteration" in err
    assert [p.name for p in outputs.iterdir()] == ["term.png"]  # no temporary file
    params = read_parameters(out)
    assert params["interrupted"] is True and params["iterations_done"] >= 1
    assert params["iterations_total"] == 100000 and params["config"]["size"] == 48
    assert params["inputs"]["content"]["path"] == str((inputs / "content.png").resolve())
    with Image.open(out) as img:
        assert img.size == OUTPUT_SIZE and img.mode == "RGB"
    done = params["iterations_done"]
    assert cli.main(["resume", str(out), "--iterations", "1", "-q"]) == 0
    assert read_parameters(out)["iterations_done"] == done + 1


def test_nan_in_a_step_saves_the_last_good_image_and_exits_1(folders, monkeypatch, capsys):
    inputs, outputs = folders

    def nan_from_the_third(k, features):  # Adam: evaluation k sees the image after step k - 1
        return {n: f * float("nan") for n, f in features.items()} if k >= 3 else None

    seen = fault_in_the_network(monkeypatch, nan_from_the_third)
    out = outputs / "nan.png"
    code = cli.main(_argv(inputs / "content.png", inputs / "style.png", out, "--iterations", "9",
                          "--optimizer", "adam"))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "not finite" in err and "last good image (iteration 2)" in err
    assert "Traceback" not in err
    assert [p.name for p in outputs.iterdir()] == ["nan.png"]
    params = read_parameters(out)
    assert params["interrupted"] is True and params["iterations_done"] == 2
    saved = load_image(out)
    expected = estilo.io.image.to_pil(seen[2])  # the image after step 2
    assert saved.tobytes() == expected.tobytes()  # the last good image, not a black one
