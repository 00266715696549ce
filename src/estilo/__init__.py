"""estilo: neural style transfer (Gatys et al.) with VGG19, as a library, a CLI and a web app.

Importing estilo has no side effects and imports neither gradio nor ray.
"""

from .config import ConfigError, StyleConfig
from .gridrun import grid
from .grids import GridResult
from .image import ImageError, load_image
from .metadata import version as _version
from .output import OutputError, read_parameters, save_image
from .transfer import Result, Step, Stylizer, stylize
from .weights import WeightsError

__version__ = _version()

__all__ = [
    "ConfigError",
    "GridResult",
    "ImageError",
    "OutputError",
    "Result",
    "Step",
    "StyleConfig",
    "Stylizer",
    "WeightsError",
    "__version__",
    "grid",
    "load_image",
    "read_parameters",
    "save_image",
    "stylize",
]
