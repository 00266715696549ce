"""How a user writes each :class:`~estilo.config.StyleConfig` option: its flag, its help, its
allowed values, and its value as text.

One entry per field, beside the dataclass and in its order; the command line (every
``--option``), the web page (labels' help, allowed values, the values a form sends), grids
(``--param NAME=V1,V2`` and TOML files) and JSON all go through :func:`parse` and
:func:`value`, so an option is written and understood the same way everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .config import FIELDS, INITS, ConfigError, coerce, kinds

HELP = {
    "size": "output long side in px, or WxH (default %(default)s)",
    "style_size": "style image long side in px at the output scale (default: as --size)",
    "style_scale": "style size relative to the output's: 2 = larger strokes, 0.5 = finer "
                   "(default %(default)s)",
    "upscale": "allow an output larger than the content image",
    "background": "colour that transparent parts of the inputs are put on: a name or #rrggbb "
                  "(default %(default)s)",
    "content_layers": "content layers: names (conv4_2, relu4_2) or conv indices 1-16 "
                      "(10 = conv4_2), optionally name:weight (default %(default)s)",
    "style_layers": "style layers, same syntax (default %(default)s)",
    "content_layer_weights": "per-layer content weights, comma-separated",
    "style_layer_weights": "per-layer style weights, comma-separated",
    "content_weight": "content loss weight Wc (default %(default)s)",
    "strength": "how strongly the style paints: 1 = estilo's balance, 0.1 = half a painting, "
                "0.03 = a hint; means the same at every size, style loss and layer set "
                "(default %(default)s)",
    "style_weight": "raw style loss weight Ws, as in the report's table (e.g. 1e5); replaces "
                    "--strength (default: use --strength)",
    "tv_weight": "total variation weight (default %(default)s)",
    "chroma_tv_weight": "total variation of the colour only: smooths colour grain, keeps the "
                        "strokes' light and dark (default %(default)s)",
    "feature_norm": "per-layer activation normalisation (default %(default)s; see README)",
    "gram_norm": "Gram matrix divisor: chw = C*H*W, hw = H*W (default %(default)s)",
    "style_loss": "style statistics: gram (Gatys) or meancov (mean and covariance, "
                  "Wasserstein-2) (default %(default)s)",
    "layer_weighting": "style layer weights: equal, or channels = 1/C^2 as in Gatys' code "
                       "(default %(default)s)",
    "style_blend": "weight of each style, comma-separated, e.g. 3,7 (normalised to sum 1; "
                   "a folder counts as one style; default equal)",
    "preserve_color": "keep the content's colours: luminance = transfer luminance only, "
                      "match = recolour the style to the content first (default %(default)s)",
    "mask": "image with one flat colour per style, dark to light in the styles' order: "
            "each style paints only its region (see README)",
    "keep_alpha": "give the output the content's transparency (PNG, WEBP, TIFF)",
    "weights": "VGG19 weights: caffe, torchvision, random or a state dict path "
               "(default %(default)s)",
    "pooling": "pooling layers (default %(default)s)",
    "init": f"initial image: {', '.join(INITS)} or an image path (default %(default)s)",
    "noise_ratio": "share of noise for --init content+noise (default %(default)s)",
    "noise": "the noise of --init content+noise: grey (the same in R, G and B) or colour "
             "(default %(default)s)",
    "palette": "the colours the run starts from: painting = the photo recoloured to the "
               "painting's colour mean and covariance, photo = its own (default %(default)s)",
    "seed": "random seed (default %(default)s)",
    "optimizer": "optimiser (default %(default)s)",
    "lr": "learning rate for pixels in [0,1] (a rate for 0-255 pixels / 255; "
          "default: per optimiser)",
    "lr_schedule": "learning-rate schedule of adam and sgd; adaptive = lower the rate by "
                   "--lr-factor after --lr-patience steps that got worse; auto = adaptive, "
                   "and none for lbfgs, which sets its own steps (default %(default)s)",
    "lr_patience": "adaptive: worse steps before lowering the rate (default %(default)s)",
    "lr_factor": "adaptive: rate multiplier (default %(default)s)",
    "lr_min": "adaptive: floor of the rate (default %(default).5g)",
    "iterations": "iterations at the output size (default %(default)s); each coarser level "
                  "of the multi-scale schedule adds --scale-iterations (the plan is printed "
                  "at the start)",
    "scales": "multi-scale levels; 0 = automatic, 1 = off (default %(default)s)",
    "start_size": "long side of the coarsest level (default %(default)s)",
    "scale_iterations": "iterations at each coarser level (default %(default)s)",
    "device": "auto, cpu, cuda, cuda:N or mps (default %(default)s)",
    "precision": "network precision; auto = bfloat16 where the CPU/GPU computes it natively, "
                 "else float32 (default %(default)s)",
    "checkpointing": "recompute VGG segments during backward to save memory; auto = only when "
                     "the size needs it (default %(default)s)",
    "max_memory": "cap on the run's memory, e.g. 8GB, 512MB or 8GiB: the plan (tiles, L-BFGS "
                  "history, checkpointing) is chosen to stay under it (default: the free memory)",
    "tile": "work in tiles of this many px (a multiple of 16, at least 64); exact, slower, "
            "in bounded memory (default: tiles only when the image does not fit whole)",
}
"""Each option's help, as ``--help`` prints it (argparse fills in ``%(default)s``)."""

NUMBER_HINTS = {"style_weight": "the weight of each style is --style-blend, e.g. --style-blend 3,7",
                "content_weight": "per-layer weights go in --content-layers, e.g. conv4_2:2"}
"""What to say when a one-number option is given a list (the options that look alike)."""

LIST_OPTIONS = ("content_layers", "style_layers", "content_layer_weights", "style_layer_weights")
"""Options whose own syntax uses commas (a grid's ``--param`` separates their values by ``;``)."""

_NUMBER_LISTS = ("content_layer_weights", "style_layer_weights", "style_blend")
_NONE_WORDS = ("none", "default")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def flag(name: str) -> str:
    """The command-line flag of an option: ``style_blend`` -> ``--style-blend``."""
    return "--" + name.replace("_", "-")


def help_text(name: str) -> str:
    """An option's help without its default (for a form that shows the value itself)."""
    return re.sub(r"\s*\(default.*\)$", "", HELP[name]).replace("--", "")


def check_names(names: Iterable[str]) -> None:
    """Raise :class:`ConfigError` (listing the valid names) for a name that is no option."""
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; valid names: {', '.join(FIELDS)}")


def parse(name: str, text: str) -> Any:
    """The value of option ``name`` written as text, as on the command line: ``1e5``,
    ``640x480``, ``3,7``, ``conv1_1,conv2_1``, ``true``; ``none`` for an option whose default
    is None. Choices and ranges are checked by :class:`StyleConfig`.

    Raises:
        ValueError: the text is not of the option's kind; the message says what is expected
            (without the option's name: the caller names it as its user wrote it).
    """
    text = text.strip()
    check_names([name])
    allowed = kinds(name)
    if type(None) in allowed and text.lower() in _NONE_WORDS:
        return None
    return _parser(name, allowed)(text)


def value(name: str, raw: Any) -> Any:
    """The value of option ``name`` from text (see :func:`parse`) or from JSON, TOML or a
    form (see :func:`estilo.config.coerce`).

    Raises:
        ConfigError: an unknown option, or a value of the wrong kind, naming the option.
    """
    check_names([name])
    if not isinstance(raw, str):
        return coerce(name, raw)
    try:
        return parse(name, raw)
    except ValueError as e:
        raise ConfigError(f"bad value {raw!r} for {name}: {e}") from None


def values(table: dict[str, Any]) -> dict[str, Any]:
    """:func:`value` of every entry of ``table`` (a TOML table, a grid row, keyword options)."""
    return {name: value(name, raw) for name, raw in table.items()}


def text(name: str, value: Any) -> str:
    """A value as the command line takes it: ``1e5``, ``conv1_1,conv2_1``, ``40x32``, ``avg``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, (tuple, list)):
        if name == "size" and len(value) == 2:
            return f"{value[0]}x{value[1]}"
        return ",".join(text(name, v) for v in value)
    return str(value)


def layer_list(names: Sequence[str], weights: Sequence[float] | None) -> str:
    """Layers as the command line takes them, weights inline where not 1:
    ``relu1_1:4,relu2_1:2,relu3_1``."""
    weights = weights or (1.0,) * len(names)
    return ",".join(n if w == 1 else f"{n}:{number(w)}" for n, w in zip(names, weights))


def number(value: float) -> str:
    """Short text for a number: ``500``, ``0.7``, ``1e5``, ``1e-4`` (exact, round-trips)."""
    if isinstance(value, int) and not isinstance(value, float):
        value = float(value)
    plain = np.format_float_positional(value, trim="-")
    short = np.format_float_scientific(value, trim="-", exp_digits=1).replace("+", "")
    return short if len(short) <= len(plain) - 2 else plain


# --- the text grammar, one parser per kind of option ------------------------------------------

def _parser(name: str, kinds: tuple[Any, ...]) -> Callable[[str], Any]:
    if name == "size":
        return parse_size
    if name in _NUMBER_LISTS:
        return _floats
    if bool in kinds:
        return _boolean
    if float in kinds:
        return lambda text: _number(name, text)
    if int in kinds:
        return _integer
    return str


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, e.g. 3,7, not {text!r}") from None


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        hint = f" ({NUMBER_HINTS[name]})" if name in NUMBER_HINTS and "," in text else ""
        raise ValueError(f"expected one number, e.g. 1e5, not {text!r}{hint}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, not {text!r}") from None


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"expected true or false, not {text!r}")


def parse_size(text: str) -> int | tuple[int, int]:
    """Parse ``"512"`` (long side) or ``"640x480"`` (width x height).

    Raises:
        ValueError: If ``text`` is neither form or a number is zero.
    """
    match = re.fullmatch(r"\s*([0-9]+)\s*(?:[x×X]\s*([0-9]+)\s*)?", text)
    values = [int(g) for g in match.groups() if g is not None] if match else []
    if not values or min(values) <= 0:
        raise ValueError(
            f"invalid size {text!r}: give the long side in px (e.g. '512') or WIDTHxHEIGHT "
            "(e.g. '640x480')"
        )
    return values[0] if len(values) == 1 else (values[0], values[1])
