"""Batch runs: planning, names, manifests, resume, failures, the local pool and the CLI.

The Ray backend has its own file (test_batch_ray.py): it starts a real local cluster.
"""

from pathlib import Path

import pytest

from conftest import make_content
from estilo.batch import BatchError, check_name, plan, read_manifest


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
