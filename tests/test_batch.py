"""Batch runs: planning, names, manifests, resume, failures, the local pool and the CLI.

The Ray backend has its own file (test_batch_ray.py): it starts a real local cluster.
"""

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from conftest import make_content, make_style
from estilo import StyleConfig, cli
from estilo.batch import BatchError, check_name, plan, read_manifest, run_batch
from estilo.output import read_parameters

FAST = ["--weights", "random", "--size", "48", "--iterations", "2", "--scales", "1",
        "--style-layers", "1", "--content-layers", "1", "--device", "cpu"]


@pytest.fixture
def quick() -> StyleConfig:
    """Faster than `tiny`: 48 px, two iterations, one layer."""
    return StyleConfig(weights="random", size=48, iterations=2, scales=1, device="cpu",
                       style_layers=("conv1_1",), content_layers=("conv1_1",))


@pytest.fixture
def images(tmp_path: Path) -> dict[str, list[Path]]:
    """Two contents (one a JPEG) in photos/, two styles in styles/, and an unreadable file."""
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    photos.mkdir()
    styles.mkdir()
    make_content((64, 48)).save(photos / "a.png")
    make_content((48, 64)).save(photos / "b.jpg")
    make_style((48, 48)).save(styles / "wave.png")
    make_style((56, 56)).rotate(90).save(styles / "swirl.png")
    (photos / "notes.txt").write_text("not an image, not picked from the folder")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return {"contents": [photos / "a.png", photos / "b.jpg"],
            "styles": [styles / "swirl.png", styles / "wave.png"], "broken": [broken]}


def test_plan_is_every_content_times_every_style_from_files_folders_and_globs(tmp_path, images):
    items = plan([tmp_path / "photos", str(tmp_path / "photos" / "*.png")],
                 [str(tmp_path / "styles" / "*.png")], tmp_path / "out")
    pairs = [(i.content.name, i.style.name, i.output.name) for i in items]
    assert pairs == [("a.png", "swirl.png", "a_swirl.png"), ("a.png", "wave.png", "a_wave.png"),
                     ("b.jpg", "swirl.png", "b_swirl.png"), ("b.jpg", "wave.png", "b_wave.png")]
    assert [i.index for i in items] == [1, 2, 3, 4]
    assert {i.output.parent for i in items} == {tmp_path / "out"}


@pytest.mark.parametrize("inputs, message", [
    (["missing.png"], "does not exist"),
    (["nothing-*.png"], "no content images match"),
])
def test_plan_rejects_missing_inputs(tmp_path, images, inputs, message):
    with pytest.raises(BatchError, match=message):
        plan([str(tmp_path / p) for p in inputs], images["styles"], tmp_path / "out")


@pytest.mark.parametrize("template, message", [
    ("{content}-{painter}.png", r"unknown placeholder \{painter\}"),
    ("{0}.png", r"unknown placeholder \{0\}"),
    ("{content.png", "bad --name template"),
    ("{content}_{style}.jpg", "must end in .png"),
])
def test_bad_name_templates_are_refused(template, message):
    with pytest.raises(BatchError, match=message):
        check_name(template)


def test_name_template_fills_index_and_format_specs(tmp_path, images):
    items = plan(images["contents"], images["styles"][:1], tmp_path, name="{index:03d}-{style}.png")
    assert [i.output.name for i in items] == ["001-swirl.png", "002-swirl.png"]


def test_colliding_outputs_are_refused_before_anything_runs(tmp_path, images):
    other = tmp_path / "other"
    other.mkdir()
    make_content().save(other / "a.png")  # same stem as photos/a.png
    contents = [*images["contents"], other / "a.png"]
    with pytest.raises(BatchError, match=r"items 1 .* and 5 .* would both write .*a_swirl.png"):
        plan(contents, images["styles"], tmp_path / "out")
    assert len(plan(contents, images["styles"], tmp_path / "out", name="{index}_{content}.png")) == 6
    with pytest.raises(BatchError, match="would replace an input"):
        plan(images["contents"], images["styles"], tmp_path / "photos", name="{content}.png")


def test_csv_and_toml_manifests_give_pairs_relative_to_the_manifest(tmp_path, images):
    (tmp_path / "pairs.csv").write_text("content,style,output\n"
                                        "photos/a.png,styles/wave.png,\n"
                                        "photos/b.jpg,styles/swirl.png,sub/custom.png\n")
    (tmp_path / "pairs.toml").write_text('[[item]]\ncontent = "photos/a.png"\n'
                                         'style = "styles/wave.png"\n\n'
                                         '[[item]]\ncontent = "photos/b.jpg"\n'
                                         'style = "styles/swirl.png"\noutput = "sub/custom.png"\n')
    for manifest in ("pairs.csv", "pairs.toml"):
        rows = read_manifest(tmp_path / manifest)
        assert rows == [(tmp_path / "photos/a.png", tmp_path / "styles/wave.png", None),
                        (tmp_path / "photos/b.jpg", tmp_path / "styles/swirl.png",
                         Path("sub/custom.png"))]
        items = plan(out_dir=tmp_path / "out", manifest=tmp_path / manifest)
        assert [i.output for i in items] == [tmp_path / "out/a_wave.png",
                                             tmp_path / "out/sub/custom.png"]
    (tmp_path / "jpeg.csv").write_text("content,style,output\nphotos/a.png,styles/wave.png,a.jpg\n")
    with pytest.raises(BatchError, match="'.*a.jpg' must end in .png"):
        plan(out_dir=tmp_path / "out", manifest=tmp_path / "jpeg.csv")


@pytest.mark.parametrize("name, text, message", [
    ("m.csv", "photo,painting\nx.png,y.png\n", "needs a header line with content,style"),
    ("m.csv", "content,style\nx.png,\n", "line 2: content and style are required"),
    ("m.toml", "[[item]]\ncontent = 3\n", r"\[\[item\]\] 1: content and style"),
    ("m.toml", "[[item]\n", "is not valid TOML"),
    ("m.csv", "content,style\n", "lists no items"),
])
def test_bad_manifests_are_refused_with_the_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(BatchError, match=message):
        read_manifest(tmp_path / name)


def test_batch_writes_outputs_records_failures_and_resumes(tmp_path, images, quick):
    out = tmp_path / "out"
    contents = [*images["contents"], *images["broken"]]
    first = run_batch(contents, images["styles"][:1], out, quick, workers=1)
    assert (first.count("done"), first.count("skipped"), first.count("failed")) == (2, 0, 1)
    failed = next(r for r in first.results if r.status == "failed")
    assert failed.item.content.name == "broken.png"
    assert failed.error.startswith("not a supported image: ")  # estilo's message, no class name
    assert "\n" not in failed.error
    params = read_parameters(out / "a_swirl.png")
    assert params["config"]["size"] == 48
    assert params["inputs"]["styles"][0]["name"] == "swirl.png"
    saved = json.loads((out / "batch-summary.json").read_text())
    assert (saved["done"], saved["failed"], saved["total"]) == (2, 1, 3)
    assert saved["items"][2]["status"] == "failed" and saved["items"][2]["error"] == failed.error
    images["broken"][0].write_bytes((images["contents"][0]).read_bytes())  # repaired
    second = run_batch(contents, images["styles"][:1], out, quick, workers=1)
    assert (second.count("done"), second.count("skipped"), second.count("failed")) == (1, 2, 0)
    assert [r.item.content.name for r in second.results if r.status == "done"] == ["broken.png"]


def test_summary_paths_are_all_absolute_and_internal_errors_keep_their_class(
        tmp_path, images, quick, monkeypatch):
    from estilo import workers

    monkeypatch.chdir(tmp_path)
    report = run_batch([Path("photos") / "a.png"], [Path("styles") / "wave.png"], "out", quick,
                       workers=1)
    item = json.loads((tmp_path / "out" / "batch-summary.json").read_text())["items"][0]
    assert [item[k] for k in ("content", "style", "output")] == [
        str(tmp_path / "photos" / "a.png"), str(tmp_path / "styles" / "wave.png"),
        str(tmp_path / "out" / "a_wave.png")]
    assert report.count("done") == 1
    assert workers._one_line(ZeroDivisionError("division by zero\nmore")) == \
        "ZeroDivisionError: division by zero"


def test_an_interrupted_batch_keeps_finished_items_and_resume_completes_it(tmp_path, images, quick):
    out = tmp_path / "out"
    seen = []

    def stop_after_two(result, report):
        seen.append(result.item.output)
        if len(seen) == 2:
            raise KeyboardInterrupt

    first = run_batch(images["contents"], images["styles"], out, quick, workers=1,
                      progress=stop_after_two)
    assert first.interrupted and first.count("done") == 2 and first.pending == 2
    assert sorted(p.name for p in out.glob("*.png")) == sorted(p.name for p in seen)
    assert json.loads((out / "batch-summary.json").read_text())["interrupted"] is True
    mtimes = {p: p.stat().st_mtime_ns for p in seen}
    second = run_batch(images["contents"], images["styles"], out, quick, workers=1)
    assert not second.interrupted
    assert (second.count("skipped"), second.count("done")) == (2, 2)
    assert {r.item.output for r in second.results if r.status == "skipped"} == set(seen)
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # not rewritten


def test_outputs_from_other_options_or_inputs_are_not_taken_as_done(tmp_path, images, quick):
    out = tmp_path / "out"
    run_batch(images["contents"][:1], images["styles"][:1], out, quick, workers=1)
    with pytest.raises(BatchError, match="1 output.* exist with other parameters.*--overwrite"):
        run_batch(images["contents"][:1], images["styles"][:1], out, quick.replace(seed=1))
    redone = run_batch(images["contents"][:1], images["styles"][:1], out, quick.replace(seed=1),
                       overwrite=True)
    assert redone.count("done") == 1 and read_parameters(out / "a_swirl.png")["seed"] == 1
    make_style((56, 56)).rotate(45).save(images["styles"][0])  # same name, new pixels
    with pytest.raises(BatchError, match="other parameters"):
        run_batch(images["contents"][:1], images["styles"][:1], out, quick.replace(seed=1))
    same = run_batch(images["contents"][:1], images["styles"][:1], out,
                     quick.replace(seed=1, device="auto"), overwrite=True)
    assert same.count("done") == 1  # the new style pixels ran; the device alone would not


def test_the_process_pool_uses_several_workers_and_survives_a_killed_worker(tmp_path, images,
                                                                            quick):
    killed = []

    def kill_one_worker(result, report):
        if not killed and result.status == "done":
            pid = int(result.worker.rsplit(":", 1)[1])
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)  # a pool worker this test started

    config = quick.replace(iterations=6)
    report = run_batch(images["contents"] * 1, images["styles"], tmp_path / "out", config,
                       name="{index}_{content}_{style}.png", workers=2, progress=kill_one_worker)
    assert report.workers == 2 and report.count("done") == 4 and report.count("failed") == 0
    workers = {r.worker for r in report.results}
    assert len(workers) >= 2
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


def test_a_killed_worker_loses_only_its_own_item(tmp_path, images, quick, caplog):
    """The other workers' running items finish on their own processes; only the lost item
    runs again (ProcessPoolExecutor alone would break the whole pool and rerun them all)."""
    import multiprocessing

    alive, killed = set(), []

    def kill_one_worker(result, report):
        if not killed and result.status == "done":
            pid = int(result.worker.rsplit(":", 1)[1])
            alive.update(p.pid for p in multiprocessing.active_children() if p.pid != pid)
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)  # a pool worker this test started

    report = run_batch(images["contents"], images["styles"], tmp_path / "out",
                       quick.replace(iterations=8), workers=2, progress=kill_one_worker)
    assert report.count("done") == 4 and report.count("failed") == 0
    pids = [int(r.worker.rsplit(":", 1)[1]) for r in report.results]
    assert alive and any(pid in alive for pid in pids[1:])  # the healthy worker went on
    assert killed[0] not in pids[1:]
    # The killed worker, the healthy one and one new process in the killed one's place
    # (a restarted pool would have brought two new processes: four in all).
    assert len(set(pids)) == 3, pids
    assert caplog.text.count("a worker process died") <= 1


BATCH_FLAGS = ["--style", "--manifest", "-o", "--output", "--name", "--backend", "--workers",
               "--address", "--cpus-per-task", "--retries", "--overwrite", "--summary", "-q",
               "--quiet", "--debug", "-h", "--help"]


def test_every_batch_flag_is_listed_and_used_in_these_tests():
    from estilo.batch_cli import build_parser

    flags = {s for a in build_parser()._actions for s in a.option_strings}
    config_flags = {s for a in cli.build_parser()._actions for s in a.option_strings}
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


def test_importing_estilo_does_not_import_the_batch_module_or_ray():
    import subprocess

    code = ("import sys, estilo; print('estilo.batch' in sys.modules, 'ray' in sys.modules); "
            "estilo.run_batch; print('estilo.batch' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.split() == ["False", "False", "True", "False"]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_batch_stopped_by_a_signal_keeps_finished_items(tmp_path, images, sig, code):
    import subprocess
    import time

    out = tmp_path / "out"
    command = [sys.executable, "-m", "estilo", "batch", *map(str, images["contents"]),
               "--style", *map(str, images["styles"]), "-o", str(out), "--workers", "2",
               "-q", *FAST, "--iterations", "400"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.png")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    summary = json.loads((out / "batch-summary.json").read_text())
    assert summary["interrupted"] is True and 1 <= summary["done"] < 4
    assert len(list(out.glob("*.png"))) == summary["done"]
    assert "run again to finish" in err
