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
from .optim import NonFiniteError, PixelDescent
from .options import flag
from .pyramid import Level, plan, scaled, style_side, upsample
from .vgg import VGG19Features, channels_of, layer_weights, pool_factor
from .weights import LoadedWeights, load_weights

__all__ = ["ExtraLoss", "Job", "NonFiniteError", "Result", "Step", "Stylizer", "stylize"]

log = logging.getLogger(__name__)
ExtraLoss = Callable[[Tensor], dict[str, Tensor]]
"""More weighted loss terms of the image being optimised (1 x 3 x H x W, RGB in [0, 1], at the
level's size; a graph back to it), added to the objective's: ``{"temporal": ...}`` for video."""
Terms = Callable[[dict[str, Tensor], Tensor], dict[str, Tensor]]
"""The weighted loss terms of an image from its activations and itself (an :class:`Objective`)."""


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
        return color.ColourMode(config.preserve_color).network(  # type: ignore[return-value]
            self._extractors[key])


@dataclass
class Job:
    """One prepared run: checked inputs and options. Iterate :meth:`steps` or call :meth:`run`.

    Two optional hooks let a caller drive the run from outside (``estilo video`` does, to
    start each frame from the previous one and keep it close): ``start_image`` replaces
    ``config.init`` (it is resized to the first level's size, and seen as the colour mode
    sees every start image: luminance only in ``preserve_color="luminance"`` runs);
    ``extra_loss`` adds its terms to the objective's at every evaluation, on every level
    (they appear in :attr:`Step.terms` under their names).
    """

    stylizer: Stylizer
    inputs: Inputs
    config: StyleConfig
    start_image: Tensor | None = field(default=None, repr=False, kw_only=True)
    extra_loss: ExtraLoss | None = field(default=None, repr=False, kw_only=True)

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
        extractor = self.stylizer.extractor(weights, config, device)
        clock = _Clock(total=sum(level.iterations for level, _ in levels), levels=len(levels),
                       dtype=dtype)
        image = _given_start(self.start_image, config, device)   # None: from config.init
        start: Tensor | None = None
        for index, (level, budget) in enumerate(levels):          # 2. coarse to fine
            getattr(extractor, "network", extractor).checkpointing = budget.checkpointing
            tiles = _tiles(budget, level, config)
            objective = _objective(extractor, inputs, level, config, device, dtype, tiles)
            losses = _losses(extractor, objective, self.extra_loss, dtype, tiles)  # 3. targets
            image = _start_image(image, inputs, level, config, device)         # 4. start image
            start = _thumbnail(image) if start is None else start
            image = yield from _optimise(image, losses, _level_config(config, budget), clock,
                                         index, level, budget.history)
        if start is not None and image is not None:               # 5. did anything happen?
            _check_progress(start, _thumbnail(image), config, clock.done)

    def memory_plan(self) -> memory.Plan:
        """How the output's level fits its memory (tiles, optimiser, checkpointing): see
        :func:`estilo.memory.plan`."""
        return self.memory_plans()[-1][1]

    def memory_plans(self) -> list[tuple[Level, memory.Plan]]:
        """Each level of the schedule with its memory plan (coarse levels keep L-BFGS's full
        history when only the finest need tiles or a leaner optimiser)."""
        device = resolve_device(self.config.device)
        schedule = plan(self.inputs.size, self.config)
        budgets = memory.level_plans(self.inputs, self.config, device,
                                     compute_dtype(device, self.config.precision), schedule)
        return list(zip(schedule, budgets))

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
        mode = color.ColourMode(self.config.preserve_color)
        if not mode.luminance:
            return image
        w, h = image.shape[-1], image.shape[-2]
        return mode.finish(image, to_tensor(resize(self.inputs.content.image, (w, h))))

    def output(self, image: Tensor) -> Image.Image:
        """A finished image (from :meth:`finish`) as PIL: RGB, or RGBA with the content's
        alpha (``keep_alpha``). Every application saves this picture with
        :func:`~estilo.io.output.save_image`, which keeps its alpha."""
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
    optimizer: str | None = None        # and its optimiser
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


def _objective(extractor: VGG19Features, inputs: Inputs, level: Level, config: StyleConfig,
               device: torch.device, dtype: torch.dtype, tiles: Tiles = None) -> Objective:
    content_rgb = to_tensor(resize(inputs.content.image, level.size))
    content = color.ColourMode(config.preserve_color).content(content_rgb)
    styles = [_style_tensor(s, inputs, level, config, content_rgb) for s in inputs.styles]
    style_weights = layer_weights(config, "style")
    content_weights = layer_weights(config, "content")
    layers = tuple(dict.fromkeys([*content_weights, *style_weights]))
    if tiles is None:
        with torch.no_grad():
            content_features = extractor(content.to(device))
            style_features = [extractor(s.to(device)) for s in styles]
        shapes = {n: tuple(content_features[n].shape) for n in style_weights}
    else:
        tile, halo = tiles  # the targets as above: the network's own dtype, no autocast
        content_moments, content_maps = tiling.image_moments(
            extractor, content.to(device), layers, tile=tile, halo=halo, keep=content_weights)
        style_moments = [tiling.image_moments(extractor, s.to(device), layers, tile=tile,
                                              halo=halo)[0] for s in styles]
        shapes = {n: (1, channels_of(n), level.size[1] // pool_factor(n),
                      level.size[0] // pool_factor(n)) for n in style_weights}
    masks = None
    if inputs.mask is not None:
        regions = mask.region_maps(inputs.mask.image, level.size, inputs.style_count).to(device)
        masks = mask.layer_masks(regions, style_weights, shapes)
    options: dict[str, Any] = {
        "content_weights": content_weights, "style_weights": style_weights,
        "style_blend": config.style_blend, "tv_weight": config.tv_weight,
        "chroma_tv_weight": config.chroma_tv_weight,
        "feature_norm": config.feature_norm, "gram_norm": config.gram_norm,
        "style_loss": config.style_loss, "groups": inputs.groups or None, "masks": masks}
    if tiles is None:
        objective = Objective.from_features(content_features, style_features, **options)
    else:
        objective = Objective.from_moments(content_maps, content_moments, style_moments,
                                           **options)
    if config.style_weight is None:  # the style's weight by strength (relative errors)
        with torch.no_grad():
            objective.weigh_style_by_strength(config.strength * STRENGTH_UNIT)
    return objective


def _style_tensor(style: Source, inputs: Inputs, level: Level, config: StyleConfig,
                  content: Tensor) -> Tensor:
    """A style image at the level's scale, recoloured or reduced to luminance as configured."""
    size = style_side(style.image.size, level.size, inputs.size, config.style_size,
                      config.style_scale)
    return color.ColourMode(config.preserve_color).style(to_tensor(resize(style.image, size)),
                                                         content)


def _given_start(start: Tensor | None, config: StyleConfig, device: torch.device) -> Tensor | None:
    """A caller's start image (:attr:`Job.start_image`) on the device, as the network sees it."""
    if start is None:
        return None
    image = start.detach().float().clamp(0.0, 1.0)
    return color.ColourMode(config.preserve_color).start(image).to(device)


Losses = Callable[[dict[str, float]], Callable[[Tensor], Tensor]]
"""A level's loss: given a dict to record the first evaluation's weighted terms in, the
``loss_of(image)`` that :class:`~estilo.optim.PixelDescent` steps on."""


def _losses(extractor: VGG19Features, objective: Objective, extra: ExtraLoss | None,
            dtype: torch.dtype, tiles: Tiles) -> Losses:
    """The level's loss: the objective's terms, tile by tile when ``tiles`` says so, and the
    terms of ``extra`` (:attr:`Job.extra_loss`) of the whole image added to them."""
    def losses(terms: dict[str, float]) -> Callable[[Tensor], Tensor]:
        if tiles is None:
            return _loss_function(extractor, _with_extra(objective, extra), dtype, terms)
        tiled = tiling.loss_function(functools.partial(_features, extractor, dtype=dtype),
                                     objective, tile=tiles[0], halo=tiles[1], terms=terms)
        if extra is None:
            return tiled

        def loss_of(image: Tensor) -> Tensor:
            first = not terms
            loss = tiled(image)                       # records the objective's terms first
            parts = extra(image)
            if first:
                terms.update({k: float(v.detach()) for k, v in parts.items()})
            return loss + sum(parts.values())  # type: ignore[no-any-return]

        return loss_of

    return losses


def _with_extra(objective: Objective, extra: ExtraLoss | None) -> Terms:
    """The objective's terms, and ``extra``'s added to them (:attr:`Job.extra_loss`)."""
    if extra is None:
        return objective

    def terms(features: dict[str, Tensor], image: Tensor) -> dict[str, Tensor]:
        return {**objective(features, image), **extra(image)}

    return terms


def _start_image(previous: Tensor | None, inputs: Inputs, level: Level, config: StyleConfig,
                 device: torch.device) -> Tensor:
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
    return color.ColourMode(config.preserve_color).start(image).to(device)


def _palette(inputs: Inputs, config: StyleConfig) -> tuple[Tensor, Tensor]:
    """The colour mean and covariance of the styles, weighted as the style is blended."""
    groups = list(inputs.groups) or list(range(len(inputs.styles)))
    blend = config.style_blend or (1.0,) * (max(groups) + 1)
    weights = [blend[g] / groups.count(g) for g in groups]
    images = [to_tensor(resize(s.image, scaled(s.image.size, min(256, max(s.image.size)))))
              for s in inputs.styles]
    return color.mixed_statistics(images, weights)


def _optimise(image: Tensor, losses: Losses, config: StyleConfig, clock: _Clock, index: int,
              level: Level, history: int = 50) -> Generator[Step, None, Tensor]:
    """Run one level's iterations on ``image``; yield a Step after each; return the image."""
    # A finer level refines the upsampled picture: it starts at the rate the level below
    # ended with (the adaptive schedule has lowered it), not at the initial, coarse rate.
    if clock.optimizer != config.optimizer:  # the first level, or a memory plan's fallback
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
        terms: dict[str, float] = {}
        loss = descent.step(losses(terms))
        if loss is None:  # diverged and undone (PixelDescent says so)
            continue
        done += 1
        clock.done += 1
        if loss == descent.best_loss:
            best_terms = terms
        shown = descent.shown
        if done == level.iterations:
            final = descent.result()
            if descent.ends_above_best:  # the level hands on its best picture: report that one
                shown, loss, terms = final, descent.best_loss, best_terms or terms
        yield Step(clock.done, clock.total, index, clock.levels, level.size, loss, terms,
                   descent.lr, clock.elapsed(), shown)
    clock.lr = descent.lr
    return final


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


def _loss_function(extractor: VGG19Features, objective: Terms, dtype: torch.dtype,
                   terms: dict[str, float]) -> Callable[[Tensor], Tensor]:
    """The total loss of an image (1 x 3 x H x W); its first call records the weighted terms."""
    def loss_of(image: Tensor) -> Tensor:
        parts = objective(_features(extractor, image, dtype), image)
        if not terms:
            terms.update({k: float(v.detach()) for k, v in parts.items()})
        return sum(parts.values())  # type: ignore[return-value]

    return loss_of


def _features(extractor: VGG19Features, x: Tensor, dtype: torch.dtype) -> dict[str, Tensor]:
    """The extractor's activations of ``x``, computed in ``dtype``, returned as float32 (so
    Gram matrices and losses keep full precision) in the network's memory layout (the Gram
    matrix of channels-last activations needs no copy; see :func:`losses.gram_matrix`)."""
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
        features = extractor(x)
    return {name: f.float() for name, f in features.items()}
