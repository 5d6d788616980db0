"""The figure's printed size and grid, computed from the spec (no drawing here)."""

from __future__ import annotations

from voxspec.model import PRESETS, UNIT_CM, Figure

DEFAULT_WIDTH_CM = 12.0
DEFAULT_FONT_PT = 8.0


def figure_size_cm(figure: Figure, panel_count: int) -> tuple[float, float]:
    """Width and height in cm: explicit values win over the preset, then the defaults.
    The default height makes every grid cell square."""
    per_cm = UNIT_CM[figure.unit]
    if figure.width is not None:
        width = figure.width * per_cm
    elif figure.preset is not None:
        width = PRESETS[figure.preset][0]
    else:
        width = DEFAULT_WIDTH_CM
    rows, cols = grid_shape(figure, panel_count)
    height = figure.height * per_cm if figure.height is not None else width * rows / cols
    return width, height


def figure_size_px(figure: Figure, panel_count: int) -> tuple[int, int]:
    """Pixels of a raster output: the printed size at the dpi, rounded to the nearest."""
    width, height = figure_size_cm(figure, panel_count)
    dpi = figure.dpi
    return round(width / 2.54 * dpi), round(height / 2.54 * dpi)


def grid_shape(figure: Figure, panel_count: int) -> tuple[int, int]:
    """Rows and columns; by default one row holding every panel."""
    return figure.grid or (1, panel_count)


def font_size(figure: Figure) -> float:
    if figure.font_size is not None:
        return figure.font_size
    if figure.preset is not None:
        return PRESETS[figure.preset][1]
    return DEFAULT_FONT_PT
