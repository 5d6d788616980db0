"""Render small figures in memory for pixel and metadata tests of the 2D panels.

Volumes are given as arrays (with affines) instead of sources, so a test controls
every voxel and every grid; the spec still goes through the real model.
"""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np

from voxspec.model import Spec
from voxspec.output import figure_bytes
from voxspec.render.figure import fit_print, fit_raster, render_figure, styled
from voxspec.volume import VolumeData


def make_spec(panels: list[dict], figure: dict | None = None, volumes=("head",)) -> Spec:
    """A validated spec; its volume sources are placeholders (tests pass the data)."""
    return Spec.model_validate(
        {
            "voxspec": 1,
            "volumes": {v: {"source": {"builtin": "head-phantom"}} for v in volumes},
            "figure": {"dpi": 60, **(figure or {})},
            "panels": panels,
        }
    )


def volume(data, affine=None) -> VolumeData:
    data = np.asarray(data, np.float32)
    return VolumeData(data, np.eye(4) if affine is None else np.asarray(affine, float))


def render(spec: Spec, volumes: dict, formats=("png",)):
    """(figure, {format: bytes}) as ``voxspec build`` makes them (no provenance)."""
    with styled(spec):
        fig = render_figure(spec, volumes)
        files = {}
        for fmt in formats:
            (fit_raster if fmt in ("png", "tiff") else fit_print)(fig, spec)
            files[fmt] = figure_bytes(fig, fmt, spec.figure.dpi, {})
    return fig, files


def pixels(png: bytes) -> np.ndarray:
    """RGB values 0..255, rows from the top."""
    return np.round(matplotlib.image.imread(io.BytesIO(png))[..., :3] * 255).astype(int)


def pixel_at(image: np.ndarray, ax, fx: float, fy: float) -> np.ndarray:
    """The pixel at fraction (fx, fy) of ``ax``'s box (from its bottom-left corner)."""
    box = ax.get_window_extent()
    x = box.x0 + fx * box.width
    y = box.y0 + fy * box.height
    return image[image.shape[0] - 1 - int(y), int(x)]


def row_across(image: np.ndarray, ax, fy: float) -> np.ndarray:
    """The pixels of ``ax``'s box along the row at fraction ``fy`` from its bottom."""
    box = ax.get_window_extent()
    row = image.shape[0] - 1 - int(box.y0 + fy * box.height)
    return image[row, int(np.ceil(box.x0)) : int(box.x1)]


def image_axes(fig) -> list:
    """Axes that hold an image (the slices), in creation order (``fig.axes`` includes
    the axes of subfigures)."""
    return [a for a in fig.axes if a.images]


def box_in_figure(fig, ax):
    """``ax``'s box in fractions of the whole figure (``get_position`` is relative to
    the subfigure an axes is in)."""
    return ax.get_window_extent().transformed(fig.transFigure.inverted())


def colorbar_axes(fig) -> list:
    return [a for a in fig.axes if a.get_label() == "<colorbar>"]
