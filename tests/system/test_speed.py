"""Precision and checkpointing: faster or leaner, never different results."""

import pytest
import torch

from estilo import StyleConfig, Stylizer
from estilo.config import ConfigError
from estilo.devices import compute_dtype
from estilo.vgg import VGG19Features
from estilo.weights import load_weights


def test_precision_choices():
    cpu = torch.device("cpu")
    assert compute_dtype(cpu, "float32") == torch.float32
    assert compute_dtype(cpu, "bfloat16") == torch.bfloat16
    assert compute_dtype(cpu, "auto") in (torch.float32, torch.bfloat16)
    assert compute_dtype(torch.device("mps"), "auto") == torch.float32
    with pytest.raises(ConfigError, match="precision"):
        StyleConfig(precision="float16")
    with pytest.raises(ConfigError, match="checkpointing"):
        StyleConfig(checkpointing="maybe")


def test_checkpointing_gives_the_same_gradient():
    weights = load_weights("random")
    net = VGG19Features(weights.convs, weights.preprocessing,
                        layers=("relu1_1", "relu2_1", "relu3_1"), pooling="avg")
    x = torch.rand(1, 3, 40, 48)
    grads = []
    for on in (False, True):
        net.checkpointing = on
        image = x.clone().requires_grad_(True)
        sum(f.square().mean() for f in net(image).values()).backward()
        grads.append(image.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_bfloat16_run_follows_the_float32_run(content_path, style_path, tiny):
    runs = [Stylizer().run(content_path, style_path, tiny.replace(precision=p, init="noise",
                                                                   iterations=10))
            for p in ("float32", "bfloat16")]
    f32, bf16 = (r.history for r in runs)
    assert bf16[-1]["loss"] < 0.5 * bf16[0]["loss"]
    assert bf16[-1]["loss"] == pytest.approx(f32[-1]["loss"], rel=0.1)
    assert (runs[0].tensor - runs[1].tensor).abs().mean() < 0.05  # pixels in [0, 1]


def test_checkpointed_run_matches(content_path, style_path, tiny):
    a = Stylizer().run(content_path, style_path, tiny.replace(precision="float32"))
    b = Stylizer().run(content_path, style_path,
                       tiny.replace(precision="float32", checkpointing="on"))
    torch.testing.assert_close(a.tensor, b.tensor, atol=1e-4, rtol=0)
