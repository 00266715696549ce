"""StyleConfig: every tunable of a run, its default and its unit, in one place.

The CLI, the web UI and the Python API all take their defaults from ``StyleConfig()``; how a
user writes each option (help, allowed values, text) is in :mod:`estilo.options`. Layer
lists may be given as names or in the conv-index notation (1-16, the numbering of the 2018
report estilo started from); they are normalised to names on construction, so both
spellings give equal configs.

This module imports nothing of estilo's: every other module may use it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_type_hints

from PIL import ImageColor

Pooling = Literal["max", "avg"]
Optimizer = Literal["adam", "sgd", "lbfgs"]
Schedule = Literal["auto", "constant", "adaptive", "plateau"]
FeatureNorm = Literal["rms", "none"]
GramNorm = Literal["chw", "hw"]
PreserveColor = Literal["none", "luminance", "match"]
Palette = Literal["painting", "photo"]
Noise = Literal["grey", "colour"]
StyleLoss = Literal["gram", "meancov"]
LayerWeighting = Literal["equal", "channels"]

Precision = Literal["auto", "float32", "bfloat16"]
Checkpointing = Literal["auto", "on", "off"]
INITS = ("content", "content+noise", "noise", "style")
"""Named initialisations; any other value of ``init`` is the path of an image."""
PIXEL_SCALE = 255.0  # the 2018 report's learning rates were for 0-255 pixels
STRENGTH_UNIT = 10.0
"""The style term at ``strength=1``: ten times the mean relative error of the style layers'
statistics (against one content term), the balance picked on benchmarks/quality.py."""

USEFUL: dict[str, tuple[float, float, float]] = {
    "strength": (0.01, 1e3, 1e11),
    "style_weight": (1e2, 1e7, 1e15),
}
"""Per style weight option: (a hint of the painting, the painting alone, the most estilo
takes). Below the first the picture is the photo; above the second the photo's forms no
longer count and a larger weight paints the same picture; from the third on the style term
swamps float32 (non-finite steps, then no step at all), so larger values are refused.
Estimates from the quality panel (benchmarks/README.md: strength 0.3-3 move a picture along
the frontier) and the issue's run at style_weight 1e30 (no step taken);
benchmarks/style_range.py is the measurement that checks them on two pairs (its runs so far:
benchmarks/results/style-range.jsonl)."""

MIN_TILE = 64
"""The smallest tile side (px): a smaller one spends nearly all its time on its halo."""
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000 ** 2, "mb": 1000 ** 2,
          "g": 1000 ** 3, "gb": 1000 ** 3, "t": 1000 ** 4, "tb": 1000 ** 4, "kib": 1024,
          "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}


def parse_memory(text: str) -> int:
    """Bytes of a memory size: ``8GB`` (10^9), ``8GiB`` (2^30), ``512MB``, ``1.5G``.

    Raises:
        ConfigError: not a positive size with a unit.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS or float(match.group(1)) <= 0 or not unit:
        raise ConfigError(f"max_memory must be a size such as 8GB, 512MB or 8GiB, not {text!r}")
    return int(float(match.group(1)) * _UNITS[unit])


class UserError(Exception):
    """A problem with what the user asked for (an option, an input, an output path, weights, a
    device), not a bug: its message is one line that names the problem and what to do. The
    command line and the web page show it as it is."""


class ConfigError(UserError, ValueError):
    """An invalid option value; the message names the option and the allowed values."""


@dataclass(frozen=True)
class StyleConfig:
    """Options of one style transfer run. Units in the comments."""

    # Sizes (pixels). `size` is the output's long side, or an exact (width, height).
    size: int | tuple[int, int] = 512
    style_size: int | None = None     # style image's long side at the final scale; None: as size
    style_scale: float = 1.0          # multiplies the style's working size (2: bigger strokes)
    upscale: bool = False             # allow a working size larger than the content image
    background: str = "white"         # colour transparent input pixels are composited onto
    # Layers: names (conv4_2, relu4_2, pool4) or the seed's conv indices (1-16), each with an
    # optional weight (name:weight). The defaults were picked on benchmarks/quality.py: the
    # Gram matrices of the ReLU outputs (the non-negative features the network passes on),
    # the two finest layers weighted up so that the painting's brush texture is painted too,
    # the deepest down: at full weight relu5_1 paints a portrait's faces and eyes whole into
    # the photo (issue 25; benchmarks/README.md, "The flaws").
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1:4", "relu2_1:2", "relu3_1", "relu4_1",
                                     "relu5_1:0.25")
    content_layer_weights: tuple[float, ...] | None = None  # per layer; None: all 1
    style_layer_weights: tuple[float, ...] | None = None
    # Loss weights (see losses.py for the normalisation that makes them source-independent).
    content_weight: float = 1.0
    # The style's weight: `strength` (the default way), or a raw `style_weight` (Ws, as in the
    # report's table), which then replaces it. With strength, each style layer's term is the
    # relative error of its statistics, so one strength means the same at every size, for
    # both style losses, any layers and any pair (see losses.Objective.weigh_style_by_strength).
    strength: float = 1.0             # in units of STRENGTH_UNIT
    style_weight: float | None = None
    tv_weight: float = 0.0
    chroma_tv_weight: float = 30.0    # total variation of the colour only (see losses.chroma):
    #                                   no pixel-scale colour grain, the strokes' light kept
    feature_norm: FeatureNorm = "rms"
    gram_norm: GramNorm = "chw"
    style_loss: StyleLoss = "gram"    # gram | meancov (Wasserstein-2 of feature mean/covariance)
    layer_weighting: LayerWeighting = "equal"  # channels: style layers weighted by 1/C^2
    # Artistic control.
    style_blend: tuple[float, ...] | None = None  # weight of each style (or mask region); sum 1
    preserve_color: PreserveColor = "none"  # luminance: transfer luminance only; match: recolour
    mask: str | None = None           # image with one colour per style (see mask.py)
    keep_alpha: bool = False          # re-apply the content's transparency to the output
    # Network.
    weights: str = "caffe"            # caffe | torchvision | random | path of a state dict
    pooling: Pooling = "max"          # VGG19 as trained (the report's tables: avg, see README)
    # Initial image: content | content+noise | noise | style | path of an image.
    init: str = "content+noise"       # the noise breaks a flat area's symmetry (else a grid)
    noise_ratio: float = 0.2          # share of noise in content+noise (the report: 0.6-0.9)
    noise: Noise = "grey"             # the same noise in R, G and B (colour: a colour grain)
    palette: Palette = "painting"     # the photo starts recoloured to the painting's colours
    seed: int = 0
    # Optimisation. Learning rates are for pixels in [0, 1] (the seed's 0-255 rates / 255).
    # Defaults measured with benchmarks/quality.py and bench.py: L-BFGS, 40 iterations at
    # 256 px and 30 at 512 px; the seed's Adam + adaptive rate (optimizer="adam") needs more.
    optimizer: Optimizer = "lbfgs"
    lr: float | None = None           # None: a default per optimizer and schedule
    lr_schedule: Schedule = "auto"    # auto: adaptive for adam and sgd, none for lbfgs
    lr_patience: int = 5              # worse steps before the rate is lowered
    lr_factor: float = 0.7            # multiplier applied then
    lr_min: float = 0.1 / PIXEL_SCALE
    iterations: int = 30              # at the output size
    # Multi-scale: coarse levels from start_size up, each doubling, before the output size.
    scales: int = 0                   # number of levels; 0: automatic, 1: off
    start_size: int = 256             # long side of the coarsest level (pixels)
    scale_iterations: int = 40        # iterations at each coarser level
    device: str = "auto"              # auto | cpu | cuda | cuda:N | mps
    # Speed and memory (see devices.compute_dtype and memory.py).
    precision: Precision = "auto"     # network dtype; auto: bfloat16 where the hardware has it
    checkpointing: Checkpointing = "auto"  # recompute VGG segments in backward; auto: if needed
    max_memory: str | None = None     # cap on the run's memory, e.g. 8GB; None: what is free
    tile: int | None = None           # tile side in px (multiple of 16); None: tiles if needed

    def __post_init__(self) -> None:
        for kind in ("content", "style"):
            names, weights = parse_layers(getattr(self, f"{kind}_layers"))
            explicit = getattr(self, f"{kind}_layer_weights")
            object.__setattr__(self, f"{kind}_layers", names)
            if explicit is None and weights is not None:
                object.__setattr__(self, f"{kind}_layer_weights", weights)
            elif explicit is not None:
                object.__setattr__(self, f"{kind}_layer_weights", tuple(float(w) for w in explicit))
        if isinstance(self.size, list):
            object.__setattr__(self, "size", tuple(self.size))
        if self.style_blend is not None:
            object.__setattr__(self, "style_blend", _normalised_blend(self.style_blend))
        validate(self)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the default for the optimizer and schedule."""
        return self.lr if self.lr is not None else default_lr(self.optimizer, self.lr_schedule)

    def replace(self, **changes: Any) -> StyleConfig:
        """A copy with some options changed (validated). New layers come with their own
        weights: changing ``style_layers`` (or ``content_layers``) without its
        ``*_layer_weights`` drops the old per-layer weights (weights inline, as in
        ``"relu1_1:2,relu2_1"``, still apply)."""
        for kind in ("content", "style"):
            if f"{kind}_layers" in changes:
                changes.setdefault(f"{kind}_layer_weights", None)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready options."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StyleConfig:
        """Options from :meth:`to_dict` (or any JSON or TOML values, see :func:`coerce`);
        unknown keys are ignored."""
        return cls(**{k: coerce(k, v) for k, v in data.items() if k in FIELDS})


def _positive(config: StyleConfig, name: str, *, zero_ok: bool = False) -> None:
    value = getattr(config, name)
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or (value == 0 and not zero_ok):
        raise ConfigError(f"{name} must be a {'non-negative' if zero_ok else 'positive'} "
                          f"number, not {value!r}")


def _normalised_blend(blend: Any) -> tuple[float, ...]:
    """Style blend weights scaled to sum 1; ConfigError unless finite, >= 0, sum > 0."""
    try:
        values = tuple(float(w) for w in blend)
    except (TypeError, ValueError):
        raise ConfigError(f"style_blend must be numbers, e.g. 3,7, not {blend!r}") from None
    if not values or any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ConfigError(f"style_blend must be non-negative numbers with a positive sum, "
                          f"not {blend!r}")
    return tuple(w / sum(values) for w in values)


def validate(config: StyleConfig) -> None:
    """Check every option; raise :class:`ConfigError` naming the first bad one."""
    for name in FIELDS:
        allowed = choices(name)
        if allowed is not None and getattr(config, name) not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, "
                              f"not {getattr(config, name)!r}")
    _positive(config, "style_scale")
    if config.mask is not None and not config.mask:
        raise ConfigError("mask must be the path of an image, not an empty string")
    if config.max_memory is not None:
        parse_memory(config.max_memory)
    if config.tile is not None and (not isinstance(config.tile, int) or isinstance(config.tile, bool)
                                    or config.tile < MIN_TILE or config.tile % 16):
        raise ConfigError(f"tile must be a multiple of 16 of at least {MIN_TILE} px, e.g. 512, "
                          f"not {config.tile!r}")
    if config.style_weight is not None:
        _positive(config, "style_weight", zero_ok=True)
    for name, (low, high, most) in USEFUL.items():
        value = getattr(config, name)
        if isinstance(value, (int, float)) and value >= most:
            raise ConfigError(f"{name} {value:g} is beyond what estilo can optimise (the style "
                              f"term overflows float32 from about {most:g}): its useful range "
                              f"is about {low:g} (a hint of the painting) to {high:g} (the "
                              f"painting alone; more paints the same picture)")
    for name in ("content_weight", "strength", "tv_weight", "chroma_tv_weight", "scales",
                 "scale_iterations"):
        _positive(config, name, zero_ok=True)
    if not isinstance(config.iterations, int) or isinstance(config.iterations, bool) \
            or config.iterations < 1:
        raise ConfigError(f"iterations must be a whole number of at least 1 (the iterations "
                          f"at the output size), not {config.iterations!r}")
    for name in ("lr_factor", "lr_min", "start_size", "lr_patience"):
        _positive(config, name)
    if config.lr is not None:
        _positive(config, "lr")
    if not 0.0 <= config.noise_ratio <= 1.0:
        raise ConfigError(f"noise_ratio must be between 0 and 1, not {config.noise_ratio!r}")
    if not 0.0 < config.lr_factor < 1.0:
        raise ConfigError(f"lr_factor must be between 0 and 1 (exclusive), not {config.lr_factor!r}")
    _check_size(config.size, "size")
    if config.style_size is not None:
        _check_size(config.style_size, "style_size")
    for kind in ("content", "style"):
        weights = getattr(config, f"{kind}_layer_weights")
        if weights is not None and len(weights) != len(getattr(config, f"{kind}_layers")):
            raise ConfigError(f"{kind}_layer_weights has {len(weights)} values for "
                              f"{len(getattr(config, f'{kind}_layers'))} {kind} layers")
    if not config.init:
        raise ConfigError(f"init must be one of {', '.join(INITS)} or an image path")
    try:
        parse_colour(config.background)
    except ValueError as e:
        raise ConfigError(f"background: {e}") from None


def outside_useful_range(config: StyleConfig,
                         spelling: Callable[[str], str] = str) -> str | None:
    """Why ``config``'s style weight may leave the picture as it was (see :data:`USEFUL`), or
    None when it is in its useful range; ``spelling`` writes the option's name."""
    name = "strength" if config.style_weight is None else "style_weight"
    value = getattr(config, name)
    low, high, _ = USEFUL[name]
    if low <= value <= high:
        return None
    where = "below" if value < low else "above"
    return (f"{spelling(name)} {value:g} is far {where} its useful range, about {low:g} (a hint of the "
            f"painting) to {high:g} (the painting alone)")


def _check_size(size: Any, name: str) -> None:
    ok = isinstance(size, int) and not isinstance(size, bool) and size > 0 or (
        isinstance(size, tuple) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size))
    if not ok:
        raise ConfigError(f"{name} must be a positive long side in pixels or (width, height), "
                          f"not {size!r}")


FIELDS = tuple(f.name for f in dataclasses.fields(StyleConfig))
"""The option names, in the dataclass's order."""


@functools.cache
def choices(name: str) -> tuple[str, ...] | None:
    """The allowed values of a choice option (its ``Literal`` type), or None."""
    values = get_args(get_type_hints(StyleConfig)[name])
    return values if values and all(isinstance(v, str) for v in values) else None


@functools.cache
def kinds(name: str) -> tuple[Any, ...]:
    """The types an option's value may have (``(float, NoneType)``); a choice's ``Literal``
    type as one."""
    hint = get_type_hints(StyleConfig)[name]
    return get_args(hint) if choices(name) is None and get_args(hint) else (hint,)


def default_lr(optimizer: str, schedule: str) -> float:
    """The learning rate used when none is given (in [0, 1] pixel units)."""
    if optimizer == "lbfgs":
        return 1.0
    if optimizer == "sgd":
        return 100.0  # per optim.SGD_ELEMENTS: the same at every size (see PixelDescent)
    return 100.0 / PIXEL_SCALE if schedule in ("adaptive", "auto") else 0.02


def coerce(name: str, value: Any) -> Any:
    """A value of option ``name`` from JSON, TOML or a form: lists become tuples, whole
    numbers become floats for float options and integral floats (``64.0``) ints for integer
    ones, and conv indices in layer lists (``[2, 4]``) strings. Text is left to
    :func:`estilo.options.parse`; anything else is returned as it is, for validation.

    Raises:
        ConfigError: a fractional number for an integer option.
    """
    if isinstance(value, list):
        value = tuple(value)
    if name.endswith("_layers") and isinstance(value, (int, tuple)):
        return tuple(str(v) for v in (value if isinstance(value, tuple) else (value,)))
    allowed = kinds(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if float in allowed:
        return float(value)
    if int in allowed and isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"{name} must be a whole number, not {value!r}")
        return int(value)
    return value


def parse_colour(text: str) -> tuple[int, int, int]:
    """Parse a colour name (``white``), ``#rgb`` or ``#rrggbb`` (or any CSS form Pillow knows).

    Raises:
        ValueError: If ``text`` is not a colour, or has transparency.
    """
    try:
        rgb = ImageColor.getrgb(text) if isinstance(text, str) else None
    except ValueError:
        rgb = None
    if rgb is None or (len(rgb) == 4 and rgb[3] != 255):
        raise ValueError(
            f"not an opaque colour: {text!r}; give a name (white, black) or #rrggbb"
        )
    return (rgb[0], rgb[1], rgb[2])


# --- VGG19's layer names: the values of the layer options ----------------------------------

BLOCK_DEPTHS = (2, 2, 4, 4, 4)  # conv layers in each of VGG19's five blocks


def _layer_table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    convs: list[str] = []
    layers: list[str] = []
    for block, depth in enumerate(BLOCK_DEPTHS, start=1):
        for i in range(1, depth + 1):
            convs.append(f"conv{block}_{i}")
            layers += [f"conv{block}_{i}", f"relu{block}_{i}"]
        layers.append(f"pool{block}")
    return tuple(convs), tuple(layers)


CONV_NAMES, LAYER_NAMES = _layer_table()
"""``CONV_NAMES[k - 1]`` is conv layer ``k`` of the conv-index notation (1 = conv1_1,
10 = conv4_2, 16 = conv5_4); ``LAYER_NAMES`` lists every layer in network order."""


class LayerError(UserError, ValueError):
    """An unknown layer name or index."""


def resolve_layer(spec: str | int) -> str:
    """Canonical layer name for a name (``relu4_2``) or a 1-based conv index (``10``).

    Raises:
        LayerError: if the layer does not exist; the message lists the valid names.
    """
    text = str(spec).strip().lower()
    if text.isdigit():
        k = int(text)
        if 1 <= k <= len(CONV_NAMES):
            return CONV_NAMES[k - 1]
        raise LayerError(f"conv layer index {k} is out of range: use 1-{len(CONV_NAMES)} "
                         f"(1 = conv1_1 ... 16 = conv5_4) or a name")
    if text in LAYER_NAMES:
        return text
    raise LayerError(f"unknown VGG19 layer {spec!r}; valid layers are 1-16 (conv index) or "
                     + ", ".join(LAYER_NAMES))


def parse_layers(text: str | Sequence[str]) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """Parse ``"1,3,5"``, ``"conv4_2"`` or ``"relu1_1:0.5,relu2_1:2"`` (optional weights).

    Returns:
        (names, weights): canonical names, and per-layer weights or None when no layer had
        one (a layer without a weight then counts 1).
    """
    items = [t for t in (text.split(",") if isinstance(text, str) else text)]
    names: list[str] = []
    weights: list[float] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, sep, weight = item.partition(":")
        names.append(resolve_layer(name))
        try:
            weights.append(float(weight) if sep else 1.0)
        except ValueError:
            raise LayerError(f"bad layer weight in {item!r}: write name:weight, "
                             "e.g. conv1_1:0.5") from None
    if not names:
        raise LayerError("no layers given")
    if len(set(names)) != len(names):
        raise LayerError(f"a layer is listed twice in {','.join(names)}")
    return tuple(names), (tuple(weights) if any(":" in i for i in items) else None)
