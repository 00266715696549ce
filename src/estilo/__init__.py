"""estilo: neural style transfer (Gatys et al.) with VGG19, as a library, a CLI and a web app.

Importing estilo has no side effects and imports neither the command line (argparse), the
grid runner, gradio nor ray: they load when used.
"""

from typing import Any

from .config import ConfigError, StyleConfig, UserError
from .io.image import ImageError, load_image
from .io.metadata import version as _version
from .io.output import OutputError, read_parameters, save_image
from .transfer import Result, Step, Stylizer, stylize
from .weights import WeightsError

__version__ = _version()

__all__ = [
    "BatchError",
    "ConfigError",
    "GridResult",
    "ImageError",
    "OutputError",
    "Result",
    "Step",
    "StyleConfig",
    "Stylizer",
    "UserError",
    "WeightsError",
    "__version__",
    "grid",
    "load_image",
    "read_parameters",
    "run_batch",
    "save_image",
    "stylize",
]

_LAZY = {"run_batch": "estilo.batch", "BatchError": "estilo.batch",
         "grid": "estilo.grids", "GridResult": "estilo.grids"}


def __getattr__(name: str) -> Any:
    """Grids and batch runs load on first use (:mod:`estilo.grids`, :mod:`estilo.batch`;
    Ray only with its backend)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'estilo' has no attribute {name!r}")
