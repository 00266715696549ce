"""estilo resume: continuing an interrupted (or finished) run from its saved PNG."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from estilo import cli
from estilo.io.output import read_parameters, save_image
from estilo.transfer import Job

FAST = ["--weights", "random", "--size", "48", "--scales", "1", "-q", "--style-layers", "1,3",
        "--content-layers", "3", "--device", "cpu"]


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    real = Job.steps

    def interrupted(self):
        for step in real(self):
            yield step
            if step.iteration == k:
                raise KeyboardInterrupt

    monkeypatch.setattr(Job, "steps", interrupted)


def _interrupted_run(content: Path, style: Path, out: Path, monkeypatch: pytest.MonkeyPatch,
                     *extra: str, k: int = 2) -> dict:
    with monkeypatch.context() as m:
        _interrupt_at(m, k)
        assert cli.main([str(content), str(style), "-o", str(out), *FAST, *extra]) == 130
    params = read_parameters(out)
    assert params["interrupted"] is True and params["iterations_done"] == k
    return params


def _one_line(capsys: pytest.CaptureFixture[str], code: int, expected: int = 2) -> str:
    err = capsys.readouterr().err.strip()
    assert code == expected, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_interrupted_run_resumes_in_place_to_the_full_count(content_path, style_path, tmp_path,
                                                            monkeypatch, capsys):
    out = tmp_path / "run.png"
    first = _interrupted_run(content_path, style_path, out, monkeypatch, "--iterations", "6", k=2)
    assert first["inputs"]["content"]["path"] == str(content_path.resolve())
    interrupted_sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert "interrupted at iteration 2" in capsys.readouterr().err
    assert cli.main(["resume", str(out), "-q"]) == 0
    params = read_parameters(out)
    assert params["iterations_done"] == 6 and params["iterations_total"] == 6
    assert params["interrupted"] is False
    assert params["resumed_from"] == {"path": str(out.resolve()), "iterations_done": 2}
    assert params["config"]["init"] == str(out.resolve()) and params["config"]["iterations"] == 4
    assert params["inputs"]["init"]["sha256"] == interrupted_sha  # started from the saved image
    assert params["inputs"]["content"] == first["inputs"]["content"]
    assert capsys.readouterr().err == ""  # -q: nothing but errors
    with Image.open(out) as img:
        assert img.size == (48, 36)


def test_resume_twice_and_to_a_new_file(content_path, style_path, tmp_path, monkeypatch):
    out, new = tmp_path / "run.png", tmp_path / "sub" / "new.png"
    _interrupted_run(content_path, style_path, out, monkeypatch, "--iterations", "8", k=2)
    with monkeypatch.context() as m:
        _interrupt_at(m, 3)
        assert cli.main(["resume", str(out), "-q"]) == 130
    assert read_parameters(out)["iterations_done"] == 5
    before = out.read_bytes()
    assert cli.main(["resume", str(out), "-o", str(new), "-q", "--save-every", "1"]) == 0
    assert out.read_bytes() == before  # -o leaves the saved file alone
    assert read_parameters(new)["iterations_done"] == 8


def test_finished_run_needs_iterations_to_continue(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "done.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *FAST,
                     "--iterations", "2"]) == 0
    capsys.readouterr()
    err = _one_line(capsys, cli.main(["resume", str(out), "-q"]))
    assert "already complete (2/2" in err and "--iterations" in err
    err = _one_line(capsys, cli.main(["resume", str(out), "-q", "--iterations", "0"]))
    assert "at least 1" in err
    assert cli.main(["resume", str(out), "-q", "--iterations", "3"]) == 0
    params = read_parameters(out)
    assert params["iterations_done"] == 5 and params["iterations_total"] == 5


def test_moved_inputs_are_found_with_content_and_style(content_path, style_path, tmp_path,
                                                        monkeypatch, capsys):
    out = tmp_path / "run.png"
    _interrupted_run(content_path, style_path, out, monkeypatch, "--iterations", "4")
    moved = tmp_path / "moved"
    moved.mkdir()
    content = Path(shutil.move(content_path, moved / "c.png"))
    capsys.readouterr()
    err = _one_line(capsys, cli.main(["resume", str(out), "-q"]))
    assert "content.png" in err and "--content" in err and "moved" in err
    style = Path(shutil.copy(style_path, moved / "s.png"))
    assert cli.main(["resume", str(out), "-q", "--content", str(content), "--style",
                     str(style)]) == 0
    assert read_parameters(out)["inputs"]["content"]["path"] == str(content.resolve())


def test_changed_inputs_are_refused_unless_no_verify(content_path, style_path, tmp_path,
                                                     monkeypatch, capsys):
    out = tmp_path / "run.png"
    _interrupted_run(content_path, style_path, out, monkeypatch, "--iterations", "4")
    Image.new("RGB", (64, 48), "green").save(style_path)
    capsys.readouterr()
    err = _one_line(capsys, cli.main(["resume", str(out), "-q"]))
    assert "style 1" in err and "sha256 differs" in err and "--no-verify" in err
    err = _one_line(capsys, cli.main(["resume", str(out), "-q", "--style", str(style_path),
                                      str(style_path)]))
    assert "1 style image(s) but 2" in err
    assert cli.main(["resume", str(out), "-q", "--no-verify"]) == 0


@pytest.mark.parametrize("case", ["plain_png", "jpeg", "missing", "exists", "not_an_image"])
def test_unusable_saved_files_exit_2(case, content_path, style_path, tmp_path, capsys):
    saved = tmp_path / "saved.png"
    argv = ["resume", str(saved), "-q"]
    if case == "plain_png":
        Image.new("RGB", (40, 40)).save(saved)
    elif case == "jpeg":
        saved = tmp_path / "saved.jpg"
        Image.new("RGB", (40, 40)).save(saved)
        argv = ["resume", str(saved), "-q"]
    elif case == "not_an_image":  # a text file: no --init suggested with it
        saved.write_text("hello\n")
    elif case == "exists":
        assert cli.main([str(content_path), str(style_path), "-o", str(saved), *FAST,
                         "--iterations", "1"]) == 0
        (tmp_path / "taken.png").write_bytes(b"keep")
        argv += ["--iterations", "1", "-o", str(tmp_path / "taken.png")]
    capsys.readouterr()
    err = _one_line(capsys, cli.main(argv))
    assert {"plain_png": "no estilo parameters", "jpeg": "no estilo parameters",
            "missing": "check the path", "exists": "--overwrite",
            "not_an_image": "not a supported image"}[case] in err
    assert case != "not_an_image" or "--init" not in err


def test_resume_reports_the_count_the_file_records(content_path, style_path, tmp_path,
                                                   monkeypatch, capsys):
    out = tmp_path / "levels.png"
    coarse = ["--scales", "2", "--start-size", "24", "--scale-iterations", "6", "--iterations", "3"]
    _interrupted_run(content_path, style_path, out, monkeypatch, *coarse, k=4)  # in level 1
    capsys.readouterr()
    assert cli.main(["resume", str(out)]) == 0
    params = read_parameters(out)
    done, total = params["iterations_done"], params["iterations_total"]
    assert (done, total) == (7, 7)  # 4 before, then the whole last level (3)
    err = capsys.readouterr().err
    assert f"estilo: wrote {out.resolve()} (7/7 iterations, 3 in this run, " in err
    assert "3/3 iterations" not in err


def test_size_enlarges_a_finished_run_under_max_memory(content_path, style_path, tmp_path):
    out, big = tmp_path / "done.png", tmp_path / "big.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *FAST,
                     "--iterations", "2"]) == 0
    assert cli.main(["resume", str(out), "-q", "--size", "96", "--max-memory", "2GB",
                     "-o", str(big)]) == 0
    params = read_parameters(big)
    assert params["size"] == [96, 72] and params["iterations_done"] == 2 + 2  # a whole level
    assert params["config"]["upscale"] is True and params["config"]["max_memory"] == "2GB"


def test_a_moved_mask_is_given_with_mask(content_path, style_path, tmp_path, capsys):
    mask, out = tmp_path / "mask.png", tmp_path / "masked.png"
    halves = Image.new("L", (64, 48), 0)
    halves.paste(255, (32, 0, 64, 48))
    halves.save(mask)
    other = tmp_path / "other.png"
    Image.new("RGB", (48, 48), (20, 160, 40)).save(other)
    assert cli.main([str(content_path), str(style_path), str(other), "--mask", str(mask),
                     "-o", str(out), *FAST, "--iterations", "1"]) == 0
    moved = Path(shutil.move(mask, tmp_path / "kept-mask.png"))
    capsys.readouterr()
    err = _one_line(capsys, cli.main(["resume", str(out), "-q", "--iterations", "1"]))
    assert "mask" in err and "--mask" in err
    assert cli.main(["resume", str(out), "-q", "--iterations", "1", "--mask", str(moved)]) == 0
    assert read_parameters(out)["config"]["mask"] == str(moved)


def test_a_studio_upload_is_known_by_its_own_sha256(content_path, style_path, tmp_path,
                                                    capsys):
    """A studio PNG names the server's copies; the user's own files are accepted."""
    original = tmp_path / "holiday.jpg"
    with Image.open(content_path) as image:
        image.convert("RGB").save(original, quality=90)
    out = tmp_path / "studio.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *FAST,
                     "--iterations", "2"]) == 0
    params = read_parameters(out)
    params["inputs"]["content"]["upload"] = {
        "name": "holiday.jpg", "sha256": hashlib.sha256(original.read_bytes()).hexdigest()}
    with Image.open(out) as image:
        save_image(image, out, parameters=params)
    content_path.unlink()  # the server's copy is gone
    capsys.readouterr()
    err = _one_line(capsys, cli.main(["resume", str(out), "-q", "--iterations", "1"]))
    assert "uploaded to the estilo studio" in err and "'holiday.jpg'" in err and "--content" in err
    assert cli.main(["resume", str(out), "-q", "--iterations", "1", "--content",
                     str(original)]) == 0
    assert read_parameters(out)["iterations_done"] == 3
