import json
import subprocess
import sys

import pytest
import torch

from estilo import Stylizer
from estilo.config import ConfigError
from estilo.io.inputs import prepare
from estilo.memory import (
    available_bytes,
    estimate_peak_bytes,
    largest_fitting,
    plan,
    state_bytes,
)

LAYERS = ("relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def test_estimate_grows_with_size_and_shrinks_with_bf16_and_checkpointing():
    sizes = [(512, 384), (1024, 768), (2048, 1536)]
    plain = [estimate_peak_bytes(s, LAYERS) for s in sizes]
    assert plain == sorted(plain) and plain[2] > 3 * plain[1] - 2 * plain[0]
    big = (2048, 1536)
    assert estimate_peak_bytes(big, LAYERS, dtype=torch.bfloat16) < plain[2]
    assert estimate_peak_bytes(big, LAYERS, checkpointing=True) < plain[2]


def test_shallow_layers_need_less():
    assert estimate_peak_bytes((1024, 768), ("relu1_1", "relu2_1")) < \
        estimate_peak_bytes((1024, 768), LAYERS)


def test_available_memory_is_read_on_cpu():
    free = available_bytes(torch.device("cpu"))
    assert free is None or free > 0


def test_largest_fitting_is_the_boundary():
    free = estimate_peak_bytes((1000, 750), LAYERS)
    side = largest_fitting((4000, 3000), LAYERS, free, dtype=torch.float32, checkpointing=False)
    assert 990 <= side <= 1010
    assert estimate_peak_bytes((side, side * 3 // 4), LAYERS) <= free


def test_too_large_a_size_is_refused_with_the_size_that_fits(content_path, style_path,
                                                             monkeypatch, tiny):
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: 2 * 1024 ** 3)
    config = tiny.replace(size=8000, upscale=True, content_layers=("relu4_2",),
                          style_layers=LAYERS[1:])
    job = Stylizer().job(content_path, style_path, config)
    with pytest.raises(ConfigError, match=r"needs about .* GiB .* use --size \d+ or less"):
        next(job.steps())


def test_checkpointing_only_when_needed(content_path, style_path, monkeypatch, tiny):
    config = tiny.replace(size=3000, upscale=True)
    inputs = prepare(content_path, style_path, config)
    layers = config.content_layers + config.style_layers
    plain = estimate_peak_bytes(inputs.size, layers, style_pixels=64 * 64) \
        + state_bytes(inputs.size[0] * inputs.size[1], "lbfgs", 50)
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: plain + 1)
    assert plan(inputs, config, torch.device("cpu"), torch.float32).checkpointing is False
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: plain - 1)
    chosen = plan(inputs, config, torch.device("cpu"), torch.float32)
    assert chosen.checkpointing is True and chosen.tile is None
    assert plan(inputs, config.replace(checkpointing="on"), torch.device("cpu"),
                torch.float32).checkpointing is True


CHILD = """
import json, resource, sys, torch
from estilo import StyleConfig, Stylizer
from estilo.memory import estimate_peak_bytes
size = int(sys.argv[1])
config = StyleConfig(weights="caffe", size=size, upscale=True, iterations=2, scales=1,
                     precision="float32", checkpointing="off")
job = Stylizer().job(sys.argv[2], sys.argv[3], config)
for _ in job.steps():
    pass
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "estimate": estimate_peak_bytes(job.inputs.size, config.content_layers
                                                  + config.style_layers)}))
"""


@pytest.mark.weights
@pytest.mark.parametrize("size", [96, 256])
def test_estimate_is_within_a_factor_of_the_measured_peak(content_path, style_path, size):
    """The estimate errs high, but not by much: measured in a fresh process (real weights)."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(size), str(content_path),
                           str(style_path)], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # Low bound 0.5: at these tiny sizes the peak is dominated by the process's fixed part
    # (torch, the dequantised weights), which varies with what else is installed (measured
    # 0.64 in a fresh CI clone, 1.25-1.41 in the dev venv).
    assert 0.5 <= figures["estimate"] / figures["peak"] <= 2.0, figures
