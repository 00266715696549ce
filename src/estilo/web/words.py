"""The page's words for estilo's options: each control's label, help and choices, and the
library's messages with the page's controls in place of the command line's flags.

A control's help is its option's own help (:data:`estilo.options.HELP`) in the page's
words (the photo and the painting, not the content and the style image), except where the
command line's text would not help on a page (:data:`INFO`).
"""

from __future__ import annotations

import re
from typing import Any

from ..options import flag, help_text, text

LABELS = {"size": "Size (long side, px)", "strength": "Strength",
          "style_scale": "Stroke size", "preserve_color": "Keep the photo's colours",
          "keep_alpha": "Keep transparency", "iterations": "Iterations", "pooling": "Pooling",
          "init": "Start from", "optimizer": "Optimiser", "style_layers": "Style layers",
          "seed": "Seed"}
INFO = {
    "size": "the result's long side in pixels (at most the photo's own)",
    "keep_alpha": "a transparent photo gives a result with the same transparent parts",
    "init": "the picture the painting starts from: the photo with a little noise, the "
            "photo, noise, or the painting",
    "style_layers": "the network's layers whose textures make the style, finest first; "
                    "name:weight counts one more (relu1_1:4: more of the brush texture)",
    "optimizer": "how each iteration improves the picture: lbfgs (fastest), adam or sgd "
                 "(they need more iterations)",
    "pooling": "how the network shrinks the picture between its layers: max (as it was "
               "trained) or avg (softer)",
    "seed": "the number behind the starting noise: the same seed paints the same picture",
}
CHOICES: dict[str, dict[Any, str]] = {
    "preserve_color": {"none": "off"},
    "init": {"content+noise": "the photo with noise", "content": "the photo",
             "noise": "noise", "style": "the painting"},
    "keep_alpha": {True: "on", False: "off"},
}
"""Values as the page names them (others as the command line writes them)."""


def label(name: str) -> str:
    """The control's label."""
    return LABELS.get(name, name.replace("_", " ").capitalize())


def info(name: str) -> str:
    """The help under a control."""
    if name in INFO:
        return INFO[name]
    return (help_text(name).replace("the content's", "the photo's")
            .replace("the content", "the photo").replace("the output", "the result"))


def choice(name: str, value: Any) -> str:
    """A value as the page shows it: ``off`` for preserve_color's ``none``."""
    words = CHOICES.get(name, {})
    return words[value] if isinstance(value, (str, bool)) and value in words else text(name, value)


def message(text: str, names: tuple[str, ...]) -> str:
    """A library message with the flags of the page's options (``names``) as its controls:
    ``use a larger image or --size`` -> ``... or a larger "Size (long side, px)"``."""
    for name in names:
        text = text.replace(f"or {flag(name)}", f"or a larger “{label(name)}”")
        text = re.sub(rf"{re.escape(flag(name))}(?![\w-])", f"“{label(name)}”", text)
    return text
