"""Continue a run from an image estilo saved, with its parameters (``estilo resume OUT.png``,
:mod:`estilo.cli.resume`).

Every PNG estilo writes embeds its parameters (see :mod:`estilo.metadata`): the options, the
inputs (name, absolute path, sha256) and ``iterations_done`` / ``iterations_total``. Resuming
finds the inputs again (checking that they did not change), starts from the saved image
(``init`` = that PNG) and runs the iterations that were left, at the output size:

* stopped during the last (output-size) level: ``iterations_total - iterations_done``;
* stopped during a coarser level: the whole last level (``config.iterations``); the rest of
  the coarse levels is not made up (the saved image is upsampled instead);
* ``--iterations N`` (or ``iterations=``) overrides both, also to continue a finished run;
* ``--size N`` (``size=``) continues at another size, e.g. larger to enlarge the picture (the
  content is upsampled if it is smaller): the whole last level (``config.iterations``) unless
  ``--iterations`` says otherwise.

An input that moved is given again (``--content``, ``--style``, ``--mask``) and recognised by
its sha256. A picture made in the web studio records each upload's own sha256 too (the
studio works on an upright, downsized copy), so the photo as it is on the user's disk is
accepted as well as the studio's copy.

The new image records ``iterations_done`` counted from the start of the first run and
``resumed_from`` (the file and its count when resumed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, StyleConfig
from .files import sha256
from .io import metadata
from .io.image import ImageError, load_image
from .io.output import read_parameters
from .transfer import Job, Step, Stylizer

PathLike = str | os.PathLike[str]


@dataclass
class ResumedJob(Job):
    """A :class:`~estilo.transfer.Job` that continues an earlier run saved at ``saved``."""

    saved: str = ""
    done_before: int = 0

    def parameters(self, last: Step | None, **extra: Any) -> dict[str, Any]:
        """The parameters of :class:`Job`, with iterations counted from the first run."""
        params = super().parameters(last, **extra)
        params["iterations_done"] = self.done_before + (last.iteration if last else 0)
        params["iterations_total"] = self.done_before + (last.total if last else
                                                         self.config.iterations)
        params["resumed_from"] = {"path": self.saved, "iterations_done": self.done_before}
        return params


def resume_job(saved: PathLike, *, iterations: int | None = None,
               content: PathLike | None = None, styles: Sequence[PathLike] | None = None,
               mask: PathLike | None = None, size: int | None = None,
               max_memory: str | None = None, verify: bool = True, device: str | None = None,
               stylizer: Stylizer | None = None) -> ResumedJob:
    """Prepare the continuation of the run that wrote ``saved`` (nothing is computed yet).

    Args:
        saved: A PNG written by estilo (final, intermediate or interrupted).
        iterations: Iterations to run; None: those left (see the module docstring).
        content: The content image, if it is no longer at its recorded path.
        styles: The style images (all of them, in order), if they moved.
        mask: The mask image, if it moved.
        size: Continue at this long side (px) instead of the saved one (the content is
            upsampled if it is smaller).
        max_memory: Fit the run into this much memory (e.g. ``8GB``: tiles, a shorter
            L-BFGS history, as ``estilo --max-memory``).
        verify: Refuse inputs whose sha256 differs from the recorded one.
        device: Run on this device instead of the recorded one.
        stylizer: Reuse its loaded networks.

    Raises:
        ImageError: ``saved`` has no parameters, or an input is missing or changed.
        ConfigError: Nothing is left to do, or the number of styles does not match.
    """
    path = Path(saved).expanduser().resolve()
    params = _parameters(path)
    config, done = _resumed_config(params, path, iterations, size,
                                   {"device": device, "max_memory": max_memory})
    recorded = params["inputs"]
    content_path = _find_input(recorded["content"], content, verify, "content", "--content")
    style_paths = _find_styles(recorded["styles"], styles, verify)
    if mask is not None and config.mask is None:
        raise ConfigError("the run used no mask: leave out --mask")
    if config.mask is not None:
        entry = recorded.get("mask") or {"name": Path(config.mask).name, "path": config.mask}
        config = config.replace(mask=str(_find_input(entry, mask, verify, "mask", "--mask")))
    job = (stylizer or Stylizer()).job(content_path, style_paths, config)
    return ResumedJob(job.stylizer, job.inputs, job.config, saved=str(path), done_before=done)


def _parameters(path: Path) -> dict[str, Any]:
    """The embedded parameters of ``path``, checked to be estilo's."""
    params = read_parameters(path)
    if params is None or params.get("format") != metadata.FORMAT:
        load_image(path)  # not an image at all: say that, and suggest no --init with it
        raise ImageError(f"{str(path)!r} has no estilo parameters (only PNGs written by estilo "
                         f"can be resumed); start a new run with --init {str(path)!r} instead")
    return params


def _resumed_config(params: dict[str, Any], path: Path, iterations: int | None,
                    size: int | None, changes: dict[str, Any]) -> tuple[StyleConfig, int]:
    """The recorded config set to start from ``path`` at the output size (or ``size``), with
    the non-None ``changes``; and the count done."""
    try:
        config = StyleConfig.from_dict(params["config"])
        done, total = int(params["iterations_done"]), int(params["iterations_total"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ImageError(f"unreadable estilo parameters in {str(path)!r} ({exc}); start a new "
                         f"run with --init {str(path)!r} instead") from None
    if iterations is not None and iterations < 1:
        raise ConfigError(f"iterations must be at least 1 to resume, not {iterations}")
    left = config.iterations if size is not None else min(total - done, config.iterations)
    if iterations is None and left <= 0:
        raise ConfigError(f"{str(path)!r} is already complete ({done}/{total} iterations); "
                          "give --iterations N to continue it further (or --size N to "
                          "enlarge it)")
    resized = {"size": size, "upscale": True} if size is not None else {}
    given = {name: value for name, value in changes.items() if value}
    return config.replace(init=str(path), iterations=left if iterations is None else iterations,
                          scales=1, **resized, **given), done


def _find_styles(recorded: list[dict[str, Any]], given: Sequence[PathLike] | None,
                 verify: bool) -> list[Path]:
    """The style paths: the recorded ones, or ``given`` (checked against the records)."""
    if given is not None and verify and len(given) != len(recorded):
        raise ConfigError(f"the run used {len(recorded)} style image(s) but {len(given)} were "
                          "given with --style; give all of them in order (or --no-verify)")
    if given is not None and not verify:
        return [Path(p).expanduser() for p in given]
    overrides = list(given) if given is not None else [None] * len(recorded)
    return [_find_input(entry, override, verify, f"style {i + 1}", "--style")
            for i, (entry, override) in enumerate(zip(recorded, overrides, strict=True))]


def _find_input(entry: dict[str, Any], given: PathLike | None, verify: bool, role: str,
                flag: str) -> Path:
    """The path of one recorded input, or ``given``; its sha256 checked when ``verify``."""
    name = entry.get("name", "?")
    where = given if given is not None else entry.get("path")
    upload = entry.get("upload")  # made in the web studio: the file as uploaded
    if given is None and upload and not (where and Path(where).is_file()):
        raise ImageError(f"the {role} image {name!r} was uploaded to the estilo studio: give "
                         f"it with {flag} PATH (your own file {upload.get('name')!r} or the "
                         "studio's copy; either is recognised by its sha256)")
    if where is None:
        raise ImageError(f"the {role} image {name!r} has no recorded path (an in-memory image "
                         f"or an older estilo); give it with {flag} PATH")
    path = Path(where).expanduser()
    if not path.is_file():
        raise ImageError(f"the {role} image {name!r} is not at {str(path)!r} (moved or "
                         f"deleted?); give it with {flag} PATH")
    known = {entry.get("sha256"), (upload or {}).get("sha256")} - {None}
    if verify and _digest(path) not in known:
        raise ImageError(f"the {role} image {str(path)!r} is not the one the run used (its "
                         f"sha256 differs); give the original with {flag} PATH, or use "
                         "--no-verify to continue with it anyway")
    return path


def _digest(path: Path) -> str:
    try:
        return sha256(path)
    except OSError as exc:
        raise ImageError(f"cannot read {str(path)!r} ({exc.strerror}); check its "
                         "permissions") from None
