"""`ortho`: the three orthogonal slices through one point, with an optional crosshair
and one shared range and colorbar.

Each view is drawn as `slice` draws it (the first remaining array axis on the rows).
The views stand in one row in a wide slot, else x and y above z, whichever draws
them larger; the gridspec's ratios follow the voxel counts so the views share a scale.
"""

from __future__ import annotations

import math

import numpy as np

from voxspec.errors import UserError
from voxspec.model import AXES, OrthoPanel
from voxspec.render.slice import (
    best_columns,
    draw_cuts,
    label_cut,
    panel_space,
    resolve_index,
)
from voxspec.volume import VolumeData

CROSSHAIR = {"color": "#40ff40", "linewidth": 0.5, "alpha": 0.8}


def ortho_point(panel: OrthoPanel, volume: VolumeData) -> tuple[int, int, int]:
    """The voxel the three slices go through: ``at``, ``at_world`` through the inverse
    affine (nearest voxel), or the centre."""
    if panel.at_world is not None:
        voxel = np.linalg.inv(volume.affine) @ np.array([*panel.at_world, 1.0])
        point = tuple(int(v) for v in np.rint(voxel[:3]))
        if not all(0 <= i < n for i, n in zip(point, volume.shape)):
            raise UserError(
                f"world point {list(panel.at_world)} is voxel {list(point)}, outside the "
                f"volume's grid {list(volume.shape)}",
                ("at_world",),
            )
        return point
    at = panel.at or (None, None, None)
    return tuple(
        resolve_index(i, n, axis, ("at", k))
        for k, (i, n, axis) in enumerate(zip(at, volume.shape, AXES))
    )


def view_grid(shape, columns: int) -> tuple[list[tuple[int, int]], dict]:
    """Where each view goes ((row, column) in a gridspec) and the gridspec's size ratios,
    so that the views share one scale: one row, or x and y above z."""
    nx, ny, nz = shape
    if columns == 3:
        return [(0, 0), (0, 1), (0, 2)], {"width_ratios": [nz, nz, ny]}
    return [(0, 0), (0, 1), (1, 0)], {
        "width_ratios": [max(nz, ny), nz],
        "height_ratios": [max(ny, nx), nx],
    }


def draw(panel: OrthoPanel, volumes, fig, slot):
    volume = volumes[panel.volume]
    point = ortho_point(panel, volume)
    # the view cut along axis n shows the two other axes, in order, as rows and columns
    views = [[a for a in range(3) if a != n] for n in range(3)]
    tile = (max(volume.shape[r] for r, _ in views), max(volume.shape[c] for _, c in views))
    columns = best_columns(3, tile, panel_space(fig, slot, panel), (3, 2))
    places, ratios = view_grid(volume.shape, columns)
    sub = fig.add_subfigure(slot, facecolor="none")
    grid = sub.add_gridspec(math.ceil(3 / columns), columns, **ratios)
    cuts = []
    for n, ((rows, cols), place) in enumerate(zip(views, places)):
        ax = sub.add_subplot(grid[place])
        ax.set_axis_off()
        if panel.crosshair:
            ax.axhline(point[rows], **CROSSHAIR)
            ax.axvline(point[cols], **CROSSHAIR)
        if panel.labels:
            label_cut(ax, AXES[n], point[n])
        cuts.append((ax, AXES[n], point[n]))
    draw_cuts(sub, panel, volumes, cuts)
    if panel.title:
        sub.suptitle(panel.title, fontsize="medium")
    return cuts[0][0]
