"""The command line: every flag used at least once, bad inputs, interruptions."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from estilo import cli
from estilo.cli import stylize
from estilo.io.output import read_parameters
from imaging import subprocess_env, wait_for

FAST = ["--weights", "random", "--size", "48", "--iterations", "3", "--scales", "1", "-q",
        "--style-layers", "1,3", "--content-layers", "3", "--device", "cpu"]

# Every option of `estilo CONTENT STYLE`, with a value; all used together in one run below.
EVERY_OPTION = [
    "--size", "40x32", "--style-size", "48", "--upscale", "--content-layers", "relu2_1:2",
    "--style-layers", "1:0.5,3", "--content-layer-weights", "3",
    "--style-layer-weights", "1,2", "--content-weight", "2", "--style-weight", "1e4", "--strength", "3",
    "--tv-weight", "0.1", "--chroma-tv-weight", "7", "--noise", "colour", "--palette", "photo",
    "--feature-norm", "none", "--gram-norm", "hw", "--weights", "random",
    "--pooling", "max", "--init", "content", "--noise-ratio", "0.8", "--seed", "5",
    "--optimizer", "sgd", "--lr", "10", "--lr-schedule", "plateau", "--lr-patience", "2",
    "--lr-factor", "0.5", "--lr-min", "0.001", "--iterations", "4", "--scales", "2",
    "--start-size", "20", "--scale-iterations", "2", "--device", "cpu", "--save-every", "2",
    "--overwrite", "--quiet", "--background", "#102030", "--style-scale", "0.5",
    "--style-loss", "meancov", "--layer-weighting", "channels", "--style-blend", "1,3",
    "--preserve-color", "luminance", "--keep-alpha", "--precision", "float32",
    "--checkpointing", "on", "--max-memory", "64GB", "--tile", "64",
]
# Options that take paths, added by the test below: a second style and a two-region mask.
PATH_OPTIONS = ["--style", "--mask"]
OTHER_FLAGS = ["--debug", "--version", "--help", "-h", "-o", "--output", "-q", "--no-upscale",
               "--no-mkdir", "--blend", "--no-keep-alpha", *PATH_OPTIONS]


def test_every_flag_is_exercised_by_these_tests():
    parser = stylize.build_parser()
    flags = {s for a in parser._actions for s in a.option_strings}
    used = set(EVERY_OPTION) | set(OTHER_FLAGS) | set(FAST)
    assert flags - used == set()


def _two_region_mask(tmp_path):
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (32, 0, 64, 48))
    mask.save(tmp_path / "mask.png")
    return tmp_path / "mask.png"


def test_every_option_reaches_the_embedded_parameters(content_path, style_path, tmp_path):
    out = tmp_path / "every.png"
    out.write_bytes(b"old")
    mask = _two_region_mask(tmp_path)
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *EVERY_OPTION,
                     "--style", str(content_path), "--mask", str(mask)]) == 0
    params = read_parameters(out)
    config = params["config"]
    assert config["style_scale"] == 0.5 and config["style_loss"] == "meancov"
    assert config["layer_weighting"] == "channels" and config["style_blend"] == [0.25, 0.75]
    assert config["preserve_color"] == "luminance" and config["keep_alpha"] is True
    assert config["mask"] == str(mask) and params["inputs"]["mask"]["name"] == "mask.png"
    assert [s["name"] for s in params["inputs"]["styles"]] == ["style.png", "content.png"]
    assert config["size"] == [40, 32] and config["style_size"] == 48 and config["upscale"] is True
    assert config["background"] == "#102030"
    assert config["content_layers"] == ["relu2_1"] and config["content_layer_weights"] == [3.0]
    assert config["style_layers"] == ["conv1_1", "conv2_1"] and config["style_layer_weights"] == [1.0, 2.0]
    assert (config["content_weight"], config["style_weight"], config["tv_weight"]) == (2.0, 1e4, 0.1)
    assert (config["feature_norm"], config["gram_norm"], config["pooling"]) == ("none", "hw", "max")
    assert (config["init"], config["noise_ratio"], config["seed"]) == ("content", 0.8, 5)
    assert (config["chroma_tv_weight"], config["noise"], config["palette"]) == (7.0, "colour", "photo")
    assert (config["optimizer"], config["lr"], config["lr_schedule"]) == ("sgd", 10.0, "plateau")
    assert (config["lr_patience"], config["lr_factor"], config["lr_min"]) == (2, 0.5, 0.001)
    assert (config["iterations"], config["scales"], config["start_size"],
            config["scale_iterations"]) == (4, 2, 20, 2)
    assert (config["precision"], config["checkpointing"]) == ("float32", "on")
    assert (config["max_memory"], config["tile"]) == ("64GB", 64)
    with Image.open(out) as img:
        assert img.size == (40, 32)


def test_default_run_writes_png_with_parameters(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "sub" / "out.png"
    assert cli.main([str(content_path), str(style_path), "--output", str(out), *FAST]) == 0
    params = read_parameters(out)
    assert params["weights"]["source"] == "random" and params["iterations_done"] == 3
    assert params["inputs"]["styles"][0]["name"] == "style.png"
    assert params["interrupted"] is False
    assert capsys.readouterr().err == ""  # -q: nothing but errors


def test_the_plan_is_printed_once_and_help_says_what_iterations_counts(content_path, style_path,
                                                                       tmp_path, capsys):
    fast = [a for a in FAST if a != "-q"]
    out = tmp_path / "plan.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *fast, "--scales", "0",
                     "--start-size", "16", "--scale-iterations", "2", "--iterations", "1"]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "estilo: 2 levels: 24x18 px x 2, 48x36 px x 1 iterations (3 in all)"
    # stderr is not a terminal here: one line per level, no carriage-return bar, no "0it".
    assert lines[1].startswith("estilo: level 1/2 24x18: iteration 2/3, loss ")
    assert lines[2].startswith("estilo: level 2/2 48x36: iteration 3/3, loss ")
    assert lines[3].startswith(f"estilo: wrote {out} (3/3 iterations, ") and len(lines) == 4
    assert "\r" not in err and "it/s" not in err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "iterations at the output size" in text and "adds --scale-iterations" in text


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and "estilo" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["-h"])
    assert "--style-weight" in capsys.readouterr().out


def _one_line_error(capsys, code, expected_code=2):
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("case", ["missing", "not_image", "truncated", "tiny", "directory"])
def test_bad_inputs_exit_2_with_one_line_and_no_file(case, content_path, style_path, tmp_path, capsys):
    bad = tmp_path / f"{case}.png"
    if case == "not_image":
        bad.write_text("hello")
    elif case == "truncated":
        data = content_path.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "tiny":
        Image.new("RGB", (8, 8)).save(bad)
    elif case == "directory":
        bad.mkdir()
    out = tmp_path / "out.png"
    code = cli.main([str(bad), str(style_path), "-o", str(out), *FAST])
    _one_line_error(capsys, code)
    assert not out.exists()
    code = cli.main([str(content_path), str(bad), "-o", str(out), *FAST])
    _one_line_error(capsys, code)
    assert not out.exists()


def test_bad_options_exit_2(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "o.png"
    for extra in (["--style-layers", "conv9_9"], ["--pooling", "min"], ["--size", "big"],
                  ["--noise-ratio", "3"], ["--weights", "nonexistent.pth"], ["--device", "cuda:7"],
                  ["--init", str(tmp_path / "nope.png")], ["--style-layer-weights", "a,b"],
                  ["--max-memory", "lots"], ["--max-memory", "8"], ["--max-memory", "-1GB"],
                  ["--tile", "100"], ["--tile", "32"], ["--tile", "big"]):
        with pytest.raises(SystemExit) as info:
            code = cli.main([str(content_path), str(style_path), "-o", str(out), *FAST, *extra])
            raise SystemExit(code)
        assert info.value.code == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_unknown_layer_message_lists_valid_names(content_path, style_path, tmp_path, capsys):
    code = cli.main([str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *FAST,
                     "--content-layers", "conv4_9"])
    err = _one_line_error(capsys, code)
    assert "conv4_2" in err and "relu5_4" in err


def test_existing_output_and_inputs_are_not_overwritten(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "exists.png"
    out.write_bytes(b"keep me")
    _one_line_error(capsys, cli.main([str(content_path), str(style_path), "-o", str(out), *FAST]))
    assert out.read_bytes() == b"keep me"
    before = content_path.read_bytes()
    _one_line_error(capsys, cli.main([str(content_path), str(style_path), "-o", str(content_path),
                                      "--overwrite", *FAST]))
    assert content_path.read_bytes() == before


def test_unwritable_output_folder(content_path, style_path, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main([str(content_path), str(style_path), "-o", str(blocker / "out.png"), *FAST])
    _one_line_error(capsys, code)
    code = cli.main([str(content_path), str(style_path), "-o", str(tmp_path / "out.gifx"), *FAST])
    _one_line_error(capsys, code)


def test_no_mkdir_refuses_a_missing_output_folder(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "missing" / "o.png"
    err = _one_line_error(capsys, cli.main([str(content_path), str(style_path), "-o", str(out),
                                            "--no-mkdir", *FAST]))
    assert "does not exist" in err and not out.parent.exists()


def test_ctrl_c_saves_the_current_image(content_path, style_path, tmp_path, monkeypatch, capsys):
    from estilo.transfer import Job
    real = Job.steps

    def interrupted(self):
        for step in real(self):
            yield step
            if step.iteration == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(Job, "steps", interrupted)
    out = tmp_path / "int.png"
    code = cli.main([str(content_path), str(style_path), "-o", str(out), *FAST[:-6],
                     "--iterations", "50", "--device", "cpu"])
    assert code == 130
    params = read_parameters(out)
    assert params["interrupted"] is True and params["iterations_done"] == 2
    assert "interrupted" in capsys.readouterr().err


def test_save_every_writes_intermediate_images(content_path, style_path, tmp_path, monkeypatch):
    seen = []
    real = stylize.save_image

    def spy(img, path, **kw):
        seen.append(kw["parameters"].get("partial", False))
        return real(img, path, **kw)

    monkeypatch.setattr(stylize, "save_image", spy)
    out = tmp_path / "se.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *FAST, "--iterations", "5",
                     "--save-every", "2"]) == 0
    assert seen == [True, True, False]


def test_internal_errors_are_one_line_unless_debug(content_path, style_path, tmp_path, monkeypatch,
                                                   capsys):
    from estilo.transfer import Job

    def boom(self):
        raise ZeroDivisionError("bug")
        yield

    monkeypatch.setattr(Job, "steps", boom)
    argv = [str(content_path), str(style_path), "-o", str(tmp_path / "b.png"), *FAST]
    err = _one_line_error(capsys, cli.main(argv), expected_code=1)
    assert "internal error" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        cli.main([*argv, "--debug"])


def test_sigterm_saves_and_exits_143(content_path, style_path, tmp_path):
    out = tmp_path / "term.png"
    argv = [sys.executable, "-m", "estilo", str(content_path), str(style_path), "-o", str(out),
            "--weights", "random", "--size", "64", "--iterations", "100000", "--scales", "1",
            "--device", "cpu", "--save-every", "1"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    wait_for(out.exists, what="the first save (the run is inside its loop)")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    params = read_parameters(out)
    assert params["interrupted"] is True and params["iterations_done"] >= 1
    assert "Traceback" not in err


def test_python_dash_m_and_console_script_usage(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "estilo", "missing.png", "x.png", "-o",
                           str(tmp_path / "o.png")], capture_output=True, text=True, env=subprocess_env(),
                          check=False)
    assert proc.returncode == 2
    assert re.match(r"estilo: error: .*missing\.png", proc.stderr.strip())
    assert len(proc.stderr.strip().splitlines()) == 1


def test_style_option_spelling_and_blend_alias(content_path, style_path, tmp_path):
    out = tmp_path / "two.png"
    assert cli.main([str(content_path), "--style", str(style_path), str(content_path),
                     "--blend", "3,7", "-o", str(out), *FAST]) == 0
    params = read_parameters(out)
    assert params["config"]["style_blend"] == [0.3, 0.7]
    assert [s["name"] for s in params["inputs"]["styles"]] == ["style.png", "content.png"]


def test_style_count_errors_are_one_line(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "o.png"
    with pytest.raises(SystemExit) as info:
        cli.main([str(content_path), "-o", str(out), *FAST])
    assert info.value.code == 2 and "style" in capsys.readouterr().err
    err = _one_line_error(capsys, cli.main([str(content_path), str(style_path), "--style-blend",
                                            "1,2", "-o", str(out), *FAST]))
    assert err == ("estilo: error: --style-blend has 2 weights but 1 style was given: give one "
                   "weight per style (a folder counts as one), or leave --style-blend out")
    err = _one_line_error(capsys, cli.main([str(content_path), str(style_path), "--mask",
                                            str(_two_region_mask(tmp_path)), "-o", str(out), *FAST]))
    assert "two styles" in err
    assert not out.exists()


def test_keep_alpha_writes_the_contents_transparency(content_path, style_path, tmp_path):
    rgba = Image.open(content_path).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.save(tmp_path / "alpha.png")
    out = tmp_path / "kept.png"
    assert cli.main([str(tmp_path / "alpha.png"), str(style_path), "--keep-alpha", "-o", str(out),
                     *FAST]) == 0
    with Image.open(out) as img:
        assert img.mode == "RGBA" and img.getchannel("A").getextrema()[0] < 50


def _usage_error(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_look_alike_names_give_a_hint(content_path, style_path, tmp_path, capsys):
    run = [str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *FAST]
    err = _usage_error(capsys, [*run, "--style-weight", "3,7"])
    assert "--style-weight: expected one number" in err and "--style-blend 3,7" in err
    err = _usage_error(capsys, [*run, "--style-weights", "3,7"])
    assert "--style-weights is now --style-blend" in err
    err = _usage_error(capsys, [*run, "--iterations", "many"])
    assert "--iterations: expected a whole number, not 'many'" in err
    assert not (tmp_path / "o.png").exists()


def test_option_messages_name_the_flag_typed(content_path, style_path, tmp_path, capsys):
    run = [str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *FAST]
    err = _one_line_error(capsys, cli.main([*run, "--noise-ratio", "3"]))
    assert err == "estilo: error: --noise-ratio must be between 0 and 1, not 3.0"
    err = _one_line_error(capsys, cli.main([*run, "--lr-factor", "1.5"]))
    assert err.startswith("estilo: error: --lr-factor must be between 0 and 1")
    err = _one_line_error(capsys, cli.main([*run, "--iterations", "-1"]))
    assert err.startswith("estilo: error: --iterations must be a whole number of at least 1")
    err = _one_line_error(capsys, cli.main([*run, "--iterations", "0"]))
    assert err.startswith("estilo: error: --iterations must be a whole number of at least 1")
    err = _one_line_error(capsys, cli.main([*run, "--content-layer-weights", "1,2"]))
    assert err.startswith("estilo: error: --content-layer-weights has 2 values for 1 content")


def test_a_bare_estilo_says_what_to_give(capsys):
    err = _usage_error(capsys, [])
    assert "required" not in err and "estilo CONTENT STYLE -o OUT.png" in err
    assert "estilo demo" in err


README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_HEADER = "| option | default | meaning |"


def test_readme_options_table_is_one_block_with_every_option_of_help():
    """Guards against merge drift: a row cut off by a blank line, an option left out."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_HEADER)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    rows = lines[start + 2:end]
    named = {flag for row in rows for flag in re.findall(r"`(--?[a-z][\w-]*)", row.split("|")[1])}
    missing = [a.option_strings[-1] for a in stylize.build_parser()._actions
               if a.option_strings and a.dest != "help" and not set(a.option_strings) & named]
    assert missing == [], f"options of estilo --help missing from the README's table: {missing}"
    strays = [line for line in lines[end:] if line.startswith("| `-")]
    assert strays == [], f"option rows outside the table's block: {strays}"
    assert len(rows) == len(set(rows)), "a row appears twice"


def test_quiet_runs_print_nothing_and_logs_get_no_bar(content_path, style_path, tmp_path, capsys):
    out = tmp_path / "q.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *FAST]) == 0
    assert capsys.readouterr().err == ""
    loud = [a for a in FAST if a != "-q"]
    assert cli.main([str(content_path), str(style_path), "-o", str(out), *loud,
                     "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "0it" not in err and "\r" not in err and len(err.splitlines()) == 3
