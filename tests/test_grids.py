"""Parameter grids: the seed preset, --param products, labels, tables, Ctrl-C and --resume."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import estilo
from estilo import cli, gridrun, grids
from estilo.config import ConfigError, StyleConfig
from estilo.output import read_parameters
from estilo.transfer import Job

SEED_TS = ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")   # 2,4,8,12,16
GATYS_TS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # 1,3,5,9,13
# (Ts, Tc, Ws, Wc, N, avg, size): the seed report's table, section 4, row by row.
SEED_TABLE = [
    (SEED_TS, "conv4_1", 500.0, 5.0, False, False, 224),
    (SEED_TS, "conv4_1", 1e5, 1.0, False, False, 224),
    (GATYS_TS, "conv2_1", 1e5, 1.0, False, False, 224),
    (GATYS_TS, "conv4_2", 500.0, 1.0, False, True, 224),
    (SEED_TS, "conv4_1", 1e5, 1.0, True, True, 224),
    (SEED_TS, "conv4_1", 1e5, 1.0, True, True, 512),
    (SEED_TS, "conv4_1", 1e5, 5.0, True, True, 512),
    (GATYS_TS, "conv4_1", 1e5, 2.0, True, True, 512),
    (SEED_TS, "conv4_1", 1e5, 5.0, True, True, 512),
]
SEED_LABELS = [
    "Ts=2,4,8,12,16 Tc=9 Ws=500 Wc=5 224",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 224",
    "Ts=1,3,5,9,13 Tc=3 Ws=1e5 Wc=1 224",
    "Ts=1,3,5,9,13 Tc=10 Ws=500 Wc=1 avg 224",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 224",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=5 N avg 512",
    "Ts=1,3,5,9,13 Tc=9 Ws=1e5 Wc=2 N avg 512",
    "Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=5 N avg 512",
]
# Shared options of the runs below: random weights, one level, shallow layers.
FAST = ["--iterations", "2", "--weights", "random", "--scales", "1", "--device", "cpu", "-q",
        "--style-layers", "1,3", "--content-layers", "3", "--size", "48"]
TINY = {"weights": "random", "iterations": 2, "scales": 1, "device": "cpu",
        "style_layers": "1,3", "content_layers": "3", "size": 48}
CSV_COLUMNS = ["index", "label", "file", "style_weight", "status", "iterations", "content_loss",
               "style_loss", "wall_s"]


def test_preset_is_the_seed_table_with_indices_resolved():
    spec = grids.preset("seed-table")
    configs = grids.configs(spec)
    got = [(c.style_layers, c.content_layers[0], c.style_weight, c.content_weight,
            c.init == "content+noise", c.pooling == "avg", c.size) for c in configs]
    assert got == SEED_TABLE
    assert {c.init for c in configs} == {"noise", "content+noise"}
    assert all(c.noise_ratio == 0.6 and c.scales == 1 for c in configs)
    assert spec.notation == "seed"


def test_preset_labels_use_the_seed_notation():
    configs = grids.configs(grids.preset("seed-table"))
    shown = grids.differing(configs)
    assert [grids.label(c, shown, "seed") for c in configs] == SEED_LABELS


def test_unknown_preset():
    with pytest.raises(ConfigError, match="seed-table"):
        grids.preset("nope")


def test_param_values_use_the_cli_converters():
    assert grids.parse_param("style_weight=1e3,1e5") == ("style_weight", [1e3, 1e5])
    assert grids.parse_param("size=224,40x32") == ("size", [224, (40, 32)])
    assert grids.parse_param("pooling=max,avg") == ("pooling", ["max", "avg"])
    assert grids.parse_param("upscale=true,false") == ("upscale", [True, False])
    assert grids.parse_param("lr=none,0.1") == ("lr", [None, 0.1])
    assert grids.parse_param("style-layers=1,3,5;conv4_1") == ("style_layers", ["1,3,5", "conv4_1"])
    with pytest.raises(ConfigError, match="bad value 'x' for iterations"):
        grids.parse_param("iterations=10,x")


def test_unknown_param_lists_the_valid_names():
    with pytest.raises(ConfigError) as info:
        grids.parse_param("stlye_weight=1,2")
    message = str(info.value)
    assert "'stlye_weight'" in message and "style_weight" in message and "noise_ratio" in message
    assert "\n" not in message


def test_cartesian_product_last_name_fastest():
    rows = grids.expand({"style_weight": [1e3, 1e5], "pooling": ["max", "avg"], "seed": [0]})
    assert rows == [
        {"style_weight": 1e3, "pooling": "max", "seed": 0},
        {"style_weight": 1e3, "pooling": "avg", "seed": 0},
        {"style_weight": 1e5, "pooling": "max", "seed": 0},
        {"style_weight": 1e5, "pooling": "avg", "seed": 0},
    ]
    spec = grids.spec_from(params={"style_layers": ["1,3", "conv2_1"], "size": [32, 48]})
    configs = grids.configs(spec)
    assert [(c.style_layers, c.size) for c in configs] == [
        (("conv1_1", "conv2_1"), 32), (("conv1_1", "conv2_1"), 48),
        (("conv2_1",), 32), (("conv2_1",), 48)]


def test_labels_show_only_what_differs():
    base = StyleConfig(weights="random")
    configs = [base.replace(style_weight=1e5, pooling="avg"),
               base.replace(style_weight=500.0, pooling="avg"),
               base.replace(style_weight=1e5, pooling="avg", size=(40, 32))]
    shown = grids.differing(configs)
    assert shown == ["size", "style_weight"]
    assert [grids.label(c, shown) for c in configs] == [
        "size=512 style_weight=1e5", "size=512 style_weight=500", "size=40x32 style_weight=1e5"]
    assert [grids.label(c, shown, "seed") for c in configs] == [
        "Ws=1e5 512", "Ws=500 512", "Ws=1e5 40x32"]
    assert grids.differing([base, base]) == [] and grids.label(base, []) == ""


def test_seed_notation_of_names_and_other_inits():
    config = StyleConfig(style_layers=("relu1_1", "conv2_1"), init="content", pooling="max")
    assert grids.label(config, ["style_layers", "init", "pooling", "lr_factor"], "seed") == \
        "Ts=relu1_1,conv2_1 init=content lr_factor=0.7"


def test_slugs_are_file_names():
    assert grids.slug("Ts=2,4,8,12,16 Tc=9 Ws=1e5 Wc=1 N avg 512") == \
        "ts-2-4-8-12-16-tc-9-ws-1e5-wc-1-n-avg-512"
    assert grids.slug("init=/tmp/a b.png") == "init-tmp-a-b.png"
    assert grids.slug("") == "row" and len(grids.slug("x" * 200)) == 60


def test_grid_file_rows_base_and_errors(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('notation = "seed"\n[base]\nstyle_weight = 1000\n'
                    '[[rows]]\ncontent_layers = "10"\n[[rows]]\ncontent_layers = [3]\n'
                    'size = "40x32"\n')
    spec = grids.load_spec(path)
    assert spec.notation == "seed" and spec.base == {"style_weight": 1000.0}
    configs = grids.configs(spec, {"seed": 3})
    assert [(c.content_layers, c.size, c.style_weight, c.seed) for c in configs] == [
        (("conv4_2",), 512, 1000.0, 3), (("conv2_1",), (40, 32), 1000.0, 3)]
    for bad, message in [("[[rows]]\nstyle_wieght = 1\n", "style_wieght"),
                         ("notation = 'x'\n[[rows]]\nseed = 1\n", "notation"),
                         ("[base]\nseed = 1\n", "no \\[\\[rows\\]\\]"),
                         ("rows = [", "grid file"), ("colour = 1\n[[rows]]\n", "colour")]:
        path.write_text(bad)
        with pytest.raises(ConfigError, match=message):
            grids.load_spec(path)
    with pytest.raises(ConfigError, match="cannot read"):
        grids.load_spec(tmp_path / "missing.toml")


def test_options_for_all_rows_replace_the_rows_values(caplog):
    configs = grids.configs(grids.preset("seed-table"), {"size": 64, "iterations": 5})
    assert {c.size for c in configs} == {64} and {c.iterations for c in configs} == {5}
    assert "size set for all rows" in caplog.text


def test_spec_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one"):
        grids.spec_from()
    with pytest.raises(ConfigError, match="exactly one"):
        grids.spec_from(preset_name="seed-table", params={"seed": [1]})


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


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
    table = _read_csv(tmp_path / "sheet.csv")
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


def test_losses_are_one_fixed_measure(content_path, style_path, tmp_path):
    """Rows with different objectives are measured with the same network and layers."""
    out = tmp_path / "s.png"
    assert _grid(content_path, style_path, out, "--param", "content_layers=1;3") == 0
    job = estilo.Stylizer().job(content_path, style_path, StyleConfig(weights="random", size=48))
    evaluator = gridrun.Evaluator(job, size=48, weights="random", stylizer=estilo.Stylizer())
    for row in _read_csv(tmp_path / "s.csv"):
        with Image.open(tmp_path / row["file"]) as im:
            measured = evaluator(im.convert("RGB"))
        assert float(row["content_loss"]) == pytest.approx(measured["content"], rel=1e-5)
        assert float(row["style_loss"]) == pytest.approx(measured["style"], rel=1e-5)
    with Image.open(content_path) as im:
        assert evaluator(im.convert("RGB"))["content"] == pytest.approx(0.0, abs=1e-6)


def test_seed_preset_runs_nine_rows(content_path, style_path, tmp_path):
    out = tmp_path / "seed.png"
    argv = ["grid", str(content_path), str(style_path), "-o", str(out), "--preset", "seed-table",
            "--weights", "random", "--iterations", "1", "--device", "cpu", "-q",
            "--tile-size", "40"]
    assert cli.main(argv) == 0
    table = _read_csv(tmp_path / "seed.csv")
    assert [r["label"] for r in table] == SEED_LABELS
    assert len(list((tmp_path / "seed_rows").glob("*.png"))) == 9
    markdown = (tmp_path / "seed.md").read_text()
    assert "| # | Ts | Tc | Ws | Wc | N | avg | size |" in markdown
    assert "| 5 | 2,4,8,12,16 | 9 | 1e5 | 1 | x | x | 224 |" in markdown


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
    assert [r["label"] for r in _read_csv(tmp_path / "int.csv")] == [
        "style_weight=1", "style_weight=10"]
    assert len(read_parameters(out)["rows"]) == 2
    assert len(list((tmp_path / "int_rows").iterdir())) == 2
    assert "interrupted" in capsys.readouterr().err


def test_ctrl_c_in_the_consumer_still_writes(content_path, style_path, tmp_path):
    runner = gridrun.Grid(content_path, style_path, grids.spec_from(params={"seed": [1, 2]}),
                        tmp_path / "g.png", overrides=TINY)
    steps = runner.steps()
    for item in steps:
        if item.row.index == 2:
            break
    steps.close()
    assert [r["index"] for r in _read_csv(tmp_path / "g.csv")] == ["1"]


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
    table = _read_csv(tmp_path / "r.csv")
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
    assert gridrun.explicit_options(["c", "s", "--preset", "seed-table", "--pooling", "avg"]) == \
        {"pooling": "avg"}


def test_python_api(content_path, style_path, tmp_path):
    result = estilo.grid(content_path, style_path, tmp_path / "api.png",
                         params={"style_weight": [1e3, 1e5]}, weights="random", size=48,
                         iterations=2, scales=1, device="cpu", style_layers="1,3",
                         content_layers="3", tile_size=40)
    assert [r.row.label for r in result.rows] == ["style_weight=1000", "style_weight=1e5"]
    assert result.sheet.exists() and result.csv.exists() and result.markdown.exists()
    assert all(r.status == "done" and r.iterations == 2 for r in result.rows)


def test_sigterm_keeps_finished_rows(content_path, style_path, tmp_path):
    out = tmp_path / "t.png"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "estilo", "grid", str(content_path), str(style_path), "-o",
            str(out), *FAST[2:], "--param", "iterations=1,100000"]  # FAST without --iterations
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while not list(tmp_path.glob("t_rows/1-*.png")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert [r["iterations"] for r in _read_csv(tmp_path / "t.csv")] == ["1"]
    assert out.exists() and "Traceback" not in err
