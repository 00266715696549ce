"""Stylizer: the one loop that runs style transfer, as a generator of :class:`Step` records.

The CLI's progress bar, notebooks and the web UI all consume :meth:`Stylizer.steps`;
breaking out of it (or closing it) stops the run after the current step.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from . import color, mask, memory
from .config import StyleConfig
from .devices import compute_dtype, resolve_device, tune
from .io import metadata
from .io.image import resize, to_pil, to_tensor
from .io.inputs import ImageInput, Inputs, Source, StyleInput, prepare
from .losses import Objective
from .optim import PIXEL_SCALE, make_optimizer, make_schedule
from .pyramid import Level, levels, style_side, upsample
from .vgg import VGG19Features, layer_weights
from .weights import LoadedWeights, load_weights

log = logging.getLogger(__name__)
MAX_NONFINITE = 5  # consecutive non-finite or diverging steps before a run gives up
DIVERGED = 1e3  # a step whose loss exceeds the last good loss this many times diverged


class NonFiniteError(RuntimeError):
    """The loss or the image stopped being finite and lowering the rate did not help.

    ``image`` holds the last good image (1 x 3 x H x W, [0, 1]).
    """

    def __init__(self, message: str, image: Tensor) -> None:
        super().__init__(message)
        self.image = image


@dataclass(frozen=True)
class Step:
    """Progress of one optimisation step.

    ``image`` is the live image (1 x 3 x H x W, RGB in [0, 1]) after the step: valid until
    the next step; clone it to keep it.
    """

    iteration: int                 # 1-based, over all levels
    total: int                     # iterations over all levels
    level: int                     # 0-based scale index
    levels: int
    size: tuple[int, int]          # (width, height) of this level
    loss: float                    # weighted total, evaluated before the step
    terms: dict[str, float]        # weighted content, style, tv
    lr: float
    elapsed: float                 # seconds since the run started
    image: Tensor = field(repr=False)

    def record(self) -> dict[str, Any]:
        """The step without its image, for logs and histories."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "image"}


@dataclass
class Result:
    """The outcome of :meth:`Stylizer.run`."""

    image: Image.Image
    tensor: Tensor
    history: list[dict[str, Any]]
    config: StyleConfig
    parameters: dict[str, Any]


class Stylizer:
    """Runs style transfer; keeps loaded networks between runs (for the web UI and batches)."""

    def __init__(self) -> None:
        self._extractors: dict[tuple[Any, ...], VGG19Features] = {}

    def job(self, content: ImageInput, style: StyleInput, config: StyleConfig | None = None,
            **options: Any) -> Job:
        """Check the options and decode the inputs (fast; nothing is computed yet).

        Args:
            content: path or PIL image.
            style: path or PIL image, or a list of them.
            config: options; keyword ``options`` override single fields.

        Raises:
            ConfigError, ImageError: bad options or inputs.
        """
        config = config or StyleConfig()
        if options:
            config = config.replace(**options)
        return Job(self, prepare(content, style, config), config)

    def steps(self, content: ImageInput, style: StyleInput, config: StyleConfig | None = None,
              **options: Any) -> Iterator[Step]:
        """Yield a :class:`Step` after every optimisation step (see :meth:`Job.steps`)."""
        return self.job(content, style, config, **options).steps()

    def run(self, content: ImageInput, style: StyleInput, config: StyleConfig | None = None,
            **options: Any) -> Result:
        """Run to the end and return the :class:`Result`."""
        return self.job(content, style, config, **options).run()

    def extractor(self, weights: LoadedWeights, config: StyleConfig,
                  device: torch.device) -> VGG19Features:
        """The feature extractor for a config, built once per (weights, pooling, layers)."""
        layers = config.content_layers + config.style_layers
        key = (weights.source, config.seed if weights.source == "random" else None,
               config.pooling, layers, str(device))
        if key not in self._extractors:
            net = VGG19Features(weights.convs, weights.preprocessing, layers=layers,
                                pooling=config.pooling)
            net = net.to(device)
            if device.type != "mps":  # oneDNN and cuDNN convolutions are faster in NHWC
                net = net.to(memory_format=torch.channels_last)
            self._extractors[key] = net
        if config.preserve_color == "luminance":  # the network sees luminance only
            return color.GreyInput(self._extractors[key])  # type: ignore[return-value]
        return self._extractors[key]


@dataclass
class Job:
    """One prepared run: checked inputs and options. Iterate :meth:`steps` or call :meth:`run`."""

    stylizer: Stylizer
    inputs: Inputs
    config: StyleConfig

    def steps(self) -> Generator[Step, None, None]:
        """Yield a :class:`Step` after every optimisation step, coarse levels first.

        Raises:
            WeightsError, DeviceError: when the run starts (first ``next``).
            NonFiniteError: the optimisation diverged beyond repair.
        """
        config, inputs = self.config, self.inputs
        device = resolve_device(config.device)                    # 1. device and network
        tune(device)
        dtype = compute_dtype(device, config.precision)
        checkpointing = memory.plan(inputs, config, device, dtype)  # refuses what cannot fit
        extractor = self.stylizer.extractor(self.weights(), config, device)
        getattr(extractor, "network", extractor).checkpointing = checkpointing
        plan = levels(inputs.size, iterations=config.iterations, scales=config.scales,
                      start_size=config.start_size, scale_iterations=config.scale_iterations)
        clock = _Clock(total=sum(level.iterations for level in plan), levels=len(plan),
                       dtype=dtype)
        torch.manual_seed(config.seed)
        image: Tensor | None = None
        for index, level in enumerate(plan):                      # 2. coarse to fine
            objective = _objective(extractor, inputs, level, config, device)   # 3. targets
            image = _start_image(image, inputs, level, config, device)         # 4. start image
            image = yield from _optimise(image, extractor, objective, config, clock, index, level)

    def weights(self) -> LoadedWeights:
        """The network weights of this run (loaded once per process)."""
        return load_weights(self.config.weights, seed=self.config.seed)

    def parameters(self, last: Step | None, **extra: Any) -> dict[str, Any]:
        """What to embed in an output made from step ``last`` (None: nothing ran)."""
        return metadata.parameters(self.config, self.inputs, self.weights(),
                                   [last.record()] if last else [], **extra)

    def run(self) -> Result:
        """Run to the end and return the :class:`Result`."""
        history: list[dict[str, Any]] = []
        last: Step | None = None
        for last in self.steps():
            history.append(last.record())
        final = self.finish(last.image if last is not None
                            else to_tensor(resize(self.inputs.content.image, self.inputs.size)))
        return Result(self.output(final), final, history, self.config, self.parameters(last))

    def finish(self, image: Tensor) -> Tensor:
        """Post-processing of a step's image (1 x 3 x H x W): in ``luminance`` colour mode,
        the image's luminance recombined with the content's chroma. Returns a CPU copy."""
        image = image.detach().cpu().clone()
        if self.config.preserve_color != "luminance":
            return image
        w, h = image.shape[-1], image.shape[-2]
        return color.combine_luminance(image, to_tensor(resize(self.inputs.content.image, (w, h))))

    def output(self, image: Tensor) -> Image.Image:
        """A finished image as PIL: RGB, or RGBA with the content's alpha (``keep_alpha``)."""
        pil = to_pil(image)
        if self.inputs.alpha is not None:
            pil.putalpha(resize(self.inputs.alpha, pil.size))
        return pil


def stylize(content: ImageInput, style: StyleInput, **options: Any) -> Image.Image:
    """Paint ``content`` in the style of ``style``; options are :class:`StyleConfig` fields."""
    return Stylizer().run(content, style, StyleConfig(**options)).image


@dataclass
class _Clock:
    total: int
    levels: int
    dtype: torch.dtype = torch.float32  # the network's compute dtype
    lr: float | None = None             # the rate the last level ended with
    done: int = 0
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _objective(extractor: VGG19Features, inputs: Inputs, level: Level, config: StyleConfig,
               device: torch.device) -> Objective:
    content_rgb = to_tensor(resize(inputs.content.image, level.size))
    content = color.grey(content_rgb) if config.preserve_color == "luminance" else content_rgb
    styles = [_style_tensor(s, inputs, level, config, content_rgb) for s in inputs.styles]
    with torch.no_grad():
        content_features = extractor(content.to(device))
        style_features = [extractor(s.to(device)) for s in styles]
    style_weights = layer_weights(config, "style")
    masks = None
    if inputs.mask is not None:
        regions = mask.region_maps(inputs.mask.image, level.size, inputs.style_count).to(device)
        masks = mask.layer_masks(regions, style_weights,
                                 {n: tuple(content_features[n].shape) for n in style_weights})
    return Objective.from_features(
        content_features, style_features,
        content_weights=layer_weights(config, "content"), style_weights=style_weights,
        style_blend=config.style_blend, tv_weight=config.tv_weight,
        feature_norm=config.feature_norm, gram_norm=config.gram_norm,
        style_loss=config.style_loss, groups=inputs.groups or None, masks=masks)


def _style_tensor(style: Source, inputs: Inputs, level: Level, config: StyleConfig,
                  content: Tensor) -> Tensor:
    """A style image at the level's scale, recoloured or reduced to luminance as configured."""
    size = style_side(style.image.size, level.size, inputs.size, config.style_size,
                      config.style_scale)
    image = to_tensor(resize(style.image, size))
    if config.preserve_color == "match":
        return color.match_color(image, content)
    if config.preserve_color == "luminance":
        return color.match_luminance(image, content)
    return image


def _start_image(previous: Tensor | None, inputs: Inputs, level: Level, config: StyleConfig,
                 device: torch.device) -> Tensor:
    """The first level's initial image, or the previous level's result upsampled."""
    if previous is not None:
        return upsample(previous, level.size)
    content = to_tensor(resize(inputs.content.image, level.size))
    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(config.seed))
    if config.init == "content":
        image = content
    elif config.init == "noise":
        image = noise
    elif config.init == "content+noise":
        image = config.noise_ratio * noise + (1.0 - config.noise_ratio) * content
    elif config.init == "style":
        image = to_tensor(inputs.styles[0].image.resize(level.size, Image.Resampling.LANCZOS))
    else:
        assert inputs.init is not None
        image = to_tensor(inputs.init.image.resize(level.size, Image.Resampling.LANCZOS))
    if config.preserve_color == "luminance":  # the network only ever sees luminance
        image = color.grey(image)
    return image.to(device)


def _optimise(image: Tensor, extractor: VGG19Features, objective: Objective, config: StyleConfig,
              clock: _Clock, index: int, level: Level) -> Generator[Step, None, Tensor]:
    """Run one level's iterations on ``image``; yield a Step after each; return the image."""
    # L-BFGS's first step is the gradient scaled to an L1 norm of 1 in the optimised units,
    # and only later steps are scale-free. In units of 1/(255 * elements) that first step
    # moves pixels by about one grey level on average, whatever the loss's scale; in [0, 1]
    # units it can be far too short (a stalled run) or its curvature too noisy (a divergent
    # one).
    scale = _lbfgs_scale(image) if config.optimizer == "lbfgs" else 1.0
    x = (image.detach() * scale).requires_grad_(True)
    # A finer level refines the upsampled picture: it starts at the rate the level below
    # ended with (the adaptive schedule has lowered it), not at the initial, coarse rate.
    lr = clock.lr if clock.lr is not None else config.learning_rate
    optimizer, schedule = _optimizer(x, lr, config)
    # `good` is the last point whose loss was measured finite and sane (`good_loss`): where a
    # diverging step goes back to. A step's loss is measured at `start`, before its move.
    # `shown` is the picture of the last step yielded (what a NonFiniteError hands back).
    good, start, shown = x.detach().clone(), x.detach().clone(), x.detach().clone()
    good_loss = math.inf
    failures = done = 0
    line_search = False
    while done < level.iterations:
        start.copy_(x.detach())
        terms = _step(x, extractor, objective, optimizer, clock.dtype, scale)
        loss = sum(terms.values())
        sane = math.isfinite(loss) and loss <= DIVERGED * good_loss
        if sane:
            good.copy_(start)
            good_loss = loss
        if not (sane and bool(torch.isfinite(x).all())):
            # Non-finite, or a jump by orders of magnitude: an L-BFGS step taken with
            # curvature from far away (its history would then hold a pair that keeps every
            # later step microscopic) or too high a rate. Go back, forget the history.
            failures += 1
            if failures > MAX_NONFINITE:
                last = shown if bool(torch.isfinite(shown).all()) else good
                raise NonFiniteError("the loss is not finite or diverges even at a much lower rate: "
                                     "lower --lr or the loss weights", last.clone() / scale)
            why = ("non-finite loss or image" if sane or not math.isfinite(loss)
                   else f"diverging step (loss {loss:.3g} after {good_loss:.3g})")
            with torch.no_grad():
                x.copy_(good)
            if isinstance(optimizer, torch.optim.LBFGS) and not line_search:
                # Its second step, scaled by the curvature of the first, overshoots again
                # from any restart; a line search bounds every step instead.
                line_search = True  # routine (a level's first steps, often): info only
                log.info("%s: back to the last good image, L-BFGS with line search", why)
            else:
                lr = schedule.lr / 10.0
                log.warning("%s: back to the last good image, lr %.3g", why, lr)
            optimizer, schedule = _optimizer(x, lr, config, line_search)
            continue
        failures = 0
        if isinstance(optimizer, torch.optim.LBFGS) and torch.equal(x.detach(), start):
            # L-BFGS found no descent direction in its history (round-off in float32) and did
            # not move; it never would again, as its history cannot change without a move.
            log.info("L-BFGS stalled at step %d: starting a fresh curvature history", done + 1)
            optimizer, schedule = _optimizer(x, schedule.lr, config, line_search)
        schedule.step(loss)
        shown.copy_(x.detach())
        done += 1
        clock.done += 1
        yield Step(clock.done, clock.total, index, clock.levels, level.size, loss, terms,
                   schedule.lr, clock.elapsed(), _picture(x, scale))
    clock.lr = schedule.lr
    return _picture(x, scale)


def _lbfgs_scale(image: Tensor) -> float:
    """Units of the variable L-BFGS optimises: image * scale (see :func:`_optimise`)."""
    return PIXEL_SCALE / image.numel()


def _picture(x: Tensor, scale: float) -> Tensor:
    """The optimised variable as an RGB [0, 1] image."""
    return (x.detach() / scale).clamp(0.0, 1.0) if scale != 1.0 else x.detach()


def _optimizer(x: Tensor, lr: float, config: StyleConfig,
               line_search: bool = False) -> tuple[Any, Any]:
    optimizer = make_optimizer(config.optimizer, [x], lr, line_search=line_search)
    schedule = make_schedule(config.lr_schedule, optimizer, patience=config.lr_patience,
                             factor=config.lr_factor, min_lr=config.lr_min)
    return optimizer, schedule


def _step(x: Tensor, extractor: VGG19Features, objective: Objective,
          optimizer: torch.optim.Optimizer, dtype: torch.dtype = torch.float32,
          scale: float = 1.0) -> dict[str, float]:
    """One optimiser step on ``x`` (the image times ``scale``); returns the weighted loss
    terms at the image before the step.

    The network runs in ``dtype`` (bfloat16 under autocast); the losses in float32.
    """
    terms: dict[str, float] = {}

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        image = x / scale if scale != 1.0 else x
        parts = objective(_features(extractor, image, dtype), image)
        loss = sum(parts.values())
        loss.backward()  # type: ignore[union-attr]
        if not terms:
            terms.update({k: float(v.detach()) for k, v in parts.items()})
        return loss  # type: ignore[return-value]

    optimizer.step(closure)
    if not isinstance(optimizer, torch.optim.LBFGS):
        # L-BFGS is left unclamped: its curvature pairs assume the step it took, and clamping
        # an image that starts at 0 or 1 (white skies) breaks them. It yields clamped images.
        with torch.no_grad():
            x.clamp_(0.0, scale)
    return terms


def _features(extractor: VGG19Features, x: Tensor, dtype: torch.dtype) -> dict[str, Tensor]:
    """The extractor's activations of ``x``, computed in ``dtype``, returned as float32 (so
    Gram matrices and losses keep full precision) in the network's memory layout (the Gram
    matrix of channels-last activations needs no copy; see :func:`losses.gram_matrix`)."""
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
        features = extractor(x)
    return {name: f.float() for name, f in features.items()}
