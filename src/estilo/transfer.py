"""Stylizer: the one loop that runs style transfer, as a generator of :class:`Step` records.

The CLI's progress bar, notebooks and the web UI all consume :meth:`Stylizer.steps`;
breaking out of it (or closing it) stops the run after the current step.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from . import color, mask, memory
from .config import STRENGTH_UNIT, StyleConfig
from .devices import compute_dtype, resolve_device
from .io import metadata
from .io.image import resize, to_pil, to_tensor
from .io.inputs import ImageInput, Inputs, Source, StyleInput, prepare
from .losses import Objective
from .optim import NonFiniteError, PixelDescent
from .pyramid import Level, plan, style_side, upsample
from .vgg import VGG19Features, layer_weights
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
        checkpointing = memory.plan(inputs, config, device, dtype)  # refuses what cannot fit
        extractor = self.stylizer.extractor(self.weights(), config, device)
        getattr(extractor, "network", extractor).checkpointing = checkpointing
        schedule = plan(inputs.size, config)
        clock = _Clock(total=sum(level.iterations for level in schedule), levels=len(schedule),
                       dtype=dtype)
        image = _given_start(self.start_image, config, device)   # None: from config.init
        for index, level in enumerate(schedule):                  # 2. coarse to fine
            objective = _with_extra(_objective(extractor, inputs, level, config, device),
                                    self.extra_loss)                  # 3. targets
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
        mode = color.ColourMode(self.config.preserve_color)
        if not mode.luminance:
            return image
        w, h = image.shape[-1], image.shape[-2]
        return mode.finish(image, to_tensor(resize(self.inputs.content.image, (w, h))))

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
    content = color.ColourMode(config.preserve_color).content(content_rgb)
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
    objective = Objective.from_features(
        content_features, style_features,
        content_weights=layer_weights(config, "content"), style_weights=style_weights,
        style_blend=config.style_blend, tv_weight=config.tv_weight,
        feature_norm=config.feature_norm, gram_norm=config.gram_norm,
        style_loss=config.style_loss, groups=inputs.groups or None, masks=masks)
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
    return color.ColourMode(config.preserve_color).start(image).to(device)


def _optimise(image: Tensor, extractor: VGG19Features, objective: Terms, config: StyleConfig,
              clock: _Clock, index: int, level: Level) -> Generator[Step, None, Tensor]:
    """Run one level's iterations on ``image``; yield a Step after each; return the image."""
    # A finer level refines the upsampled picture: it starts at the rate the level below
    # ended with (the adaptive schedule has lowered it), not at the initial, coarse rate.
    descent = PixelDescent(image, config.optimizer,
                           clock.lr if clock.lr is not None else config.learning_rate,
                           schedule=config.lr_schedule, patience=config.lr_patience,
                           factor=config.lr_factor, min_lr=config.lr_min)
    done = 0
    while done < level.iterations:
        terms: dict[str, float] = {}
        loss = descent.step(_loss_function(extractor, objective, clock.dtype, terms))
        if loss is None:  # diverged and undone (PixelDescent says so)
            continue
        done += 1
        clock.done += 1
        yield Step(clock.done, clock.total, index, clock.levels, level.size, loss, terms,
                   descent.lr, clock.elapsed(), descent.image)
    clock.lr = descent.lr
    return descent.result()


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
