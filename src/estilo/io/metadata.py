"""The parameters embedded in every output: enough to understand and repeat the run."""

from __future__ import annotations

import platform
from collections.abc import Sequence
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
