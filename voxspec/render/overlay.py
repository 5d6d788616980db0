"""Overlays: a second volume drawn over a panel's slices, with its own colormap,
threshold (values below it are transparent), opacity, range and colorbar.

An overlay on another voxel grid is sampled at the underlay's voxel centres through
both affines, one drawn slice at a time (a montage never resamples a whole volume).
This is plain numpy: nibabel's resampler needs scipy, which voxspec does not depend on.
"""

from __future__ import annotations

import itertools
import sys
import weakref

import numpy as np

from voxspec.errors import UserError
from voxspec.model import AXES, Overlay
from voxspec.render.common import add_colorbar
from voxspec.volume import VolumeData


def same_grid(a: VolumeData, b: VolumeData) -> bool:
    return a.shape == b.shape and np.allclose(a.affine, b.affine)


def plane_on_grid(
    overlay: VolumeData, underlay: VolumeData, axis: str, index: int, interpolation: str
) -> np.ndarray:
    """The overlay's values at the voxel centres of the underlay's slice ``index`` along
    ``axis``, shaped like that slice; NaN where the overlay's grid does not reach."""
    n = AXES.index(axis)
    if same_grid(overlay, underlay):
        return np.take(overlay.data, index, axis=n)
    rows, cols = (a for a in range(3) if a != n)
    r, c = np.meshgrid(
        np.arange(underlay.shape[rows]), np.arange(underlay.shape[cols]), indexing="ij"
    )
    voxels = np.ones((4, r.size))
    voxels[n], voxels[rows], voxels[cols] = index, r.ravel(), c.ravel()
    try:
        to_overlay = np.linalg.inv(overlay.affine) @ underlay.affine
    except np.linalg.LinAlgError:
        raise UserError(
            "the overlay's affine is singular: it has no voxel grid", ("volume",)
        ) from None
    points = (to_overlay @ voxels)[:3]
    return sample(overlay.data, points, interpolation).reshape(r.shape)


def sample(data: np.ndarray, points: np.ndarray, interpolation: str) -> np.ndarray:
    """``data`` at voxel coordinates ``points`` (3, N), trilinear or nearest. A point is
    inside when it falls in a voxel's extent (half a voxel beyond the outer centres)."""
    shape = np.array(data.shape)[:, None]
    inside = np.all((points >= -0.5) & (points <= shape - 0.5), axis=0)
    values = np.full(points.shape[1], np.nan, np.float32)
    p = np.clip(points[:, inside], 0, shape - 1)
    if interpolation == "nearest":
        values[inside] = data[tuple(np.rint(p).astype(int))]
        return values
    low = np.minimum(np.floor(p).astype(int), np.maximum(shape - 2, 0))
    high = np.minimum(low + 1, shape - 1)
    frac = p - low
    total = np.zeros(p.shape[1])
    for corner in itertools.product((0, 1), repeat=3):
        index = tuple(np.where(up, high[a], low[a]) for a, up in enumerate(corner))
        weight = np.prod([frac[a] if up else 1 - frac[a] for a, up in enumerate(corner)], axis=0)
        total += weight * data[index]
    values[inside] = total
    return values


def overlay_range(planes: list[np.ndarray], overlay: Overlay) -> tuple[float, float]:
    """The asked range, else from the threshold (or the lowest shown value) to the
    highest shown value: the colorbar spans what is visible."""
    if overlay.range is not None:
        return float(overlay.range[0]), float(overlay.range[1])
    shown = np.concatenate([p.compressed() for p in planes])
    low = overlay.threshold if overlay.threshold is not None else None
    if shown.size == 0:
        low = 0.0 if low is None else float(low)
        return low, low + 1.0
    low = float(shown.min()) if low is None else float(low)
    high = float(shown.max())
    return (low, high) if high > low else (low, low + 1.0)


def draw_overlay(fig, overlay: Overlay, volumes: dict, underlay: VolumeData, cuts) -> None:
    """Draw ``overlay`` over each (axes, axis, index) cut of ``underlay``, with one range
    and one colorbar for all of them. ``fig`` may be a subfigure."""
    volume = volumes[overlay.volume]
    if not same_grid(volume, underlay):
        note_once(
            fig.figure,
            f"voxspec: note: overlay {overlay.volume!r} ({_shape(volume)}) is on another "
            f"voxel grid than its underlay ({_shape(underlay)}); resampled "
            f"({overlay.interpolation}) through both affines",
        )
    planes = []
    for _, axis, index in cuts:
        plane = plane_on_grid(volume, underlay, axis, index, overlay.interpolation)
        hidden = ~np.isfinite(plane)
        if overlay.threshold is not None:
            hidden |= plane < overlay.threshold
        planes.append(np.ma.masked_array(plane, hidden))
    vmin, vmax = overlay_range(planes, overlay)
    axes = [ax for ax, _, _ in cuts]
    for ax, plane in zip(axes, planes):
        # masked values use the colormap's "bad" colour: fully transparent
        ax.imshow(
            plane,
            cmap=overlay.colormap,
            vmin=vmin,
            vmax=vmax,
            alpha=overlay.opacity,
            interpolation="nearest",
        )
    if overlay.colorbar:
        target = axes if len(axes) > 1 else axes[0]
        add_colorbar(fig, target, overlay.colormap, vmin, vmax, overlay.volume)


# the notes each figure has printed: several panels resampling one overlay say it once
_NOTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def note_once(root_figure, message: str) -> None:
    noted = _NOTED.setdefault(root_figure, set())
    if message not in noted:
        noted.add(message)
        print(message, file=sys.stderr)


def _shape(volume: VolumeData) -> str:
    return "x".join(map(str, volume.shape))
