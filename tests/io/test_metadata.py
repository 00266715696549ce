"""The parameters every output embeds, and what makes two outputs the same run."""

import json

import pytest

from estilo import StyleConfig, Stylizer
from estilo.io.metadata import FORMAT, parameters, run_key, version


@pytest.fixture
def record(content_path, style_path, tiny):
    job = Stylizer().job(content_path, style_path, tiny)
    last = {"iteration": 8, "total": 8, "loss": 1.5, "terms": {"content": 1.0, "style": 0.5},
            "elapsed": 2.25}
    return parameters(tiny, job.inputs, job.weights(), [last])


def test_parameters_describe_the_run_and_are_json(record, content_path, tiny):
    assert record["format"] == FORMAT and record["config"] == tiny.to_dict()
    assert record["inputs"]["content"]["path"] == str(content_path.resolve())
    assert len(record["inputs"]["content"]["sha256"]) == 64 and record["inputs"]["init"] is None
    assert (record["iterations_done"], record["iterations_total"]) == (8, 8)
    assert record["final_loss"] == {"total": 1.5, "content": 1.0, "style": 0.5}
    assert record["versions"]["estilo"] == version() and record["weights"]["source"] == "random"
    assert json.loads(json.dumps(record)) == record


def test_the_same_run_on_another_device_or_in_another_place(record):
    moved = json.loads(json.dumps(record))
    moved["config"]["device"] = "cuda"
    moved["inputs"]["content"]["path"] = "/elsewhere/content.png"
    moved["elapsed_s"] = 99.0
    assert run_key(moved) == run_key(record) is not None


@pytest.mark.parametrize("change", [
    lambda p: p["config"].update(style_weight=1.0),
    lambda p: p["inputs"]["styles"][0].update(sha256="0" * 64),
    lambda p: p["inputs"].update(style_groups=[1]),
    lambda p: p["weights"].update(sha256="f" * 64),
])
def test_other_options_inputs_or_weights_are_another_run(record, change):
    other = json.loads(json.dumps(record))
    change(other)
    assert run_key(other) != run_key(record)


def test_unfinished_runs_have_no_key(record):
    assert run_key(None) is None and run_key({}) is None
    for change in ({"interrupted": True}, {"partial": True}, {"iterations_done": 3}):
        assert run_key({**record, **change}) is None


def test_without_weights_only_options_and_inputs_count(record):
    other = {**record, "weights": {"source": "random", "sha256": "f" * 64}}
    assert run_key(other, weights=False) == run_key(record, weights=False)
    assert len(run_key(record, weights=False)) == 2


def test_a_config_from_the_record_is_the_same_config(record, tiny):
    assert StyleConfig.from_dict(record["config"]) == tiny
