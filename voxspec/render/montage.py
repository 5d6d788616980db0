"""`montage`: a grid of slices along one axis, with one shared range and colorbar.

The panel is a subfigure of its grid slot, so its tiles, colorbars and title stay
inside the slot whatever the other panels hold.
"""

from __future__ import annotations

import math

from voxspec.errors import UserError
from voxspec.model import AXES, MontagePanel
from voxspec.render.slice import (
    best_columns,
    draw_cuts,
    label_cut,
    panel_space,
    resolve_index,
)


def montage_indices(panel: MontagePanel, size: int) -> list[int]:
    """The asked indices, else ``count`` slices at the centres of equal slabs of the axis
    (so the empty first and last slices of a scan are skipped, and no index repeats)."""
    if panel.indices is not None:
        return [
            resolve_index(index, size, panel.axis, ("indices", k))
            for k, index in enumerate(panel.indices)
        ]
    count = panel.count
    if count > size:
        if "count" in panel.model_fields_set:
            raise UserError(
                f"count {count} is more than the {size} slices along {panel.axis}", ("count",)
            )
        count = size  # the default asks for 9; a smaller volume shows every slice
    return [int((k + 0.5) * size / count) for k in range(count)]


def draw(panel: MontagePanel, volumes, fig, slot):
    shape = volumes[panel.volume].shape
    n = AXES.index(panel.axis)
    indices = montage_indices(panel, shape[n])
    if panel.columns is not None:
        columns = min(panel.columns, len(indices))
    else:
        # the grid that draws the slices largest in the slot: a square slot gives a
        # near-square grid, a wide one a wide grid
        tile = tuple(size for a, size in enumerate(shape) if a != n)
        space = panel_space(fig, slot, panel)
        columns = best_columns(len(indices), tile, space, range(1, len(indices) + 1))
    rows = math.ceil(len(indices) / columns)
    sub = fig.add_subfigure(slot, facecolor="none")
    grid = sub.add_gridspec(rows, columns)
    cuts = []
    for k, index in enumerate(indices):
        ax = sub.add_subplot(grid[k // columns, k % columns])
        ax.set_axis_off()
        if panel.labels:
            label_cut(ax, panel.axis, index)
        cuts.append((ax, panel.axis, index))
    draw_cuts(sub, panel, volumes, cuts)
    if panel.title:
        sub.suptitle(panel.title, fontsize="medium")
    return cuts[0][0]
