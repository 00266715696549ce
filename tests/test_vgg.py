import pytest
import torch
from torch import nn

from estilo import StyleConfig as C
from estilo.config import LAYER_NAMES
from estilo.vgg import (
    CAFFE,
    TORCHVISION,
    Normalize,
    VGG19Features,
    channels_of,
    layer_weights,
    pool_factor,
)
from estilo.weights import load_weights


def test_channels_and_pool_factor():
    assert [channels_of(n) for n in ("conv1_1", "relu2_2", "pool3", "conv5_4")] == [64, 128, 256, 512]
    assert pool_factor("conv1_1") == 1 and pool_factor("pool1") == 2 and pool_factor("conv5_1") == 16


@pytest.fixture(scope="module")
def random_convs():
    return load_weights("random", seed=0).convs


def test_truncated_after_deepest_layer(random_convs):
    net = VGG19Features(random_convs, TORCHVISION, layers=["conv3_1", "relu1_1"])
    assert net.names[-1] == "conv3_1"
    assert len(net.body) == LAYER_NAMES.index("conv3_1") + 1
    out = net(torch.rand(1, 3, 32, 32))
    assert set(out) == {"conv3_1", "relu1_1"}
    assert out["conv3_1"].shape == (1, 256, 8, 8)
    assert out["relu1_1"].min() >= 0


def test_pooling_swap(random_convs):
    avg = VGG19Features(random_convs, TORCHVISION, layers=["pool2"], pooling="avg")
    mx = VGG19Features(random_convs, TORCHVISION, layers=["pool2"], pooling="max")
    assert sum(isinstance(m, nn.AvgPool2d) for m in avg.body) == 2
    assert not any(isinstance(m, nn.MaxPool2d) for m in avg.body)
    assert sum(isinstance(m, nn.MaxPool2d) for m in mx.body) == 2
    x = torch.rand(1, 3, 16, 16)
    assert not torch.allclose(avg(x)["pool2"], mx(x)["pool2"])
    with pytest.raises(ValueError):
        VGG19Features(random_convs, TORCHVISION, layers=["pool2"], pooling="min")


def test_frozen(random_convs):
    net = VGG19Features(random_convs, TORCHVISION, layers=["conv2_1"])
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["conv2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_caffe_preprocessing_is_bgr_0_255_mean_subtracted():
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    out = Normalize(CAFFE)(red).flatten()
    assert torch.allclose(out, torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_torchvision_preprocessing_is_imagenet_mean_std():
    grey = torch.full((1, 3, 1, 1), 0.5)
    out = Normalize(TORCHVISION)(grey).flatten()
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(out, expected)


@pytest.mark.parametrize("spec", [CAFFE, TORCHVISION])
def test_colour_round_trip(spec):
    x = torch.rand(2, 3, 5, 7)
    norm = Normalize(spec)
    assert torch.allclose(norm.inverse(norm(x)), x, atol=1e-5)


def test_layer_weights_from_the_layer_list():
    c = C(style_layers="relu1_1:2,relu2_1", style_weight=10)
    assert layer_weights(c, "style") == {"relu1_1": 20.0, "relu2_1": 10.0}


def test_channel_layer_weighting():
    w = layer_weights(C(layer_weighting="channels", style_weight=1.0,
                        style_layers=("conv1_1", "conv2_1")), "style")
    assert w["conv1_1"] / w["conv2_1"] == pytest.approx(4.0)
    assert sum(w.values()) == pytest.approx(2.0)
    assert layer_weights(C(style_weight=1.0, style_layers=("conv1_1", "conv2_1")), "style") == \
        {"conv1_1": 1.0, "conv2_1": 1.0}
