"""Parameter grids: several settings side by side, as a contact sheet and tables.

:mod:`~estilo.grids.spec` turns presets, TOML files and ``--param`` lists into rows, labels
and tables (pure functions); :mod:`~estilo.grids.runner` runs the rows with one fixed loss
measure; :mod:`~estilo.grids.sheet` draws the contact sheet. ``estilo grid`` is
:mod:`estilo.cli.grid`.
"""

from .runner import Evaluator, Grid, grid
from .spec import GridResult, GridSpec, GridStep, Row, RowResult

__all__ = ["Evaluator", "Grid", "GridResult", "GridSpec", "GridStep", "Row", "RowResult", "grid"]
