"""``estilo grid``: rows, sheet and tables, the report's table, Ctrl-C, SIGTERM and --resume."""

import signal
import subprocess
import sys
from pathlib import Path

from PIL import Image

from estilo import cli
from estilo.cli import grid as grid_command
from estilo.grids import spec
from estilo.io.output import read_parameters
from estilo.transfer import Job
from imaging import read_csv, stderr_until, subprocess_env

# Shared options of the runs below: random weights, one level, shallow layers.
FAST = ["--iterations", "2", "--weights", "random", "--scales", "1", "--device", "cpu", "-q",
        "--style-layers", "1,3", "--content-layers", "3", "--size", "48"]


CSV_COLUMNS = ["index", "label", "file", "style_weight", "status", "iterations", "content_loss",
               "style_loss", "wall_s"]



def _grid(content, style, out, *extra):
    return cli.main(["grid", str(content), str(style), "-o", str(out), *FAST, *extra])


def test_grid_command_writes_rows_sheet_and_tables(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert _grid(content_path, style_path, out, "--param", "style_weight=1e3,1e5",
                 "--tile-size", "50") == 0
    rows = sorted((tmp_path / "sheet_rows").iterdir())
    assert [p.name for p in rows] == ["1-style_weight-1000.png", "2-style_weight-1e5.png"]
    params = [read_parameters(p) for p in rows]
    assert [p["config"]["style_weight"] for p in params] == [1e3, 1e5]
    assert all(p["config"]["seed"] == 0 and p["iterations_done"] == 2 for p in params)
    assert params[1]["grid"]["label"] == "style_weight=1e5"
    table = read_csv(tmp_path / "sheet.csv")
    assert list(table[0]) == CSV_COLUMNS
    assert [(r["index"], r["label"], r["file"], r["style_weight"], r["status"], r["iterations"])
            for r in table] == [
        ("1", "style_weight=1000", "sheet_rows/1-style_weight-1000.png", "1000", "done", "2"),
        ("2", "style_weight=1e5", "sheet_rows/2-style_weight-1e5.png", "1e5", "done", "2")]
    assert all(float(r["content_loss"]) > 0 and float(r["style_loss"]) > 0
               and float(r["wall_s"]) > 0 for r in table)
    markdown = (tmp_path / "sheet.md").read_text()
    assert "| # | style_weight | content loss | style loss | wall s | image |" in markdown
    assert "(sheet_rows/2-style_weight-1e5.png)" in markdown and "iterations=2" in markdown
    with Image.open(out) as sheet:
        assert sheet.width == 12 + 2 * (50 + 12)  # four tiles (content, style, 2 rows): 2 x 2
    assert read_parameters(out)["rows"][0]["label"] == "style_weight=1000"
    assert capsys.readouterr().err == ""  # -q: nothing but errors


def test_report_table_preset_runs_nine_rows(content_path, style_path, images, tmp_path):
    """Two styles: row 9 takes the second (--no-upscale keeps the tiny photo's size)."""
    out = tmp_path / "table.png"
    second = images["styles"][1]
    argv = ["grid", str(content_path), str(style_path), str(second), "-o", str(out),
            "--preset", "report-table", "--weights", "random", "--iterations", "1",
            "--device", "cpu", "-q", "--tile-size", "40", "--no-upscale"]
    assert cli.main(argv) == 0
    table = read_csv(tmp_path / "table.csv")
    configs = spec.configs(spec.preset("report-table"))
    shown = spec.differing(configs)
    assert [r["label"] for r in table] == [
        f"{spec.label(c, shown, 'conv-index')} style {1 + (i == 8)}" for i, c in enumerate(configs)]
    assert [r["style"] for r in table] == ["style.png"] * 8 + ["wave.png"]
    assert len(list((tmp_path / "table_rows").glob("*.png"))) == 9
    markdown = (tmp_path / "table.md").read_text()
    assert "| # | Ts | Tc | Ws | Wc | N | avg | size | style |" in markdown
    assert "| 5 | 2,4,8,12,16 | 9 | 1e5 | 1 | x | x | 224 | style.png |" in markdown
    assert "| 9 | 2,4,8,12,16 | 9 | 1e5 | 5 | x | x | 512 | wave.png |" in markdown


def _interrupt_at_job(monkeypatch, k):
    """Make the k-th job started (1-based) raise KeyboardInterrupt at its first step."""
    real, started = Job.steps, []

    def steps(self):
        started.append(self.config)
        for step in real(self):
            if len(started) == k:
                raise KeyboardInterrupt
            yield step

    monkeypatch.setattr(Job, "steps", steps)
    return started


def test_ctrl_c_keeps_finished_rows_and_writes_the_sheet(content_path, style_path, tmp_path,
                                                          monkeypatch, capsys):
    _interrupt_at_job(monkeypatch, 3)
    out = tmp_path / "int.png"
    code = _grid(content_path, style_path, out, "--param", "style_weight=1,10,100,1000")
    assert code == 130
    assert [r["label"] for r in read_csv(tmp_path / "int.csv")] == [
        "style_weight=1", "style_weight=10"]
    assert len(read_parameters(out)["rows"]) == 2
    assert len(list((tmp_path / "int_rows").iterdir())) == 2
    assert "interrupted" in capsys.readouterr().err


def test_resume_skips_done_rows_and_reruns_changed_ones(content_path, style_path, tmp_path,
                                                         monkeypatch):
    out = tmp_path / "r.png"
    started = _interrupt_at_job(monkeypatch, 3)
    assert _grid(content_path, style_path, out, "--param", "style_weight=1,10,100") == 130
    monkeypatch.undo()
    started = []
    monkeypatch.setattr(Job, "steps", _counting(started))
    assert _grid(content_path, style_path, out, "--param", "style_weight=1,10,100",
                 "--resume") == 0
    assert [c.style_weight for c in started] == [100.0]
    table = read_csv(tmp_path / "r.csv")
    assert [(r["style_weight"], r["status"]) for r in table] == [
        ("1", "resumed"), ("10", "resumed"), ("100", "done")]
    started.clear()
    assert _grid(content_path, style_path, out, "--param", "style_weight=1,20,100",
                 "--resume") == 0
    assert [c.style_weight for c in started] == [20.0]
    started.clear()
    style_path.write_bytes(Path(content_path).read_bytes())  # changed input: all rerun
    assert _grid(content_path, style_path, out, "--param", "style_weight=1,20", "--resume") == 0
    assert [c.style_weight for c in started] == [1.0, 20.0]


def _counting(started):
    real = Job.steps

    def steps(self):
        started.append(self.config)
        yield from real(self)

    return steps


def test_existing_sheet_needs_overwrite_or_resume(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "e.png"
    out.write_bytes(b"keep")
    assert _grid(content_path, style_path, out, "--param", "seed=1,2") == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and len(err.splitlines()) == 1
    assert "--resume" in err and "--overwrite" in err  # both ways on, named
    assert out.read_bytes() == b"keep"


def test_rows_no_longer_in_the_grid_are_set_aside_and_said(content_path, style_path, tmp_path,
                                                           capsys, caplog):
    out = tmp_path / "s.png"
    rows = tmp_path / "s_rows"
    assert _grid(content_path, style_path, out, "--param", "style_weight=1,10") == 0
    (rows / "notes.txt").write_text("mine")
    capsys.readouterr()
    loud = [a for a in FAST if a != "-q"]
    assert cli.main(["grid", str(content_path), str(style_path), "-o", str(out), *loud,
                     "--param", "style_weight=1,20", "--resume"]) == 0
    assert sorted(p.name for p in rows.glob("*.png")) == ["1-style_weight-1.png",
                                                          "2-style_weight-20.png"]
    assert [p.name for p in (rows / "old").iterdir()] == ["2-style_weight-10.png"]
    assert (rows / "notes.txt").read_text() == "mine"  # only row images are moved
    assert (f"moved 1 row image(s) that are not part of this grid to {rows / 'old'}: "
            "2-style_weight-10.png") in caplog.text
    err = capsys.readouterr().err
    assert "(2/2 rows, 1 reused)" in err
    # In a log (stderr is not a terminal here): one line per row run, no bar.
    assert [line.split(":")[1] for line in err.splitlines() if " row " in line] == [
        " row 1/1 #2 style_weight=20"]
    assert cli.main(["grid", str(content_path), str(style_path), "-o", str(out), *loud,
                     "--param", "style_weight=1,20", "--resume"]) == 0
    assert caplog.text.count("moved") == 1  # nothing left to move


def test_bad_param_is_one_line_exit_2(content_path, style_path, tmp_path, capsys):
    for bad in ("stlye_weight=1,2", "pooling=min", "style_weight", "iterations=a"):
        assert _grid(content_path, style_path, tmp_path / "b.png", "--param", bad) == 2, bad
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "b.png").exists()


def test_explicit_options_are_only_those_given():
    assert grid_command.explicit_options(["c", "s", "--preset", "report-table", "--pooling", "avg"]) == \
        {"pooling": "avg"}


def test_sigterm_keeps_finished_rows(content_path, style_path, tmp_path):
    out = tmp_path / "t.png"
    argv = [sys.executable, "-m", "estilo", "grid", str(content_path), str(style_path), "-o",
            str(out), *[a for a in FAST[2:] if a != "-q"], "--param", "iterations=1,100000"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    # In a log, row 1's line comes when row 2 takes its first step: row 1 is finished.
    head = stderr_until(proc, "estilo: row 1/2 #1")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    err = head + err
    assert proc.returncode == 143, err
    assert [r["iterations"] for r in read_csv(tmp_path / "t.csv")] == ["1"]
    assert out.exists() and "Traceback" not in err
