"""The parameters embedded in every output: enough to understand and repeat the run."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from typing import Any

import torch

from ..config import StyleConfig
from ..weights import LoadedWeights
from .inputs import Inputs

FORMAT = "estilo/1"


def version() -> str:
    """estilo's installed version (``0+unknown`` when run from a source tree)."""
    try:
        return importlib_metadata.version("estilo")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def parameters(config: StyleConfig, inputs: Inputs, weights: LoadedWeights,
               history: Sequence[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """JSON-ready description of a run: options, inputs, weights, versions, final losses."""
    last = history[-1] if history else {}
    return {
        "format": FORMAT,
        "config": config.to_dict(),
        "seed": config.seed,
        "inputs": {
            "content": inputs.content.describe(),
            "styles": [s.describe() for s in inputs.styles],
            "init": inputs.init.describe() if inputs.init else None,
            "mask": inputs.mask.describe() if inputs.mask else None,
            "style_groups": list(inputs.groups),
        },
        "size": list(inputs.size),
        "weights": {"source": weights.source, "sha256": weights.sha256},
        "versions": {"estilo": version(), "torch": torch.__version__,
                     "python": platform.python_version()},
        "iterations_done": last.get("iteration", 0),
        "iterations_total": last.get("total", 0),
        "final_loss": {"total": last.get("loss"), **last.get("terms", {})},
        "elapsed_s": round(last.get("elapsed", 0.0), 3),
        **extra,
    }


def run_key(params: Mapping[str, Any] | None, *, weights: bool = True) -> tuple[str, ...] | None:
    """What makes two outputs the same finished run, read from their embedded parameters
    (see :func:`same_run`). None when there are no parameters, or the run was interrupted,
    is a partial save or did fewer iterations than it planned: such an output is never the
    finished run. Compare keys made with the same ``weights``.
    """
    if not params or params.get("interrupted") or params.get("partial"):
        return None
    if params.get("iterations_done") != params.get("iterations_total"):
        return None
    inputs = params.get("inputs") or {}
    return same_run(params.get("config") or {}, content=_sha256(inputs.get("content")),
                    styles=[_sha256(s) for s in inputs.get("styles") or []],
                    groups=inputs.get("style_groups"), init=_sha256(inputs.get("init")),
                    mask=_sha256(inputs.get("mask")),
                    weights=str((params.get("weights") or {}).get("sha256")) if weights else None)


def same_run(config: Mapping[str, Any], *, content: str | None, styles: Sequence[str | None],
             groups: Sequence[int] | None, init: str | None, mask: str | None,
             weights: str | None = None) -> tuple[str, ...]:
    """The one key of "the same run" (grids, batches, videos and resume use it): the options
    (but the device: it does not change what is computed), the inputs' sha256 (content,
    styles and their grouping, init image, mask) and, when given, the weights' sha256."""
    options = {k: v for k, v in config.items() if k != "device"}
    hashes = {"content": content, "init": init, "styles": list(styles),
              "groups": list(groups) if groups is not None else None, "mask": mask}
    key = (_canonical(options), _canonical(hashes))
    return (*key, weights) if weights is not None else key


def _sha256(record: Mapping[str, Any] | None) -> str | None:
    return record.get("sha256") if record else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
