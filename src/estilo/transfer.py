"""Stylizer: the one loop that runs style transfer, as a generator of :class:`Step` records.

The CLI's progress bar, notebooks and the web UI all consume :meth:`Stylizer.steps`;
breaking out of it (or closing it) stops the run after the current step.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from . import color, mask, memory, tiling
from .config import STRENGTH_UNIT, StyleConfig, outside_useful_range
from .devices import compute_dtype, resolve_device, return_freed_memory
from .io import metadata
from .io.image import resize, to_pil, to_tensor
from .io.inputs import ImageInput, Inputs, Source, StyleInput, prepare
from .losses import Objective
from .optim import LossOf, NonFiniteError, PixelDescent
from .options import flag
from .pyramid import Level, scaled, schedule, style_side, upsample
from .vgg import VGG19Features, channels_of, layer_weights, pool_factor
from .weights import LoadedWeights, load_weights

__all__ = ["ExtraLoss", "Job", "NonFiniteError", "Result", "Step", "Stylizer", "stylize"]

log = logging.getLogger(__name__)
ExtraLoss = Callable[[Tensor], dict[str, Tensor]]
"""More weighted loss terms of the image being optimised (1 x 3 x H x W, RGB in [0, 1], at the
level's size; a graph back to it), added to the objective's: ``{"temporal": ...}`` for video."""


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

    def job(self, content: ImageInput, style: StyleInput, config: StyleConfig | None = None, *,
            start_image: Tensor | None = None, extra_loss: ExtraLoss | None = None,
            **options: Any) -> Job:
        """Check the options and decode the inputs (fast; nothing is computed yet).

        Args:
            content: path or PIL image.
            style: path or PIL image, or a list of them.
            config: options; keyword ``options`` override single fields.
            start_image: the image to start from (1 x 3 x H x W, RGB in [0, 1], any size:
                resized to the first level's) instead of ``config.init``; see :class:`Job`.
            extra_loss: more loss terms of the image, added to the objective's (see
                :data:`ExtraLoss`): e.g. ``estilo video``'s temporal term.

        Raises:
            ConfigError, ImageError: bad options or inputs.
        """
        config = config or StyleConfig()
        if options:
            config = config.replace(**options)
        return Job(self, prepare(content, style, config), config, start_image=start_image,
                   extra_loss=extra_loss)

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
                net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self._extractors[key] = net
        return self._extractors[key]


@dataclass
class Job:
    """One prepared run: checked inputs and options, and what they decide once (the levels,
    the iterations in all, the colour mode). Iterate :meth:`steps` or call :meth:`run`.

    ``start_image`` replaces ``config.init`` (resized to the first level, seen as the colour
    mode sees every start image); ``extra_loss`` adds its terms to the objective's at every
    evaluation (they appear in :attr:`Step.terms`). ``estilo video`` uses both.
    """

    stylizer: Stylizer
    inputs: Inputs
    config: StyleConfig
    start_image: Tensor | None = field(default=None, repr=False, kw_only=True)
    extra_loss: ExtraLoss | None = field(default=None, repr=False, kw_only=True)
    schedule: list[Level] = field(init=False, repr=False)
    total: int = field(init=False, repr=False)
    colour: color.ColourMode = field(init=False, repr=False)
    plans: list[tuple[Level, memory.Plan]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.schedule = schedule(self.inputs.size, self.config)
        self.total = sum(level.iterations for level in self.schedule)
        self.colour = color.ColourMode(self.config.preserve_color)

    def steps(self) -> Generator[Step, None, None]:
        """Yield a :class:`Step` after every optimisation step, coarse levels first.

        Raises:
            WeightsError, DeviceError: when the run starts (first ``next``).
            NonFiniteError: the optimisation diverged beyond repair.
        """
        config, inputs = self.config, self.inputs
        device = resolve_device(config.device)                    # 1. device and network
        dtype = compute_dtype(device, config.precision)
        weights = self.weights()  # loaded first: the plan counts what the process holds
        levels = self.memory_plans()                              # refuses what cannot fit
        if config.max_memory:  # a cap asked for: freed tensors go back (as tune() does)
            return_freed_memory()
        network = self.stylizer.extractor(weights, config, device)
        clock = _Clock()
        image = _given_start(self.start_image, self.colour, device)  # None: from config.init
        start: Tensor | None = None
        for index, (level, budget) in enumerate(levels):          # 2. coarse to fine
            tiles = _tiles(budget, level, config)
            objective = self._objective(network, level, device, tiles)       # 3. targets
            features_of = functools.partial(_features, network, dtype=dtype,
                                            grey=self.colour.luminance,
                                            checkpointing=budget.checkpointing)
            loss_of = functools.partial(_loss, features_of=features_of, objective=objective,
                                        extra=self.extra_loss, tiles=tiles)
            image = _start_image(image, inputs, level, config, self.colour, device)  # 4. start image
            start = _thumbnail(image) if start is None else start
            image = yield from self._optimise(image, loss_of, _level_config(config, budget),
                                              clock, index, level, budget.history)
        if start is not None and image is not None:               # 5. did anything happen?
            _check_progress(start, _thumbnail(image), config, clock.done)

    def memory_plan(self) -> memory.Plan:
        """How the output's level fits its memory (tiles, optimiser, checkpointing): see
        :func:`estilo.memory.plan`."""
        return self.memory_plans()[-1][1]

    def memory_plans(self) -> list[tuple[Level, memory.Plan]]:
        """Each level of the schedule with its memory plan (coarse levels keep L-BFGS's full
        history when only the finest need tiles or a leaner optimiser), made once: by the
        first call, or when the run starts (the weights loaded: the plan counts them)."""
        if self.plans is None:
            device = resolve_device(self.config.device)
            budgets = memory.level_plans(self.inputs, self.config, device,
                                         compute_dtype(device, self.config.precision),
                                         self.schedule)
            self.plans = list(zip(self.schedule, budgets))
        return self.plans

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

    def picture(self, image: Tensor) -> Image.Image:
        """A step's image (1 x 3 x H x W) as every application saves or shows it: the
        :meth:`output` of its :meth:`finish`."""
        return self.output(self.finish(image))

    def finish(self, image: Tensor) -> Tensor:
        """Post-processing of a step's image (1 x 3 x H x W): in ``luminance`` colour mode,
        the image's luminance recombined with the content's chroma. Returns a CPU copy."""
        image = image.detach().cpu().clone()
        if not self.colour.luminance:
            return image
        w, h = image.shape[-1], image.shape[-2]
        return self.colour.finish(image, to_tensor(resize(self.inputs.content.image, (w, h))))

    def output(self, image: Tensor) -> Image.Image:
        """A finished image (from :meth:`finish`) as PIL: RGB, or RGBA with the content's
        alpha (``keep_alpha``); :func:`~estilo.io.output.save_image` keeps its alpha."""
        pil = to_pil(image)
        if self.inputs.alpha is not None:
            pil.putalpha(resize(self.inputs.alpha, pil.size))
        return pil

    def _objective(self, network: VGG19Features, level: Level, device: torch.device,
                   tiles: Tiles) -> Objective:
        """The level's targets from the content's and the styles' moments, tile by tile when
        ``tiles`` says so (the network's own dtype, no autocast)."""
        config, inputs = self.config, self.inputs
        content_rgb = to_tensor(resize(inputs.content.image, level.size))
        content = self.colour.content(content_rgb)
        styles = [self._style_tensor(s, level, content_rgb) for s in inputs.styles]
        style_weights = layer_weights(config, "style")
        content_weights = layer_weights(config, "content")
        layers = tuple(dict.fromkeys([*content_weights, *style_weights]))
        features_of = functools.partial(_features, network, dtype=torch.float32,
                                        grey=self.colour.luminance)
        tile, halo = tiles if tiles is not None else (None, 0)
        content_moments, content_maps = tiling.image_moments(
            features_of, content.to(device), layers, tile=tile, halo=halo, keep=content_weights)
        style_moments = [tiling.image_moments(features_of, s.to(device), layers, tile=tile,
                                              halo=halo)[0] for s in styles]
        masks = None
        if inputs.mask is not None:
            shapes = {n: (1, channels_of(n), level.size[1] // pool_factor(n),
                          level.size[0] // pool_factor(n)) for n in style_weights}
            regions = mask.region_maps(inputs.mask.image, level.size,
                                       inputs.style_count).to(device)
            masks = mask.layer_masks(regions, style_weights, shapes)
        objective = Objective.from_moments(
            content_maps, content_moments, style_moments, content_weights=content_weights,
            style_weights=style_weights, style_blend=config.style_blend,
            tv_weight=config.tv_weight, chroma_tv_weight=config.chroma_tv_weight,
            feature_norm=config.feature_norm, gram_norm=config.gram_norm,
            style_loss=config.style_loss, groups=inputs.groups or None, masks=masks)
        if config.style_weight is None:  # the style's weight by strength (relative errors)
            with torch.no_grad():
                objective.weigh_style_by_strength(config.strength * STRENGTH_UNIT)
        return objective

    def _style_tensor(self, style: Source, level: Level, content: Tensor) -> Tensor:
        """A style image at the level's scale, recoloured or reduced to luminance as the
        colour mode says."""
        size = style_side(style.image.size, level.size, self.inputs.size,
                          self.config.style_size, self.config.style_scale)
        return self.colour.style(to_tensor(resize(style.image, size)), content)

    def _optimise(self, image: Tensor, loss_of: LossOf, config: StyleConfig, clock: _Clock,
                  index: int, level: Level, history: int) -> Generator[Step, None, Tensor]:
        """Run one level's iterations on ``image``; yield a Step after each; return the image.
        A finer level starts at the rate the level below ended with (the adaptive schedule
        has lowered it), unless a memory plan changed the optimiser."""
        if clock.optimizer != config.optimizer:
            clock.optimizer, clock.lr = config.optimizer, None
        descent = PixelDescent(image, config.optimizer,
                               clock.lr if clock.lr is not None else config.learning_rate,
                               schedule=config.lr_schedule, patience=config.lr_patience,
                               factor=config.lr_factor, min_lr=config.lr_min, history=history,
                               take=True)  # the start image is this level's own
        done = 0
        best_terms: dict[str, float] = {}
        final = descent.shown
        while done < level.iterations:
            evaluated = descent.step(loss_of)
            if evaluated is None:  # diverged and undone (PixelDescent says so)
                continue
            loss, terms = evaluated
            done += 1
            clock.done += 1
            if loss == descent.best_loss:
                best_terms = terms
            shown = descent.shown
            if done == level.iterations:
                final = descent.result()
                if descent.ends_above_best:  # the level hands on its best picture: show that
                    shown, loss, terms = final, descent.best_loss, best_terms or terms
            yield Step(clock.done, self.total, index, len(self.schedule), level.size, loss,
                       terms, descent.lr, clock.elapsed(), shown)
        clock.lr = descent.lr
        return final


def stylize(content: ImageInput, style: StyleInput, **options: Any) -> Image.Image:
    """Paint ``content`` in the style of ``style``; options are :class:`StyleConfig` fields."""
    return Stylizer().run(content, style, StyleConfig(**options)).image


@dataclass
class _Clock:
    """What runs on from level to level: iterations done, the time since the start, and the
    optimiser and rate the last level ended with."""

    lr: float | None = None
    optimizer: str | None = None
    done: int = 0
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


FALLBACK_LR = {"adam": 0.01}
"""The rate of an optimiser a level's memory plan took instead of L-BFGS (in [0, 1] pixel
units): such a level refines the picture of the level below, upsampled, and Adam's default
rate (0.39) would repaint it; 0.01 moves a pixel by a few grey levels a step
(benchmarks/README.md, "Print size"). SGD keeps its default, per-size rate."""


def _level_config(config: StyleConfig, budget: memory.Plan) -> StyleConfig:
    """The run's options at a level whose memory plan took a leaner optimiser."""
    if budget.optimizer == config.optimizer:
        return config
    return config.replace(optimizer=budget.optimizer, lr=FALLBACK_LR.get(budget.optimizer))


Tiles = tuple[int, int] | None
"""A level's tiling: (tile side, halo) in px, or None for the image whole."""


def _tiles(budget: memory.Plan, level: Level, config: StyleConfig) -> Tiles:
    """Tiles at a level when the plan has them and the level is larger than one crop."""
    if budget.tile is None:
        return None
    halo = tiling.halo_of(config.content_layers + config.style_layers)
    side = tiling.crop_side(budget.tile, halo)
    return (budget.tile, halo) if level.size[0] * level.size[1] > side * side else None


def _given_start(start: Tensor | None, colour: color.ColourMode,
                 device: torch.device) -> Tensor | None:
    """A caller's start image (:attr:`Job.start_image`) on the device, as the network sees it."""
    if start is None:
        return None
    return colour.start(start.detach().float().clamp(0.0, 1.0)).to(device)


def _start_image(previous: Tensor | None, inputs: Inputs, level: Level, config: StyleConfig,
                 colour: color.ColourMode, device: torch.device) -> Tensor:
    """The first level's initial image, or the previous level's result upsampled."""
    if previous is not None:
        return upsample(previous, level.size)
    content = to_tensor(resize(inputs.content.image, level.size))
    if config.palette == "painting" and config.preserve_color == "none":
        content = color.match_statistics(content, *_palette(inputs, config))
    n, c, h, w = content.shape
    noise = torch.rand((n, 1 if config.noise == "grey" else c, h, w),
                       generator=torch.Generator().manual_seed(config.seed)).expand(n, c, h, w).contiguous()
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
    return colour.start(image).to(device)


def _palette(inputs: Inputs, config: StyleConfig) -> tuple[Tensor, Tensor]:
    """The colour mean and covariance of the styles, weighted as the style is blended."""
    groups = list(inputs.groups) or list(range(len(inputs.styles)))
    blend = config.style_blend or (1.0,) * (max(groups) + 1)
    weights = [blend[g] / groups.count(g) for g in groups]
    images = [to_tensor(resize(s.image, scaled(s.image.size, min(256, max(s.image.size)))))
              for s in inputs.styles]
    return color.mixed_statistics(images, weights)


NO_PROGRESS = 0.5 / 255
"""A run whose picture changed less than this on average (a 32 x 32 thumbnail, RGB in
[0, 1]) made no progress: the start image is what it hands back (a weight far outside its
useful range does this, see :data:`estilo.config.USEFUL`)."""


def _thumbnail(image: Tensor) -> Tensor:
    """A 32 x 32 average of an image (1 x 3 x H x W), to compare pictures of any size."""
    return torch.nn.functional.adaptive_avg_pool2d(image.detach().float(), 32).cpu()


def _check_progress(start: Tensor, end: Tensor, config: StyleConfig, iterations: int) -> None:
    """Warn when a run handed back its start image (:data:`NO_PROGRESS`), naming the likely
    cause; a run without a style term may well leave the picture as it was."""
    change = float((end - start).abs().mean())
    if change >= NO_PROGRESS or config.strength == 0 or config.style_weight == 0:
        return
    log.warning("the picture hardly changed in %d iteration%s (by %.2f of 255 levels on "
                "average): %s", iterations, "" if iterations == 1 else "s", change * 255,
                outside_useful_range(config, flag)
                or "the optimiser made no progress; try the default --lr and loss weights")


def _loss(image: Tensor, *, features_of: tiling.Features, objective: Objective,
          extra: ExtraLoss | None, tiles: Tiles) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of an image (1 x 3 x H x W) and its weighted terms: the objective's (tile by
    tile when ``tiles`` says so) and :attr:`Job.extra_loss`'s."""
    if tiles is None:
        terms = objective(features_of(image), image)
        loss: Tensor = sum(terms.values())  # type: ignore[assignment]
    else:
        loss, terms = tiling.loss(features_of, objective, image, tile=tiles[0], halo=tiles[1])
    if extra is not None:
        more = extra(image)
        loss, terms = loss + sum(more.values()), {**terms, **more}
    return loss, terms


def _features(network: VGG19Features, x: Tensor, dtype: torch.dtype, *, grey: bool = False,
              checkpointing: bool = False) -> dict[str, Tensor]:
    """The network's activations of ``x`` (of its luminance when ``grey``), computed in
    ``dtype``, returned as float32 (so the statistics keep full precision) in the network's
    memory layout (the Gram matrix of channels-last activations needs no copy)."""
    if grey:
        x = color.grey(x)
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
        features = network(x, checkpointing=checkpointing)
    return {name: f.float() for name, f in features.items()}
