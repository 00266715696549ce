"""How much memory a run needs, checked before it starts.

A run's peak resident memory is the process as it stands before the run (interpreter,
torch, the weights, the decoded images: measured, :func:`fixed_bytes`), what its first
step adds once whatever the size (:data:`RUNTIME_BYTES`), and the largest level's own
tensors: :func:`step_bytes` (the activations autograd keeps, the gradient buffers, the
targets) and :func:`state_bytes` (the image-sized tensors of a step, the optimiser's state
among them: L-BFGS keeps a pair of image-sized vectors per iteration, up to its history:
50 pairs at 24 MP are 29 GB). :func:`estimate_tiled_bytes` counts a step in tiles
(:mod:`estilo.tiling`), bounded by the tile. The figures are calibrated against peak RSS
measured with ``/usr/bin/time -v`` in fresh processes (benchmarks/memory_model.py; the table
is in benchmarks/README.md), with freed memory returned to the system
(:func:`estilo.devices.tune`).

:func:`plan` uses them to fit a run into the available memory or ``max_memory``, whichever
is less, keeping :data:`MARGIN` of it spare: the image whole (checkpointing only if
needed), else tiles, the largest that fit, with the longest L-BFGS history that fits, or
Adam, or SGD; and to refuse, with a one-line :class:`ConfigError` naming the largest size
that fits (or the memory a run needs at the smallest size), a run that would be killed
halfway for lack of memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import LAYER_NAMES, ConfigError, StyleConfig, parse_memory, resolve_layer
from .io.image import MIN_SIDE
from .io.inputs import Inputs
from .pyramid import Level, scaled, style_side
from .tiling import halo_of
from .vgg import channels_of, depth_of, pool_factor

log = logging.getLogger(__name__)

GIB = 1024 ** 3
MIB = 1024 ** 2
FIXED_BYTES = 360 * MIB
"""The process before a run where it cannot be measured (not Linux; a GPU): interpreter,
torch, the dequantised VGG19 weights, the decoded images (352-372 MiB measured on CPU with
torch 2.13)."""
RUNTIME_BYTES = 130 * MIB
"""What a run's first step adds once, whatever its size: the network's channels-last copy
of its weights and the convolution library's reordered weights and buffers (measured:
the peak over the fixed part less the model's per-pixel figures, 125-135 MiB at 128-256 px)."""
MARGIN = 0.10
"""The share of the memory limit a plan keeps spare: it fits its estimate times
(1 + MARGIN) under the limit, for what varies between runs and machines."""
BACKWARD_BUFFERS = 3           # widest-layer-sized tensors alive during backward (grads, workspace)


def estimate_peak_bytes(size: tuple[int, int], layers: Iterable[str], *,
                        dtype: torch.dtype = torch.float32, checkpointing: bool = False,
                        style_pixels: int | None = None, base: int = FIXED_BYTES) -> int:
    """Estimated peak memory (bytes) of a run whose output is ``size`` (width, height),
    without the optimiser's state (:func:`state_bytes`).

    Args:
        size: the output's (width, height); coarser levels need less.
        layers: the content and style layers (they fix the depth of the network).
        dtype: the network's compute dtype (float32 or bfloat16).
        checkpointing: whether VGG segments are recomputed in backward.
        style_pixels: pixels of the largest style image at the output scale (None: as many
            as the output).
        base: the process before the run (:func:`fixed_bytes`).
    """
    return base + RUNTIME_BYTES + step_bytes(size, layers, dtype=dtype,
                                             checkpointing=checkpointing,
                                             style_pixels=style_pixels)


def step_bytes(size: tuple[int, int], layers: Iterable[str], *,
               dtype: torch.dtype = torch.float32, checkpointing: bool = False,
               style_pixels: int | None = None) -> int:
    """The tensors of one step at ``size`` (see :func:`estimate_peak_bytes`): the larger of
    the step (activations kept for the backward pass and the gradient buffers) and the
    targets' forward passes (no gradient)."""
    wanted = {resolve_layer(n) for n in layers}
    names = LAYER_NAMES[: depth_of(wanted) + 1]
    pixels = size[0] * size[1]
    elements = {n: channels_of(n) * pixels / pool_factor(n) ** 2 for n in names}
    act = 2 if dtype == torch.bfloat16 else 4
    requested = sum(elements[n] for n in wanted)
    copies = requested * 4 if act != 4 else 0.0   # float32 copies of bfloat16 activations
    if checkpointing:
        kept = max(_recomputed(names, wanted, elements, act), requested * act + copies)
    else:
        relus = {n for n in names if n.startswith(("relu", "pool"))}
        widest = max(elements.values())
        # The float32 copies for the losses are freed (as saved tensors of the Gram
        # matrices) before the backward pass reaches the widest layers.
        kept = sum(elements[n] for n in relus | wanted) * act \
            + max(copies, widest * (4 + BACKWARD_BUFFERS * act))
    step = kept + 12 * pixels * 4
    share = (style_pixels or pixels) / pixels       # style activations scale with its pixels
    targets = ((1 + share) * requested + max(elements.values())) * 4  # no grad, float32
    return int(max(step, targets))


def _recomputed(names: tuple[str, ...], wanted: set[str], elements: dict[str, float],
                act: int) -> float:
    """Bytes at the peak of a checkpointed backward pass: while segment k (the layers up to a
    requested one) is recomputed and run backward, the segments before it keep only their
    requested outputs (the checkpoints), segment k all its layers' outputs, and two
    gradients of its widest layer are alive; the segments after it are done and freed."""
    peak = earlier = 0.0
    segment: list[str] = []
    for name in names:
        segment.append(name)
        if name in wanted:
            inside = sum(elements[n] for n in segment)
            widest = max(elements[n] for n in segment)
            peak = max(peak, (earlier + inside) * act + 2 * widest * 4)
            earlier += elements[name]
            segment = []
    return peak


def process_bytes() -> int | None:
    """This process's resident memory now (bytes; Linux), or None where it cannot be read."""
    return _proc_bytes("/proc/self/status", "VmRSS:")


def _proc_bytes(path: str, key: str) -> int | None:
    """The ``key`` line of a /proc file (``VmRSS:   123 kB``) in bytes; None if unreadable."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def fixed_bytes(device: torch.device) -> int:
    """What the process holds before a run: its resident memory on CPU where it can be read
    (so what is installed, imported or cached counts as it is), else :data:`FIXED_BYTES`."""
    measured = process_bytes() if device.type == "cpu" else None
    return measured if measured is not None else FIXED_BYTES


def available_bytes(device: torch.device) -> int | None:
    """Memory a run may use: free GPU memory on CUDA, MemAvailable on Linux; None if unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return _proc_bytes("/proc/meminfo", "MemAvailable:") if device.type == "cpu" else None


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
                         checkpointing: bool = False, base: int = FIXED_BYTES) -> int:
    """Estimated peak (bytes) of a tiled step over an image of ``size``, without the
    optimiser's state (:func:`state_bytes`): the base, one crop's step (tile and halo), and
    the content's activations at ``content_layers`` kept whole (the content loss's targets)."""
    layers = tuple(layers)
    crop = min(tile + 2 * halo_of(layers), max(size))
    crop_size = (min(crop, size[0]), min(crop, size[1]))
    kept = sum(channels_of(n) * _pixels(size) / pool_factor(n) ** 2 * 4
               for n in {resolve_layer(n) for n in content_layers})
    return int(estimate_peak_bytes(crop_size, layers, dtype=dtype, checkpointing=checkpointing,
                                   style_pixels=_pixels(crop_size), base=base) + kept)


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
        """``tiles of 768 px, L-BFGS history 10, checkpointing off, about 6.12 of 7.45 GiB
        (10 % kept spare)``."""
        parts = [f"tiles of {self.tile} px" if self.tile else "untiled",
                 f"L-BFGS history {self.history}" if self.optimizer == "lbfgs"
                 else self.optimizer, f"checkpointing {'on' if self.checkpointing else 'off'}"]
        budget = f" of {self.limit / GIB:.2f}" if self.limit else ""
        spare = f" ({MARGIN:.0%} kept spare)".replace("%", " %") if self.limit else ""
        return ", ".join(parts) + f", about {self.peak / GIB:.2f}{budget} GiB{spare}"


def memory_limit(config: StyleConfig, device: torch.device) -> int | None:
    """What a run may use: ``max_memory``, or the available memory if less (None: unknown)."""
    free = available_bytes(device)
    cap = parse_memory(config.max_memory) if config.max_memory else None
    known = [b for b in (free, cap) if b is not None]
    return min(known) if known else None


def fits(peak: int, limit: int | None) -> bool:
    """Whether an estimated ``peak`` fits ``limit`` with :data:`MARGIN` spare."""
    return limit is None or peak * (1 + MARGIN) <= limit


def plan(inputs: Inputs, config: StyleConfig, device: torch.device, dtype: torch.dtype, *,
         size: tuple[int, int] | None = None, iterations: int | None = None,
         base: int | None = None) -> Plan:
    """The plan of a run at ``size`` (a level of its schedule, with its ``iterations``; None:
    the output's size and ``config.iterations``): the first of :func:`_candidates` that fits.
    ``base``: the process before the run (None: :func:`fixed_bytes`).

    Raises:
        ConfigError: the output size cannot fit even in the smallest tiles with SGD; the
            message names the largest long side that would, or the memory the smallest
            size needs.
    """
    layers = config.content_layers + config.style_layers
    final = size or inputs.size
    steps = iterations if iterations is not None else config.iterations
    style_pixels = max(_pixels(style_side(s.image.size, final, inputs.size, config.style_size,
                                          config.style_scale)) for s in inputs.styles)
    limit = memory_limit(config, device)
    base = fixed_bytes(device) if base is None else base
    switches = {"on": (True,), "off": (False,)}.get(config.checkpointing, (False, True))
    histories = HISTORIES if config.optimizer == "lbfgs" else (0,)

    def state(optimizer: str, history: int, at: tuple[int, int] = final) -> int:
        return state_bytes(_pixels(at), optimizer, min(history, steps))

    def tiled(tile: int, checkpointing: bool, at: tuple[int, int] = final) -> int:
        return estimate_tiled_bytes(at, layers, tile, content_layers=config.content_layers,
                                    dtype=dtype, checkpointing=checkpointing, base=base)

    for switch, side, optimizer, history in _candidates(config, switches, histories):
        step = tiled(side, switch) if side is not None else estimate_peak_bytes(
            final, layers, dtype=dtype, checkpointing=switch, style_pixels=style_pixels,
            base=base)
        peak = step + state(optimizer, history)
        if fits(peak, limit):
            return _chosen(Plan(switch, side, optimizer, history, peak, limit))
    assert limit is not None
    tile, checkpointing = config.tile or TILES[-1], switches[-1]
    need = tiled(tile, checkpointing) + state("sgd", 0)
    where = f"--max-memory {config.max_memory}" if config.max_memory and \
        parse_memory(config.max_memory) == limit else f"the {limit / GIB:.2f} GiB available"
    smallest = math.ceil(MIN_SIDE * max(final) / min(final))  # a short side of MIN_SIDE px

    def fit(side: int) -> bool:
        at = scaled(final, side)
        return fits(tiled(tile, checkpointing, at) + state("sgd", 0, at), limit)

    if smallest >= max(final) or not fit(smallest):
        at = scaled(final, min(smallest, max(final)))
        least = (tiled(tile, checkpointing, at) + state("sgd", 0, at)) * (1 + MARGIN)
        raise ConfigError(f"{where} is less than a run needs at any size on {device.type}: "
                          f"about {least / GIB:.2f} GiB at {at[0]}x{at[1]} px (this process "
                          f"already holds {base / GIB:.2f} GiB), {MARGIN:.0%} spare included; "
                          f"give --max-memory {math.ceil(least / 1e8) / 10:g}GB or more"
                          .replace("%", " %"))
    low, high = smallest, max(final)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fit(mid) else (low, mid - 1)
    raise ConfigError(f"size {final[0]}x{final[1]} needs about "
                      f"{need * (1 + MARGIN) / GIB:.2f} GiB ({MARGIN:.0%} spare included) even "
                      f"in tiles of {tile} px with SGD, over {where} on {device.type}: use "
                      f"--size {low} or less".replace("%", " %")
                      + ("" if switches[-1] else ", or --checkpointing auto"))


def level_plans(inputs: Inputs, config: StyleConfig, device: torch.device, dtype: torch.dtype,
                levels: Iterable[Level]) -> list[Plan]:
    """The plan of each level (coarse to fine) of a run; the output's first, so that a run
    that cannot fit is refused before anything else is planned. One measure of the process
    before the run serves every level."""
    levels = tuple(levels)
    base = fixed_bytes(device)
    final = plan(inputs, config, device, dtype, base=base)
    return [final if level.size == inputs.size and level.iterations == config.iterations
            else plan(inputs, config, device, dtype, size=level.size,
                      iterations=level.iterations, base=base) for level in levels]


def _candidates(config: StyleConfig, switches: tuple[bool, ...], histories: tuple[int, ...]
                ) -> list[tuple[bool, int | None, str, int]]:
    """Every plan a run may take, best first, as (checkpointing, tile, optimiser, history):
    the image whole; then the best optimiser state in tiles that are not too slow
    (:data:`FAST_TILES`), then in any tiles (``config.tile``: in those only)."""
    whole: list[tuple[bool, int | None, str, int]] = [
        (c, None, config.optimizer, histories[0]) for c in switches] if config.tile is None else []
    leaner = FALLBACKS[FALLBACKS.index(config.optimizer) + 1:] \
        if config.optimizer in FALLBACKS else FALLBACKS
    optimisers = [(config.optimizer, h) for h in histories] + [(name, 0) for name in leaner]
    groups = ((config.tile,),) if config.tile else (TILES[:FAST_TILES], TILES)
    tiled = [(c, tile, name, history) for sides in groups for name, history in optimisers
             for tile in sides for c in switches]
    return whole + tiled


def _chosen(chosen: Plan) -> Plan:
    log.debug("plan: %s", chosen.describe())
    return chosen


def _pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]
