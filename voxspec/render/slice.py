"""`slice`: one 2D slice, as the tutorial's ``imshow(arr[:, :, 5])`` with its colorbar."""

from __future__ import annotations

import numpy as np

from voxspec.errors import UserError
from voxspec.model import AXES, SlicePanel
from voxspec.render.common import add_colorbar, value_range


def take_slice(data: np.ndarray, axis: str, index: int | None) -> np.ndarray:
    """``data`` cut at ``index`` (default the middle, negative from the end) along ``axis``."""
    n = AXES.index(axis)
    size = data.shape[n]
    if index is None:
        index = size // 2
    if not -size <= index < size:
        raise UserError(f"index {index} is outside the {axis} axis (size {size})", ("index",))
    return np.take(data, index, axis=n)


def draw(panel: SlicePanel, volumes, fig, slot):
    data = volumes[panel.volume].data
    image = take_slice(data, panel.axis, panel.index)
    vmin, vmax = value_range(image, panel.range)
    ax = fig.add_subplot(slot)
    # imshow puts the first array axis on the rows, as the tutorial's plt.imshow does
    ax.imshow(image, cmap=panel.colormap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if panel.colorbar:
        add_colorbar(fig, ax, panel.colormap, vmin, vmax)
    if panel.title:
        ax.set_title(panel.title)
    if panel.overlay is not None:
        from voxspec.render.overlay import draw_overlay

        draw_overlay(ax, fig, panel.overlay, volumes, lambda d: take_slice(d, panel.axis, panel.index))
    return ax
