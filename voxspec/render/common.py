"""Small pieces every panel renderer uses: value ranges and colorbars."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from voxspec.errors import UserError


def colormap(name: str):
    """The matplotlib colormap ``name``; a located error for a name it does not know
    (specs are checked when loaded, this guards figures built from Python objects)."""
    try:
        return mpl.colormaps[name]
    except KeyError:
        raise UserError(f"{name!r} is not a matplotlib colormap", ("colormap",)) from None


def value_range(data: np.ndarray, asked: tuple[float, float] | None) -> tuple[float, float]:
    """The asked [vmin, vmax], else the data's finite min and max (never an empty range)."""
    if asked is not None:
        return float(asked[0]), float(asked[1])
    lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def add_colorbar(
    fig: Figure, ax: Axes | list[Axes], name: str, vmin: float, vmax: float, label=None
):
    """A colorbar for the colormap ``name`` over [vmin, vmax], opaque (alpha left out)."""
    mappable = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(vmin, vmax), cmap=colormap(name))
    bar = fig.colorbar(mappable, ax=ax, shrink=0.8)
    if label:
        bar.set_label(label)
    return bar
