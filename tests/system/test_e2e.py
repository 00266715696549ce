"""End-to-end runs with the real caffe VGG19 weights at small sizes."""

import pytest
import torch

from estilo import StyleConfig, Stylizer
from estilo.io.image import load_image, resize, to_tensor
from estilo.losses import moments, statistics
from estilo.vgg import VGG19Features
from estilo.weights import load_weights

pytestmark = pytest.mark.weights
LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _gram(features):
    return statistics(moments(features), "gram")[0]


def _style_distance(net, image, style):
    """Mean relative Gram distance over the style layers (lower = closer in style)."""
    a, b = net(image), net(style)
    return sum(float((_gram(a[n]) - _gram(b[n])).norm() / _gram(b[n]).norm())
               for n in LAYERS) / len(LAYERS)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_real_weights_move_the_image_toward_the_style(content_path, style_path, pooling):
    config = StyleConfig(size=96, iterations=40, scales=1, device="cpu", pooling=pooling,
                         upscale=True, optimizer="adam")  # the seed's optimiser and rates
    result = Stylizer().run(content_path, style_path, config)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]

    w = load_weights("caffe")
    net = VGG19Features(w.convs, w.preprocessing, layers=LAYERS, pooling=pooling)
    size = result.image.size
    content = to_tensor(resize(load_image(content_path), size))
    style = to_tensor(resize(load_image(style_path), size))
    with torch.no_grad():
        before = _style_distance(net, content, style)
        after = _style_distance(net, result.tensor, style)
    assert after < 0.7 * before
    assert float((result.tensor - content).abs().mean()) > 0.03


@pytest.mark.parametrize("norm", ["rms", "none"])
def test_weights_mean_the_same_whatever_the_input_range(content_path, style_path, norm):
    """A source that sees 0-1 input (the caffe net with biases / 255) has activations exactly
    255x smaller than caffe on 0-255 input. With estilo's normalisation the loss terms are
    the same; without it (the tutorial's convention) the style term moves by 255^4."""
    from estilo.losses import Objective
    from estilo.vgg import CAFFE, Preprocessing

    w = load_weights("caffe")
    small_range = Preprocessing(scale=1.0, bgr=True, mean=tuple(m / 255 for m in CAFFE.mean),
                                std=(1.0, 1.0, 1.0))
    scaled_convs = {n: (wt, b / 255) for n, (wt, b) in w.convs.items()}
    nets = [VGG19Features(w.convs, CAFFE, layers=LAYERS + ("conv4_2",), pooling="avg"),
            VGG19Features(scaled_convs, small_range, layers=LAYERS + ("conv4_2",), pooling="avg")]
    content = to_tensor(resize(load_image(content_path), (64, 48)))
    style = to_tensor(resize(load_image(style_path), (64, 64)))
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    terms = []
    with torch.no_grad():
        for net in nets:
            c, s = net(content), net(style)
            objective = Objective.from_moments(
                c, {n: moments(f) for n, f in c.items()}, [{n: moments(f) for n, f in s.items()}],
                content_weights={"conv4_2": 1.0}, style_weights={n: 1e5 for n in LAYERS},
                feature_norm=norm)
            terms.append(objective(net(image), image))
    caffe, small = terms
    if norm == "rms":
        assert torch.isclose(caffe["style"], small["style"], rtol=1e-3)
        assert torch.isclose(caffe["content"], small["content"], rtol=1e-3)
        assert 1e-3 < float(caffe["style"] / caffe["content"]) < 1e4  # balanced at Ws=1e5, Wc=1
    else:
        assert torch.isclose(caffe["style"], small["style"] * 255**4, rtol=1e-2)
        assert torch.isclose(caffe["content"], small["content"] * 255**2, rtol=1e-2)


def _neighbour_correlation(image: torch.Tensor) -> float:
    """Correlation of horizontally adjacent pixels: about 0 for noise, near 1 for a picture."""
    a, b = image[..., :, :-1].flatten(), image[..., :, 1:].flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "sgd"])
@pytest.mark.parametrize("size", [96, 160])
def test_meancov_paints_with_every_optimizer(optimizer, size):
    # It used to give coloured noise with L-BFGS (its loss growing 10x a step at 160 px).
    from estilo.demo import example_paths

    content, style = example_paths()
    config = StyleConfig(size=size, upscale=True, scales=1, iterations=30, device="cpu",
                         style_loss="meancov", optimizer=optimizer, init="content+noise")
    steps = list(Stylizer().steps(content, style, config))
    styles = [s.terms["style"] for s in steps]
    assert len(steps) == 30 and styles[-1] < 0.5 * styles[0]
    assert max(s.loss for s in steps[-10:]) < steps[0].loss  # a caught jump is undone, not kept
    image = steps[-1].image
    assert _neighbour_correlation(image) > 0.4  # a picture: noise would be near 0
    start = _neighbour_correlation(torch.rand_like(image) * 0.6 + 0.4 * image)
    assert _neighbour_correlation(image) > start + 0.2  # the start's noise was painted over


def test_estilo_video_paints_the_bundled_clip_and_keeps_its_sound(tmp_path):
    """The issue's check, small: `estilo video` on the bundled clip and painting, real weights."""
    import av

    from estilo import cli
    from estilo.demo import example_clip, example_paths

    out = tmp_path / "out.mp4"
    assert cli.main(["video", str(example_clip()), str(example_paths()[1]), "-o", str(out), "-q",
                     "--size", "48", "--iterations", "3", "--frame-iterations", "1"]) == 0
    with av.open(str(out)) as painted, av.open(str(example_clip())) as source:
        assert [s.type for s in painted.streams] == ["video", "audio"]
        assert painted.streams.video[0].frames == source.streams.video[0].frames == 60
        assert painted.streams.video[0].average_rate == source.streams.video[0].average_rate
        first = next(painted.decode(video=0)).to_ndarray(format="rgb24")
    assert first.shape == (32, 48, 3)
    assert not (tmp_path / "out_frames").exists()
