"""``estilo batch``: every flag, one-line errors, exit codes, signals."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from estilo import cli
from estilo.cli import stylize
from imaging import subprocess_env, wait_for

FAST = ["--weights", "random", "--size", "48", "--iterations", "2", "--scales", "1",
        "--style-layers", "1", "--content-layers", "1", "--device", "cpu"]
BATCH_FLAGS = ["--style", "--manifest", "-o", "--output", "--name", "--backend", "--workers",
               "--address", "--cpus-per-task", "--retries", "--overwrite", "--summary", "-q",
               "--quiet", "--debug", "-h", "--help"]


def test_every_batch_flag_is_listed_and_used_in_these_tests():
    from estilo.cli.batch import build_parser

    flags = {s for a in build_parser()._actions for s in a.option_strings}
    config_flags = {s for a in stylize.build_parser()._actions for s in a.option_strings}
    assert flags - config_flags == set(BATCH_FLAGS) - config_flags
    text = Path(__file__).read_text()
    tests = text[text.index("def test_cli_batch_with_manifest"):]  # the CLI tests below
    assert [f for f in BATCH_FLAGS if f'"{f}"' not in tests] == []


def test_cli_batch_with_manifest_template_and_every_batch_flag(tmp_path, images):
    (tmp_path / "pairs.csv").write_text("content,style\nphotos/a.png,styles/wave.png\n"
                                        "broken.png,styles/wave.png\n")
    out, summary = tmp_path / "out", tmp_path / "report.json"
    args = ["batch", "--manifest", str(tmp_path / "pairs.csv"), "-o", str(out), "--name",
            "{index}-{content}.png", "--backend", "local", "--workers", "1", "--retries", "1",
            "--cpus-per-task", "1", "--address", "unused", "--summary", str(summary),
            "--overwrite", "-q", *FAST]
    assert cli.main(args) == 1  # one item failed
    assert (out / "1-a.png").is_file() and not (out / "2-broken.png").exists()
    assert json.loads(summary.read_text())["failed"] == 1
    args[args.index("--manifest"):args.index("--manifest") + 2] = [
        "--style", str(images["styles"][1]), str(images["contents"][0]), "--manifest",
        str(tmp_path / "pairs.csv")]
    assert cli.main(args) == 1  # manifest rows plus a x wave: skipped, failed again, skipped
    assert json.loads(summary.read_text())["skipped"] == 1
    long = ["batch", str(images["contents"][0]), "--style", str(images["styles"][1]),
            "--output", str(out), "--name", "{index}-{content}.png", "--quiet", "--debug",
            "--summary", str(summary), *FAST]
    assert cli.main(long) == 0 and json.loads(summary.read_text())["skipped"] == 1


def test_cli_batch_bad_options_give_one_line_and_exit_2(tmp_path, images, capsys):
    base = ["batch", str(images["contents"][0]), "--style", str(images["styles"][0]),
            "-o", str(tmp_path / "out"), *FAST]
    assert cli.main([*base, "--name", "{content}_{artist}.png"]) == 2
    assert cli.main([*base, "--workers", "0"]) == 2
    assert cli.main(["batch", str(tmp_path / "nope.png"), "--style", str(images["styles"][0]),
                     "-o", str(tmp_path / "out"), *FAST]) == 2
    assert cli.main([*base, "--noise-ratio", "2"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("estilo: error: ") for e in errors)
    assert "{artist}" in errors[0] and "nope.png" in errors[2] and "--noise-ratio" in errors[3]
    for flag in ("--help", "-h"):
        with pytest.raises(SystemExit) as stop:
            cli.main(["batch", flag])
        assert stop.value.code == 0


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_batch_stopped_by_a_signal_keeps_finished_items(tmp_path, images, sig, code):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "estilo", "batch", *map(str, images["contents"]),
               "--style", *map(str, images["styles"]), "-o", str(out), "--workers", "2",
               "-q", *FAST, "--iterations", "400"]
    # The child gets the signal's default action, as from a terminal, then execs estilo: a
    # suite started in the background (`make test &`, nohup, some CI runners) has SIGINT
    # ignored, and an ignored signal stays ignored in children.
    default = (f"import os, signal, sys; signal.signal({int(sig)}, signal.SIG_DFL); "
               "os.execv(sys.executable, sys.argv[1:])")
    process = subprocess.Popen([sys.executable, "-c", default, *command], env=subprocess_env(),
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: list(out.glob("*.png")) or process.poll() is not None,
             what="the first finished item")
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    summary = json.loads((out / "batch-summary.json").read_text())
    assert summary["interrupted"] is True and 1 <= summary["done"] < 4
    assert len(list(out.glob("*.png"))) == summary["done"]
    assert "run again to finish" in err


def test_cli_batch_keeps_the_transparency_asked_for(tmp_path, images):
    photos = tmp_path / "cut-out"
    photos.mkdir()
    rgba = Image.open(images["contents"][0]).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.save(photos / "cut.png")
    out = tmp_path / "out"
    assert cli.main(["batch", str(photos), "--style", str(images["styles"][0]), "-o", str(out),
                     "--keep-alpha", "--workers", "1", "-q", *FAST]) == 0
    (written,) = out.glob("*.png")
    with Image.open(written) as image:
        assert image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 50
