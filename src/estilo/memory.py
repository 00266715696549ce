"""How much memory a run needs, checked before it starts.

:func:`estimate_peak_bytes` models the peak of one optimisation step at the output size:
the activations autograd keeps for the backward pass (every ReLU output of the truncated
VGG19, or with gradient checkpointing only the requested layers plus the largest segment
being recomputed), then the larger of the float32 copies of the requested activations for
the losses (forward end) and the gradient buffers of the widest layer (backward), and a
fixed base (interpreter, torch, weights). The
constants are calibrated against measured peak RSS on CPU (see tests/test_memory.py and
benchmarks/README.md); the estimate errs on the high side.

:func:`plan` uses it to turn checkpointing on only when needed and to refuse, with a
one-line :class:`ConfigError` naming the largest size that fits, a run that would be killed
halfway for lack of memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch

from .config import LAYER_NAMES, ConfigError, StyleConfig, resolve_layer
from .io.inputs import Inputs
from .pyramid import scaled, style_side
from .vgg import channels_of, pool_factor

log = logging.getLogger(__name__)

GIB = 1024 ** 3
BASE_BYTES = 700 * 1024 ** 2   # interpreter, torch, VGG weights, allocator slack (measured)
BACKWARD_BUFFERS = 3           # widest-layer-sized tensors alive during backward (grads, workspace)
SAFETY = 1.15                  # the estimate's margin over the model


def estimate_peak_bytes(size: tuple[int, int], layers: Iterable[str], *,
                        dtype: torch.dtype = torch.float32, checkpointing: bool = False,
                        style_pixels: int | None = None) -> int:
    """Estimated peak memory (bytes) of a run whose output is ``size`` (width, height).

    Args:
        size: the output's (width, height); coarser levels need less.
        layers: the content and style layers (they fix the depth of the network).
        dtype: the network's compute dtype (float32 or bfloat16).
        checkpointing: whether VGG segments are recomputed in backward.
        style_pixels: pixels of the largest style image at the output scale (None: as many
            as the output).
    """
    wanted = {resolve_layer(n) for n in layers}
    names = LAYER_NAMES[: max(LAYER_NAMES.index(n) for n in wanted) + 1]
    pixels = size[0] * size[1]
    elements = {n: channels_of(n) * pixels / pool_factor(n) ** 2 for n in names}
    act = 2 if dtype == torch.bfloat16 else 4
    requested = sum(elements[n] for n in wanted)
    relus = [n for n in names if n.startswith(("relu", "pool"))]
    if checkpointing:
        kept = requested * act + _largest_segment(names, wanted, elements) * act
    else:
        kept = sum(elements[n] for n in set(relus) | wanted) * act
    widest = max(elements.values())
    # The float32 copies for the losses are freed (as saved tensors of the Gram matrices)
    # before the backward pass reaches the widest layers.
    step = kept + max(requested * 4, widest * (4 + BACKWARD_BUFFERS * act)) + 12 * pixels * 4
    share = (style_pixels or pixels) / pixels       # style activations scale with its pixels
    targets = ((1 + share) * requested + widest) * 4  # content + style forwards, no grad, float32
    return int(BASE_BYTES + SAFETY * max(step, targets))


def _largest_segment(names: tuple[str, ...], wanted: set[str],
                     elements: dict[str, float]) -> float:
    """Elements kept while the largest checkpointed segment is recomputed."""
    largest = current = 0.0
    for name in names:
        if name.startswith(("relu", "pool")):
            current += elements[name]
        if name in wanted:
            largest, current = max(largest, current), 0.0
    return largest


def available_bytes(device: torch.device) -> int | None:
    """Memory a run may use: free GPU memory on CUDA, MemAvailable on Linux; None if unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def plan(inputs: Inputs, config: StyleConfig, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether to checkpoint the network for this run.

    Raises:
        ConfigError: the output size cannot fit in the available memory even with
            checkpointing; the message names the largest long side that would.
    """
    layers = config.content_layers + config.style_layers
    style_pixels = max(_pixels(style_side(s.image.size, inputs.size, inputs.size, config.style_size))
                       for s in inputs.styles)
    free = available_bytes(device)
    options = {"on": (True,), "off": (False,)}.get(config.checkpointing, (False, True))
    if free is None:
        return options[0]
    for checkpointing in options:
        if estimate_peak_bytes(inputs.size, layers, dtype=dtype, checkpointing=checkpointing,
                               style_pixels=style_pixels) <= free:
            log.info("checkpointing %s", "on" if checkpointing else "off")
            return checkpointing
    need = estimate_peak_bytes(inputs.size, layers, dtype=dtype, checkpointing=options[-1],
                               style_pixels=style_pixels)
    largest = largest_fitting(inputs.size, layers, free, dtype=dtype, checkpointing=options[-1])
    raise ConfigError(f"size {inputs.size[0]}x{inputs.size[1]} needs about {need / GIB:.1f} GiB "
                      f"but {free / GIB:.1f} GiB is available on {device.type}: use --size "
                      f"{largest} or less" + ("" if options[-1] else ", or --checkpointing auto"))


def largest_fitting(size: tuple[int, int], layers: Iterable[str], free: int, *,
                    dtype: torch.dtype, checkpointing: bool) -> int:
    """The largest long side (aspect of ``size`` kept) whose estimate fits in ``free``."""
    layers = tuple(layers)
    low, high = 16, max(size)
    while low < high:
        mid = (low + high + 1) // 2
        fits = estimate_peak_bytes(scaled(size, mid), layers, dtype=dtype,
                                   checkpointing=checkpointing) <= free
        low, high = (mid, high) if fits else (low, mid - 1)
    return low


def _pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]
