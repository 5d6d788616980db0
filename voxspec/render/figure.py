"""One spec -> one matplotlib Figure: printed size, grid, title, panel labels, panels.

Figures are made with ``matplotlib.figure.Figure`` (never pyplot), so no global
figure state is shared between builds, and with fixed style settings so the same
spec gives the same picture whatever the user's matplotlibrc says.
"""

from __future__ import annotations

import contextlib
import string

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from voxspec.errors import UserError
from voxspec.layout import figure_size_cm, figure_size_px, font_size, grid_shape
from voxspec.model import Spec
from voxspec.render import renderer


def style(spec: Spec) -> dict:
    """Matplotlib settings for every voxspec figure (defaults, plus what print needs)."""
    size = font_size(spec.figure)
    return {
        **mpl.rcParamsDefault,
        "backend": "agg",
        "font.family": "DejaVu Sans",  # shipped with matplotlib: same glyphs everywhere
        "font.size": size,
        "axes.titlesize": size,
        "axes.labelsize": size,
        "xtick.labelsize": size * 0.85,
        "ytick.labelsize": size * 0.85,
        "legend.fontsize": size * 0.85,
        "figure.titlesize": size * 1.2,
        "pdf.fonttype": 42,  # TrueType, never Type 3: journals refuse Type 3 fonts
        "ps.fonttype": 42,
        "svg.hashsalt": "voxspec",  # fixed ids in SVG files: byte-identical rebuilds
        "svg.fonttype": "path",
        "image.resample": False,
        "savefig.dpi": spec.figure.dpi,
        "savefig.facecolor": "white",
    }


@contextlib.contextmanager
def styled(spec: Spec):
    with mpl.rc_context(style(spec)):
        yield


def make_figure(spec: Spec) -> Figure:
    width_cm, height_cm = figure_size_cm(spec.figure, len(spec.panels))
    return Figure(
        figsize=(width_cm / 2.54, height_cm / 2.54), dpi=spec.figure.dpi, layout="constrained"
    )


def fit_raster(fig: Figure, spec: Spec) -> None:
    """Size ``fig`` so a raster output has exactly the rounded pixel count (matplotlib
    truncates width*dpi; a quarter pixel more makes 1003.99999 print as 1004)."""
    width_px, height_px = figure_size_px(spec.figure, len(spec.panels))
    dpi = spec.figure.dpi
    fig.set_size_inches((width_px + 0.25) / dpi, (height_px + 0.25) / dpi)


def fit_print(fig: Figure, spec: Spec) -> None:
    """Size ``fig`` at exactly the printed size asked for (vector outputs)."""
    width_cm, height_cm = figure_size_cm(spec.figure, len(spec.panels))
    fig.set_size_inches(width_cm / 2.54, height_cm / 2.54)


def render_figure(spec: Spec, volumes: dict) -> Figure:
    """Draw every panel of ``spec``. Call inside ``styled(spec)``."""
    fig = make_figure(spec)
    rows, cols = grid_shape(spec.figure, len(spec.panels))
    grid = GridSpec(rows, cols, figure=fig)
    for i, panel in enumerate(spec.panels):
        slot = grid[i // cols, i % cols]
        try:
            ax = renderer(panel.kind)(panel, volumes, fig, slot)
        except UserError as error:
            raise error.within(("panels", i)) from None
        if spec.figure.panel_labels:
            ax.set_title(f"({_label(i)})", loc="left", fontweight="bold")
    if spec.title:
        fig.suptitle(spec.title)
    return fig


def _label(i: int) -> str:
    letters = string.ascii_lowercase
    return letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26]
