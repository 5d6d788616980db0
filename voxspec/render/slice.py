"""`slice`: one 2D slice, as the tutorial's ``imshow(arr[:, :, 5])`` with its colorbar.

``draw_cuts`` is the slice drawing that `montage` and `ortho` share: the panel's
slices on their axes with one value range, one colorbar, and the overlay on top.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes

from voxspec.errors import UserError, Where
from voxspec.model import AXES, SlicePanel
from voxspec.render.common import add_colorbar, value_range

# a colorbar with its padding takes about this part of a panel's width (matplotlib's
# fraction=0.15 and pad=0.05)
COLORBAR_SHARE = 0.2

# (axes, axis, index): one slice of the panel's volume (index already resolved) and
# the axes it is drawn on
Cut = tuple[Axes, str, int]


def resolve_index(index: int | None, size: int, axis: str, where: Where) -> int:
    """``index`` as a non-negative voxel index (default the middle, negative from the end)."""
    if index is None:
        return size // 2
    if not -size <= index < size:
        raise UserError(f"index {index} is outside the {axis} axis (size {size})", where)
    return index % size


def draw_cuts(fig, panel, volumes, cuts: list[Cut]) -> None:
    """Draw each cut of ``panel.volume`` with one shared range and colorbar, then the
    panel's overlay (if any) over the same cuts. ``fig`` may be a subfigure."""
    data = volumes[panel.volume].data
    images = [np.take(data, index, axis=AXES.index(axis)) for _, axis, index in cuts]
    vmin, vmax = value_range(np.concatenate([i.ravel() for i in images]), panel.range)
    axes = [ax for ax, _, _ in cuts]
    for ax, image in zip(axes, images):
        # imshow puts the first array axis on the rows, as the tutorial's plt.imshow does
        ax.imshow(image, cmap=panel.colormap, vmin=vmin, vmax=vmax, interpolation="nearest")
    overlay = panel.overlay
    if panel.colorbar:
        # with two colorbars, their volume names tell them apart
        label = panel.volume if overlay is not None and overlay.colorbar else None
        add_colorbar(fig, axes if len(axes) > 1 else axes[0], panel.colormap, vmin, vmax, label)
    if overlay is not None:
        from voxspec.render.overlay import draw_overlay

        try:
            draw_overlay(fig, overlay, volumes, volumes[panel.volume], cuts)
        except UserError as error:
            raise error.within(("overlay",)) from None


def label_cut(ax, axis: str, index: int) -> None:
    """Print ``axis = index`` in the top-left corner of a slice, legible on any image."""
    ax.text(
        0.03,
        0.97,
        f"{axis} = {index}",
        transform=ax.transAxes,
        ha="left",
        va="top",
        color="white",
        fontsize="small",
        path_effects=[patheffects.withStroke(linewidth=1.2, foreground="black")],
    )


def best_columns(
    count: int, tile: tuple[int, int], space: tuple[float, float], choices: Iterable[int]
) -> int:
    """Of ``choices``, the column count that draws ``count`` tiles of ``tile`` (rows,
    columns of voxels) largest in ``space`` (width, height); ties go to more columns."""

    def scale(columns: int) -> float:
        rows = math.ceil(count / columns)
        return min(space[0] / (columns * tile[1]), space[1] / (rows * tile[0]))

    return max(choices, key=lambda columns: (round(scale(columns), 9), columns))


def panel_space(fig, slot, panel) -> tuple[float, float]:
    """Width and height (inches) of ``slot`` less the usual share of the panel's colorbars."""
    colorbars = panel.colorbar + (panel.overlay is not None and panel.overlay.colorbar)
    box = slot.get_position(fig)
    width, height = fig.get_size_inches()
    return box.width * width * (1 - COLORBAR_SHARE * colorbars), box.height * height


def draw(panel: SlicePanel, volumes, fig, slot):
    size = volumes[panel.volume].shape[AXES.index(panel.axis)]
    index = resolve_index(panel.index, size, panel.axis, ("index",))
    ax = fig.add_subplot(slot)
    draw_cuts(fig, panel, volumes, [(ax, panel.axis, index)])
    if panel.title:
        ax.set_title(panel.title)
    return ax
