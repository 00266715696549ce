import json
import re
import subprocess
import sys

import pytest
import torch

from estilo import StyleConfig, Stylizer
from estilo.config import ConfigError, parse_memory
from estilo.io.inputs import prepare
from estilo.memory import (
    MARGIN,
    available_bytes,
    estimate_peak_bytes,
    plan,
    state_bytes,
)
from estilo.pyramid import scaled
from imaging import assert_one_line, subprocess_env

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
    cpu, base = torch.device("cpu"), 400 * 1024 ** 2
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: 10 ** 13)
    plain = plan(inputs, config, cpu, torch.float32, base=base)
    assert (plain.checkpointing, plain.tile) == (False, None)
    roomy = int(plain.peak * (1 + MARGIN)) + 1
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: roomy)
    assert plan(inputs, config, cpu, torch.float32, base=base).checkpointing is False
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: roomy - 2 ** 20)
    chosen = plan(inputs, config, cpu, torch.float32, base=base)
    assert chosen.checkpointing is True and chosen.tile is None
    assert chosen.peak * (1 + MARGIN) <= roomy - 2 ** 20 and chosen.peak < plain.peak
    assert plan(inputs, config.replace(checkpointing="on"), cpu,
                torch.float32).checkpointing is True


CHILD = """
import json, sys
from estilo import StyleConfig, Stylizer
size = int(sys.argv[1])
config = StyleConfig(weights="caffe", size=size, upscale=True, iterations=2, scales=1,
                     precision="float32", checkpointing="off")
job = Stylizer().job(sys.argv[2], sys.argv[3], config)
job.weights()
estimate = job.memory_plan().peak
for _ in job.steps():
    pass
# VmHWM, not ru_maxrss: that keeps the high-water mark of the process that started this one
# (vfork then exec), here the test run's
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"peak": peak, "estimate": estimate}))
"""


@pytest.mark.weights
@pytest.mark.parametrize("size", [96, 256])
def test_estimate_is_near_the_measured_peak(content_path, style_path, size):
    """The plan's estimate (the process as it stands, the run's tensors, the optimiser's
    state) against the peak RSS of a fresh process with the real weights: within 15 %
    either way (benchmarks/memory_model.py measures it at print sizes)."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(size), str(content_path),
                           str(style_path)], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0.85 <= figures["estimate"] / figures["peak"] <= 1.15, figures


def test_optimiser_state_is_counted():
    pixels = 4096 * 3072
    assert state_bytes(pixels, "lbfgs", 50) - state_bytes(pixels, "lbfgs", 10) == 80 * 3 * pixels * 4
    assert state_bytes(pixels, "lbfgs", 50) > 15 * 1024 ** 3      # the "up to 15 GB more"
    assert state_bytes(pixels, "adam") < state_bytes(pixels, "lbfgs", 5)


def _plan(content_path, style_path, monkeypatch, config, free):
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: free)
    return plan(prepare(content_path, style_path, config), config, torch.device("cpu"),
                torch.float32)


@pytest.mark.parametrize("cap", ["6GB", "4GB", "3GiB"])
def test_a_cap_gives_tiles_a_shorter_history_or_adam_under_it(content_path, style_path,
                                                              monkeypatch, cap):
    config = StyleConfig(weights="random", size=(4000, 3000), upscale=True, max_memory=cap)
    chosen = _plan(content_path, style_path, monkeypatch, config, 64 * 1024 ** 3)
    assert chosen.tile is not None and chosen.peak <= parse_memory(cap)
    assert chosen.optimizer == "adam" or chosen.history < 50
    assert "tiles of" in chosen.describe()
    # the free memory caps it too, and a roomy cap leaves the image whole
    assert _plan(content_path, style_path, monkeypatch, config, 3 * 1024 ** 3).peak <= 3 * 1024 ** 3
    roomy = _plan(content_path, style_path, monkeypatch, config.replace(max_memory="1TB"),
                  10 ** 13)
    assert roomy.tile is None and roomy.history == 50


def test_tile_forces_tiles(content_path, style_path, monkeypatch):
    config = StyleConfig(weights="random", size=512, upscale=True, tile=128)
    assert _plan(content_path, style_path, monkeypatch, config, 64 * 1024 ** 3).tile == 128


def test_what_cannot_fit_even_in_tiles_is_refused_naming_the_size_that_would(
        content_path, style_path, monkeypatch):
    config = StyleConfig(weights="random", size=(8000, 6000), upscale=True, max_memory="2GB")
    with pytest.raises(ConfigError) as info:
        _plan(content_path, style_path, monkeypatch, config, 64 * 1024 ** 3)
    text = assert_one_line(info, "--max-memory 2GB", "even in tiles")
    side = int(re.search(r"--size (\d+) or less", text).group(1))
    assert 1000 < side < 8000
    fits = _plan(content_path, style_path, monkeypatch,
                 config.replace(size=scaled((8000, 6000), side)), 64 * 1024 ** 3)
    assert fits.peak <= 2 * 10 ** 9
    with pytest.raises(ConfigError):
        _plan(content_path, style_path, monkeypatch,
              config.replace(size=scaled((8000, 6000), side + 16)), 64 * 1024 ** 3)


def test_memory_sizes_parse():
    assert parse_memory("8GB") == 8 * 10 ** 9 and parse_memory("8GiB") == 8 * 1024 ** 3
    assert parse_memory("512MB") == 512 * 10 ** 6 and parse_memory(" 1.5 gb ") == 1.5 * 10 ** 9
    for bad in ("8", "lots", "-1GB", "0GB", "8XB"):
        with pytest.raises(ConfigError, match="max_memory"):
            parse_memory(bad)
    with pytest.raises(ConfigError, match="tile must be a multiple of 16"):
        StyleConfig(tile=100)


CAPPED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
print(done.stderr)
"""


@pytest.mark.parametrize(("cap", "size"), [("750MB", 256), ("1GB", 512)])
def test_a_capped_run_stays_under_the_cap(content_path, style_path, tmp_path, cap, size):
    """A cap the run must economise under (the plan takes most of it): its peak RSS, measured
    in a fresh process, stays under the cap, and the estimate is near the peak (the model
    counts what the process holds; benchmarks/memory_model.py measures it with the real
    weights at print sizes)."""
    command = [sys.executable, "-m", "estilo", str(content_path), str(style_path), "-o",
               str(tmp_path / "capped.png"), "--weights", "random", "--size", str(size),
               "--upscale", "--scales", "1", "--iterations", "1", "--precision", "float32",
               "--max-memory", cap]
    done = subprocess.run([sys.executable, "-c", CAPPED, *command], capture_output=True,
                          text=True, check=True, env=subprocess_env())
    first, *rest = done.stdout.splitlines()
    code, peak = (int(v) for v in first.split())
    log = "\n".join(rest)
    assert code == 0, log
    planned = re.search(r"estilo: plan at \d+x\d+ px: .*, about ([\d.]+) of ([\d.]+) GiB "
                        r"\(10 % kept spare\)", log)
    assert planned, log
    estimate, limit = (float(v) * 1024 ** 3 for v in planned.groups())
    assert abs(limit - parse_memory(cap)) < 0.01 * 1024 ** 3
    assert estimate > 0.8 * limit, log           # the cap binds: a tight plan
    assert peak <= parse_memory(cap), (peak, log)
    assert 0.85 * peak <= estimate <= 1.25 * peak, (estimate, peak, log)


def test_coarse_levels_keep_lbfgs_when_only_the_finest_need_less(content_path, style_path,
                                                                 monkeypatch):
    """Each level has its own plan: a cap that the output's level fits only in tiles with a
    leaner optimiser leaves the coarse levels whole with L-BFGS's full history."""
    monkeypatch.setattr("estilo.memory.available_bytes", lambda device: 64 * 1024 ** 3)
    config = StyleConfig(weights="random", size=(4000, 3000), upscale=True, max_memory="4GB",
                         device="cpu")
    plans = Stylizer().job(content_path, style_path, config).memory_plans()
    first, final = plans[0][1], plans[-1][1]
    assert len(plans) > 2
    assert (first.tile, first.optimizer, first.history) == (None, "lbfgs", 50)
    assert final.tile is not None and (final.optimizer == "adam" or final.history < 50)
    assert all(budget.peak <= parse_memory("4GB") for _, budget in plans)
    assert [level.size for level, _ in plans][-1] == (4000, 3000)


def test_a_cap_below_any_size_names_the_memory_a_run_needs(content_path, style_path,
                                                          monkeypatch):
    """Not "use --size 16" (sizes under 32 px are refused): the memory the smallest run
    needs, and a cap of that much plans."""
    monkeypatch.setattr("estilo.memory.fixed_bytes", lambda device: 400 * 1024 ** 2)
    config = StyleConfig(weights="random", size=64, max_memory="300MB")
    with pytest.raises(ConfigError) as info:
        _plan(content_path, style_path, monkeypatch, config, 64 * 1024 ** 3)
    text = assert_one_line(info, "--max-memory 300MB", "at any size", "already holds")
    need = re.search(r"give --max-memory ([\d.]+)GB or more", text)
    assert need, text
    assert _plan(content_path, style_path, monkeypatch,
                 config.replace(max_memory=f"{need.group(1)}GB"), 64 * 1024 ** 3).peak > 0


def test_the_size_named_for_a_small_cap_is_one_estilo_takes(content_path, style_path,
                                                            monkeypatch):
    monkeypatch.setattr("estilo.memory.fixed_bytes", lambda device: 400 * 1024 ** 2)
    config = StyleConfig(weights="random", size=(8000, 6000), upscale=True, max_memory="700MB")
    with pytest.raises(ConfigError) as info:
        _plan(content_path, style_path, monkeypatch, config, 64 * 1024 ** 3)
    side = int(re.search(r"--size (\d+) or less", assert_one_line(info, "700MB")).group(1))
    assert scaled((8000, 6000), side)[1] >= 32
    _plan(content_path, style_path, monkeypatch, config.replace(size=scaled((8000, 6000), side)),
          64 * 1024 ** 3)
