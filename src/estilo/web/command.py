"""A studio result as ``estilo`` commands: the one that makes it again, and the one that takes
it to print size with ``estilo resume`` under ``--max-memory``; with the files they name
(the PNG, the photo as the studio used it, the paintings, the mask), to download into one
folder and run there.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, fields
from pathlib import Path

from ..config import INITS, StyleConfig
from ..io.output import read_parameters
from ..options import flag, layer_list, text

NOT_OPTIONS = ("mask", "content_layer_weights", "style_layer_weights")
"""Fields given otherwise: the mask as a file, the layers' weights inline."""


@dataclass(frozen=True)
class Commands:
    """The commands (one text, lines starting ``#`` say what each is) and the files."""

    text: str
    files: list[str]


def options(config: StyleConfig) -> list[str]:
    """The flags that give ``config`` on the command line: every option that differs from
    the library's default, the layers with their weights inline."""
    default = StyleConfig()
    out: list[str] = []
    for f in fields(StyleConfig):
        name = f.name
        if name in NOT_OPTIONS or (name == "init" and config.init not in INITS):
            continue
        value, usual = getattr(config, name), getattr(default, name)
        if name.endswith("_layers"):
            weights = f"{name[:-1]}_weights"
            value = layer_list(value, getattr(config, weights))
            usual = layer_list(usual, getattr(default, weights))
        if value == usual:
            continue
        if isinstance(value, bool):
            out.append(flag(name) if value else f"--no-{flag(name)[2:]}")
        else:
            out += [flag(name), value if isinstance(value, str) else text(name, value)]
    return out


def commands(png: str, *, print_size: int, max_memory: str) -> Commands:
    """The commands for the result ``png`` (a studio PNG, its inputs still on the server).

    Raises:
        ValueError: ``png`` has no estilo parameters.
    """
    params = read_parameters(png)
    if not params or "config" not in params:
        raise ValueError(f"{png!r} has no estilo parameters")
    config = StyleConfig.from_dict(params["config"])
    photo = params["inputs"]["content"]["path"]
    styles = [style["path"] for style in params["inputs"]["styles"]]
    files = [png, photo, *styles, *([config.mask] if config.mask else [])]
    name = Path(png).name
    mask = ["--mask", Path(config.mask).name] if config.mask else []
    lines = [f"# In a folder holding {', '.join(Path(f).name for f in files)}:"]
    if "resumed_from" not in params:
        again = ["estilo", Path(photo).name, *(Path(s).name for s in styles), "-o",
                 f"{Path(png).stem}-again.png", *mask, *options(config)]
        lines += ["# this result again:", shlex.join(again)]
    upload = params["inputs"]["content"].get("upload")
    yours = (f" (or your own {upload['name']}: estilo resume knows it by its sha256)"
             if upload else "")
    enlarge = ["estilo", "resume", name, "--content", Path(photo).name, "--style",
               *(Path(s).name for s in styles), *mask, "--size", str(print_size),
               "--max-memory", max_memory, "-o", f"{Path(png).stem}-{print_size}px.png"]
    lines += [f"# at {print_size} px for print, from this picture{yours}:", shlex.join(enlarge)]
    return Commands("\n".join(lines), files)
