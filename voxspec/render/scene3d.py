"""Matplotlib 3D axes set up the way the tutorial's voxel figures are, shared by the
3D panel kinds so that a `voxels` and a `volume` panel of the same data agree."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec
from mpl_toolkits.mplot3d import Axes3D

from voxspec.model import Scene3D


def make_axes3d(fig: Figure, slot: SubplotSpec, panel: Scene3D) -> Axes3D:
    """A 3D axes in ``slot`` with the panel's view, axis labels and grid."""
    ax = fig.add_subplot(slot, projection="3d")
    view = panel.view
    ax.view_init(elev=view.elevation, azim=view.azimuth, roll=view.roll)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.grid(panel.grid)
    if panel.title:
        ax.set_title(panel.title)
    return ax


def finish_axes3d(ax: Axes3D, panel: Scene3D, extent: tuple[float, float, float]) -> None:
    """Scale the axes as the tutorial's ``plot_cube`` ends up scaled, then ``axes: false``.

    ``limits`` are set first, as the tutorial calls ``set_xlim(right=...)`` before
    ``ax.voxels``: that turns autoscaling off for the axis, so its lower limit stays the
    fresh axes' default (just below 0) and every figure with the same limits has the
    same scale, whatever part of the volume it shows. Without ``limits`` the axes fit
    the whole grid ``[0, extent]`` with matplotlib's 3D margins, as ``ax.voxels`` intends.
    """
    if panel.limits is not None:
        ax.set_xlim(right=panel.limits[0])
        ax.set_ylim(top=panel.limits[1])
        ax.set_zlim(top=panel.limits[2])
    ax.auto_scale_xyz([0, extent[0]], [0, extent[1]], [0, extent[2]])
    if not panel.axes:
        ax.set_axis_off()
