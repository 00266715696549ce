"""How much memory a run needs, checked before it starts.

:func:`estimate_peak_bytes` models the peak of one optimisation step at the output size:
the activations autograd keeps for the backward pass (every ReLU output of the truncated
VGG19, or with gradient checkpointing only the requested layers plus the largest segment
being recomputed), then the larger of the float32 copies of the requested activations for
the losses (forward end) and the gradient buffers of the widest layer (backward), and a
fixed base (interpreter, torch, weights). The
constants are calibrated against measured peak RSS on CPU (see tests/test_memory.py and
benchmarks/README.md); the estimate errs on the high side.

:func:`state_bytes` counts the image-sized tensors of a step, the optimiser's state among
them (L-BFGS keeps ``history`` pairs: 50 at 24 MP are 29 GB), and
:func:`estimate_tiled_bytes` a step in tiles (:mod:`estilo.tiling`), bounded by the tile.

:func:`plan` uses them to fit a run into the available memory or ``max_memory``, whichever
is less: the image whole (checkpointing only if needed), else tiles, the largest that fit,
with the longest L-BFGS history that fits, or Adam, or SGD; and to refuse, with a one-line
:class:`ConfigError` naming the largest size that fits, a run that would be killed halfway
for lack of memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import LAYER_NAMES, ConfigError, StyleConfig, parse_memory, resolve_layer
from .io.inputs import Inputs
from .pyramid import scaled, style_side
from .tiling import halo_of
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


IMAGE_COPIES = 5
"""Image-sized float32 tensors alive during every step besides the optimiser's own state:
the optimised variable (the level's start image itself, :class:`~estilo.optim.PixelDescent`
takes it over), its gradient (the tiled loss hands its own on), PixelDescent's best image
and the picture shown after each step (the one :class:`~estilo.transfer.Step` carries), and
one for temporaries."""
HISTORIES = (50, 20, 10, 5, 3)
"""L-BFGS history lengths (pairs of image-sized vectors) a plan tries, longest first."""
TILES = (1024, 768, 512, 384, 256, 128)
"""Tile sides (px) a plan tries when the image does not fit whole, largest (fastest) first."""
FAST_TILES = 3
"""The first tiles of :data:`TILES` (512 px and up) whose halo costs little: a plan takes a
leaner optimiser in them before it takes smaller tiles."""
FALLBACKS = ("adam", "sgd")
"""Optimisers a plan falls back to when L-BFGS's history does not fit, leanest last."""


def state_bytes(pixels: int, optimizer: str, history: int = 50) -> int:
    """Bytes of the image-sized tensors of a step: :data:`IMAGE_COPIES` and the optimiser's
    (L-BFGS: ``history`` pairs, 5 more vectors, the step's start and the variable in the
    loss's units; Adam: its two moments and a temporary; SGD: the variable in the loss's
    units and its gradient)."""
    extra = {"lbfgs": 2 * history + 7, "adam": 3, "sgd": 2}.get(optimizer, 0)
    return (IMAGE_COPIES + extra) * 3 * pixels * 4


def estimate_tiled_bytes(size: tuple[int, int], layers: Iterable[str], tile: int, *,
                         content_layers: Iterable[str] = (), dtype: torch.dtype = torch.float32,
                         checkpointing: bool = False) -> int:
    """Estimated peak (bytes) of a tiled step over an image of ``size``, without the
    optimiser's state (:func:`state_bytes`): one crop's step (tile and halo), the content's
    activations at ``content_layers`` kept whole (the content loss's targets), and the base."""
    layers = tuple(layers)
    crop = min(tile + 2 * halo_of(layers), max(size))
    crop_size = (min(crop, size[0]), min(crop, size[1]))
    step = estimate_peak_bytes(crop_size, layers, dtype=dtype, checkpointing=checkpointing,
                               style_pixels=_pixels(crop_size)) - BASE_BYTES
    kept = sum(channels_of(n) * _pixels(size) / pool_factor(n) ** 2 * 4
               for n in {resolve_layer(n) for n in content_layers})
    return int(BASE_BYTES + step + SAFETY * kept)


@dataclass(frozen=True)
class Plan:
    """How a run fits its memory: checkpointing, tiles (None: the image whole), the
    optimiser and its L-BFGS history, and the estimated peak (bytes)."""

    checkpointing: bool
    tile: int | None
    optimizer: str
    history: int
    peak: int
    limit: int | None = None   # the memory the plan had to fit in (None: unknown)

    def describe(self) -> str:
        """``tiles of 768 px, L-BFGS history 10, checkpointing off, about 6.1 of 8.0 GiB``."""
        parts = [f"tiles of {self.tile} px" if self.tile else "untiled",
                 f"L-BFGS history {self.history}" if self.optimizer == "lbfgs"
                 else self.optimizer, f"checkpointing {'on' if self.checkpointing else 'off'}"]
        budget = f" of {self.limit / GIB:.1f}" if self.limit else ""
        return ", ".join(parts) + f", about {self.peak / GIB:.1f}{budget} GiB"


def memory_limit(config: StyleConfig, device: torch.device) -> int | None:
    """What a run may use: ``max_memory``, or the available memory if less (None: unknown)."""
    free = available_bytes(device)
    cap = parse_memory(config.max_memory) if config.max_memory else None
    known = [b for b in (free, cap) if b is not None]
    return min(known) if known else None


def plan(inputs: Inputs, config: StyleConfig, device: torch.device, dtype: torch.dtype, *,
         size: tuple[int, int] | None = None) -> Plan:
    """The plan of a run at ``size`` (a level of its schedule; None: the output's size): the
    image whole if it fits (checkpointing only if needed), else tiles, the largest that fit,
    with the longest L-BFGS history that fits (else Adam, else SGD: leaner states); ``tile``
    forces tiles of that size. Each level of a run has its own plan (:func:`level_plans`):
    the coarse levels keep L-BFGS's full history when only the finest need less.

    Raises:
        ConfigError: the output size cannot fit even in the smallest tiles with SGD; the
            message names the largest long side that would.
    """
    layers = config.content_layers + config.style_layers
    final = size or inputs.size
    pixels = _pixels(final)
    style_pixels = max(_pixels(style_side(s.image.size, final, inputs.size, config.style_size,
                                          config.style_scale)) for s in inputs.styles)
    limit = memory_limit(config, device)
    switches = {"on": (True,), "off": (False,)}.get(config.checkpointing, (False, True))
    histories = HISTORIES if config.optimizer == "lbfgs" else (0,)
    if config.tile is None:
        for checkpointing in switches:
            peak = estimate_peak_bytes(final, layers, dtype=dtype,
                                       checkpointing=checkpointing, style_pixels=style_pixels)
            peak += state_bytes(pixels, config.optimizer, histories[0])
            if limit is None or peak <= limit:
                return _chosen(Plan(checkpointing, None, config.optimizer, histories[0], peak,
                                    limit))
    leaner = FALLBACKS[FALLBACKS.index(config.optimizer) + 1:] \
        if config.optimizer in FALLBACKS else FALLBACKS
    optimisers: list[tuple[str, int]] = [(config.optimizer, h) for h in histories]
    optimisers += [(name, 0) for name in leaner]
    # The best optimiser state in tiles that are not too slow, then in any tiles.
    for sides in ((config.tile,),) if config.tile else (TILES[:FAST_TILES], TILES):
        for optimizer, history in optimisers:
            for tile in sides:
                for checkpointing in switches:
                    peak = estimate_tiled_bytes(final, layers, tile,
                                                content_layers=config.content_layers,
                                                dtype=dtype, checkpointing=checkpointing) \
                        + state_bytes(pixels, optimizer, history)
                    if limit is None or peak <= limit:
                        return _chosen(Plan(checkpointing, tile, optimizer, history, peak,
                                            limit))
    assert limit is not None
    tile, checkpointing = config.tile or TILES[-1], switches[-1]
    need = estimate_tiled_bytes(final, layers, tile, content_layers=config.content_layers,
                                dtype=dtype, checkpointing=checkpointing) \
        + state_bytes(pixels, "sgd")
    low, high = 16, max(final)
    while low < high:
        mid = (low + high + 1) // 2
        size = scaled(final, mid)
        fits = estimate_tiled_bytes(size, layers, tile, content_layers=config.content_layers,
                                    dtype=dtype, checkpointing=checkpointing) \
            + state_bytes(_pixels(size), "sgd") <= limit
        low, high = (mid, high) if fits else (low, mid - 1)
    where = f"--max-memory {config.max_memory}" if config.max_memory and \
        parse_memory(config.max_memory) == limit else f"the {limit / GIB:.1f} GiB available"
    raise ConfigError(f"size {final[0]}x{final[1]} needs about {need / GIB:.1f} GiB "
                      f"even in tiles of {tile} px with SGD, over {where} on {device.type}: "
                      f"use --size {low} or less" + ("" if switches[-1] else
                                                      ", or --checkpointing auto"))


def level_plans(inputs: Inputs, config: StyleConfig, device: torch.device, dtype: torch.dtype,
                sizes: Iterable[tuple[int, int]]) -> list[Plan]:
    """The plan of each level (of ``sizes``, coarse to fine) of a run; the output's first, so
    that a run that cannot fit is refused before anything else is planned."""
    sizes = tuple(sizes)
    final = plan(inputs, config, device, dtype)
    return [final if size == inputs.size else plan(inputs, config, device, dtype, size=size)
            for size in sizes]


def _chosen(chosen: Plan) -> Plan:
    log.debug("plan: %s", chosen.describe())
    return chosen


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
