"""The ``volume`` panel: emission-absorption volume rendering of a whole volume, on the CPU.

A ``voxels`` panel draws one cube per voxel, which stops scaling long before a full-resolution
scan. This panel draws the same object into the same matplotlib 3D axes (view, limits, ticks,
labels from ``scene3d``) as one image computed at draw time for the figure's pixels.

Geometry (as the ``voxels`` panel): voxel (i, j, k) fills the cube ``[cube*i, cube*(i+1)]`` x
... so a volume of shape n spans ``[0, cube*n]`` per axis. Between voxel centres the data
are interpolated trilinearly; between the outer centres and the grid's faces they are the
edge voxel's value (as its cube reaches the face); outside the grid there is nothing.

Transfer function. A value v maps through ``range`` (default the data's min..max) to
t in [0, 1]; voxels whose value is 0 (or not finite) are empty (t = 0). Colour = colormap(t).
Opacity is the tutorial's "alpha = the voxel's value", as an absorption per voxel length:
a ray crossing one voxel of value t loses the fraction ``a(t) = min(1, opacity * t)`` of the
light behind it. A sample that stands for a path of length d voxels has alpha
``1 - (1 - a(t))**d``, so the picture does not depend on how densely a ray is sampled, and
bright tissue reads as a surface after a few voxels, as in the tutorial's figures.
Samples are composited front to back: C += T * alpha * colour; T *= 1 - alpha.
``mode: mip`` keeps the largest t along each ray instead, coloured colormap(t) with alpha
``min(1, opacity * t)``.

Algorithm: shear-warp (Lacroute & Levoy 1994) with pre-integrated segments, float32 numpy.

1. At draw time the axes' projection (``ax.M``, then ``transData`` and the renderer's image
   magnification) is one homography from voxel coordinates to output pixels. The slices
   are taken across the grid axis closest to the viewing ray.
2. Every slice maps onto one reference plane by a scale and a shift only (a pure shift
   for orthographic views), so it is resampled there with separable bilinear weights: two
   1-D gathers per slice, no per-pixel coordinates. That plane's sample grid, the
   "intermediate image", has about one sample per output pixel (at least one per voxel,
   at most ``MAX_SAMPLES_PER_VOXEL``). Slices are ``1 / SLICES_PER_VOXEL`` voxel apart,
   those between voxel centres interpolated in depth once per view axis, so rays are
   sampled trilinearly twice per voxel from the grid's front face to its back face.
3. The ray between two consecutive slices is one segment along which t is taken as
   linear; its colour and opacity come from a 256 x 256 table of pre-integrated segments
   (t quantized to 1/255), so thin bright layers cannot flicker between slices. Segments
   that cross a side of the grid are shortened to their part inside it, so cut faces do
   not show the slices as stripes. Compositing runs front to back, tile by tile of the
   intermediate image; a tile skips the rows of a slice with nothing visible and stops
   once every ray in it is opaque. Tiles are independent: they run on a thread pool
   (numpy releases the GIL) and the result does not depend on the thread count.
4. One homography warps the intermediate image (premultiplied RGBA, bilinear) to the
   output pixels covering the grid's bounding box inside the axes.

``benchmarks/bench_volume.py`` times it: the MNI152 grid (197 x 233 x 189, 8.7 million
voxels) in a 12 cm figure at 300 dpi takes about 1.5 s and 350 MB for the whole figure,
loading and PNG included, on one core of a small machine. There is no compiled code: a
numba kernel could drop numpy's per-call overhead, but the goal is met without that
dependency.

The image is drawn with ``renderer.draw_image`` after the axes' panes and grid, under
their axis lines, ticks, labels and the title (see ``VolumeImage``). In pdf/svg the axes
and text stay vector and the rendering is one embedded image at the figure's dpi. The last
image is kept, so drawing the same figure again at the same pixel geometry does not render
twice.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist, allow_rasterization
from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec
from matplotlib.transforms import Bbox
from mpl_toolkits.mplot3d import Axes3D

from voxspec.model import VolumePanel
from voxspec.render.common import add_colorbar, colormap, value_range
from voxspec.render.scene3d import finish_axes3d, make_axes3d
from voxspec.volume import VolumeData

LUT_SIZE = 256  # t is quantized to 1/255, as fine as the colormaps and an 8-bit output
SEGMENT_SUBSTEPS = 16  # samples that pre-integrate one ray segment between two slices
SLICES_PER_VOXEL = 2  # ray samples per voxel along the principal axis
MAX_SAMPLES_PER_VOXEL = 8.0  # beyond this, bilinear samples of bilinear samples add nothing
TILE_ROWS, TILE_COLS = 256, 128  # ~32k samples: numpy's per-call cost does not dominate
OPAQUE_TRANSMITTANCE = 1.0 / 1024  # a ray that lets through less than this is finished
OPACITY_CHECK_EVERY = 4  # slices between two "is this tile opaque yet?" checks
MAX_THREADS = 8


# ------------------------------------------------------------------------- the panel


def draw(
    panel: VolumePanel, volumes: dict[str, VolumeData], fig: Figure, slot: SubplotSpec
) -> Axes3D:
    """Draw ``volumes[panel.volume]`` as a volume rendering into ``slot``."""
    data = volumes[panel.volume].data
    cmap = colormap(panel.colormap)
    vmin, vmax = value_range(data, panel.range)
    artist = VolumeImage(
        lut_codes(data, vmin, vmax),
        cube=panel.cube,
        colormap=cmap,
        opacity=panel.opacity,
        mode=panel.mode,
    )
    ax = make_axes3d(fig, slot, panel)
    artist.add_to(ax)
    finish_axes3d(ax, panel, tuple(panel.cube * n for n in data.shape))
    if panel.colorbar:
        add_colorbar(fig, ax, panel.colormap, vmin, vmax, panel.colorbar_label)
    return ax


def lut_codes(data: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """float32 volume of lookup-table positions: t * (LUT_SIZE - 1) + 0.5, and 0 where the
    voxel is empty. The 0.5 makes truncation to an integer round to the nearest entry, and
    interpolation between codes is interpolation between values (the map is linear)."""
    data = np.asarray(data)
    scale = (LUT_SIZE - 1) / (vmax - vmin)
    codes = np.subtract(data, vmin, dtype=np.float32)
    codes *= np.float32(scale)
    np.clip(codes, 0, LUT_SIZE - 1, out=codes)
    codes += np.float32(0.5)
    codes[(data == 0) | ~np.isfinite(data)] = 0.0
    return codes


# ----------------------------------------------------------------- transfer functions


@dataclass(frozen=True)
class Transfer:
    """Colour and light left through, per lookup entry (premultiplied colour)."""

    premultiplied: np.ndarray  # (3, entries) float32: alpha * colour
    transmittance: np.ndarray  # (entries,) float32: 1 - alpha


def voxel_opacity(t: np.ndarray, opacity: float) -> np.ndarray:
    """Fraction of the light absorbed over one voxel length (the tutorial's alpha = t)."""
    return np.minimum(1.0, opacity * t)


def lut_values() -> np.ndarray:
    return np.linspace(0.0, 1.0, LUT_SIZE)


def segment_table(colormap, opacity: float, step: float) -> Transfer:
    """Pre-integrated segments: entry ``front * LUT_SIZE + back`` is a ray segment of
    ``step`` voxel lengths along which t goes linearly from ``front`` to ``back``,
    composited from SEGMENT_SUBSTEPS samples. A thin bright layer that falls between two
    slices is still crossed by the segment's ramp, so it cannot flicker in and out from one
    ray to the next (the "wood grain" of one lookup per slice)."""
    t = lut_values()
    front, back = t[:, None], t[None, :]
    colour = np.zeros((LUT_SIZE, LUT_SIZE, 3))
    through = np.ones((LUT_SIZE, LUT_SIZE))
    for m in range(SEGMENT_SUBSTEPS):
        here = front + (back - front) * ((m + 0.5) / SEGMENT_SUBSTEPS)
        alpha = 1.0 - (1.0 - voxel_opacity(here, opacity)) ** (step / SEGMENT_SUBSTEPS)
        colour += (through * alpha)[..., None] * colormap(here)[..., :3]
        through *= 1.0 - alpha
    return _stable(colour.reshape(-1, 3).T, through.reshape(-1))


def peak_table(colormap, opacity: float) -> Transfer:
    """For ``mip``: colour(t) with alpha = min(1, opacity * t), per entry t."""
    t = lut_values()
    alpha = voxel_opacity(t, opacity)
    return _stable(colormap(t)[:, :3].T * alpha, 1.0 - alpha)


def _stable(premultiplied: np.ndarray, transmittance: np.ndarray) -> Transfer:
    """float32 tables rounded to 1e-7: a last-bit difference in pow or the colormap between
    machines then cannot change a table entry, and so cannot change an output byte."""
    return Transfer(
        np.round(premultiplied, 7).astype(np.float32), np.round(transmittance, 7).astype(np.float32)
    )


# --------------------------------------------------------------------- the projection


@dataclass(frozen=True)
class PixelRect:
    """Output pixels [x0, x0 + width) x [y0, y0 + height), y up (display coordinates)."""

    x0: int
    y0: int
    width: int
    height: int

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0


def voxel_to_pixel(ax: Axes3D, cube: float, magnification: float) -> np.ndarray:
    """4x4 matrix from homogeneous voxel coordinates (a voxel is a unit cube, the grid
    starts at 0) to (X w, Y w, Z w, w): X, Y output pixels, Z matplotlib's depth (larger
    is farther). Valid during the axes' draw, when ``ax.M`` holds the current view."""
    display = ax.transData.get_affine().get_matrix() * magnification
    to_pixels = np.eye(4)
    to_pixels[:2, :2] = display[:2, :2]
    to_pixels[:2, 3] = display[:2, 2]
    return to_pixels @ ax.M @ np.diag([cube, cube, cube, 1.0])


def _round_significant(matrix: np.ndarray, digits: int = 10) -> np.ndarray:
    """The same view drawn through another backend (points * magnification instead of
    pixels) gives matrices equal to ~1e-15; rounding makes them equal, so the image and
    the cache hit do not depend on which format was saved first."""
    return np.array([float(f"{x:.{digits}g}") for x in matrix.ravel()]).reshape(matrix.shape)


def project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, 3) voxel coordinates -> (n, 3) (X, Y, Z)."""
    h = np.c_[points, np.ones(len(points))] @ matrix.T
    return h[:, :3] / h[:, 3:]


def volume_rect(matrix: np.ndarray, shape: tuple[int, int, int], clip: PixelRect) -> PixelRect:
    """Pixels covered by the grid's bounding box, inside ``clip``."""
    corners = np.array(np.meshgrid(*[[0, n] for n in shape], indexing="ij")).reshape(3, -1).T
    h = np.c_[corners, np.ones(8)] @ matrix.T
    if np.any(h[:, 3] <= 0):  # a corner behind the eye: the box has no bounded image
        return clip
    xy = h[:, :2] / h[:, 3:]
    x0 = max(clip.x0, math.floor(xy[:, 0].min()))
    y0 = max(clip.y0, math.floor(xy[:, 1].min()))
    x1 = min(clip.x0 + clip.width, math.ceil(xy[:, 0].max()))
    y1 = min(clip.y0 + clip.height, math.ceil(xy[:, 1].max()))
    return PixelRect(x0, y0, x1 - x0, y1 - y0)


# ------------------------------------------------------------------ shear-warp set-up


@dataclass(frozen=True)
class ShearWarp:
    """How the slices across ``axis`` map onto the intermediate image and it onto pixels.

    The slice at depth w along ``axis`` (voxel centres are at k + 0.5) maps to the
    reference slice's plane by q = (p + delta * shift) / (1 + delta * shift[2]) with
    delta = w - reference, p its in-plane voxel coordinates. Intermediate sample (r, c) sits at
    ``origin + ((r, c) + 0.5) / density`` in that plane; ``plane_to_pixel`` maps the plane
    to output pixels.
    """

    axis: int
    in_plane: tuple[int, int]
    forward: bool  # the slice at depth 0 is the nearest one
    reference: float
    shift: np.ndarray  # (3,)
    plane_to_pixel: np.ndarray  # (3, 3)
    origin: np.ndarray  # (2,)
    density: np.ndarray  # (2,) samples per voxel length
    size: tuple[int, int]  # intermediate rows, columns
    step: float  # ray length between two voxel slices, in voxel lengths


def viewing_ray(matrix: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Direction (voxel coordinates) of the ray through ``point``: both pixel coordinates
    are constant along it, so it is orthogonal to the gradients of X w - X w0 and
    Y w - Y w0."""
    xy = project(matrix, point[None])[0]
    row_x = matrix[0, :3] - xy[0] * matrix[3, :3]
    row_y = matrix[1, :3] - xy[1] * matrix[3, :3]
    return np.cross(row_x, row_y)


def plan_shear_warp(
    matrix: np.ndarray, shape: tuple[int, int, int], rect: PixelRect
) -> ShearWarp | None:
    """Factor the view for this grid and output rectangle; None if nothing is visible."""
    shape_arr = np.array(shape, dtype=float)
    ray = viewing_ray(matrix, shape_arr / 2)
    axis = int(np.argmax(np.abs(ray)))
    in_plane = tuple(a for a in range(3) if a != axis)
    step = float(np.linalg.norm(ray) / abs(ray[axis]))
    n = shape[axis]
    reference = n / 2

    columns = matrix[[0, 1, 3]]  # X w, Y w, w
    plane_to_pixel = np.column_stack(
        [
            columns[:, in_plane[0]],
            columns[:, in_plane[1]],
            columns[:, 3] + reference * columns[:, axis],
        ]
    )
    shift = np.linalg.solve(plane_to_pixel, columns[:, axis])
    forward = _nearest_first(matrix, shape, axis)

    lo, hi = _footprint(shape, in_plane, n, reference, shift)
    view_lo, view_hi = _plane_window(plane_to_pixel, rect)
    lo, hi = np.maximum(lo, view_lo), np.minimum(hi, view_hi)
    if np.any(hi <= lo):
        return None
    density = _sample_density(plane_to_pixel, (lo + hi) / 2)
    size = tuple(int(s) for s in np.ceil((hi - lo) * density))
    return ShearWarp(
        axis, in_plane, forward, reference, shift, plane_to_pixel, lo, density, size, step
    )


def _nearest_first(matrix: np.ndarray, shape, axis: int) -> bool:
    """Is the first slice across ``axis`` nearer the eye than the last one?"""
    centre = np.array(shape, dtype=float) / 2
    first, last = centre.copy(), centre.copy()
    first[axis], last[axis] = 0.5, shape[axis] - 0.5
    depth = project(matrix, np.array([first, last]))[:, 2]
    return bool(depth[0] <= depth[1])


def _footprint(shape, in_plane, n: int, reference: float, shift: np.ndarray):
    """Bounding box, in the reference plane, of all slices (valid scale only)."""
    sides = np.array([shape[in_plane[0]], shape[in_plane[1]]], dtype=float)
    points = []
    for w in (0.0, float(n)):
        delta = w - reference
        scale = 1 + delta * shift[2]
        if scale <= 0:
            continue
        for corner in ((0, 0), (sides[0], 0), (0, sides[1]), sides):
            points.append((np.asarray(corner) + delta * shift[:2]) / scale)
    if not points:
        return np.zeros(2), np.zeros(2)
    points = np.array(points)
    return points.min(axis=0), points.max(axis=0)


def _plane_window(plane_to_pixel: np.ndarray, rect: PixelRect):
    """Bounding box, in the reference plane, of the output rectangle."""
    corners = np.array(
        [
            [x, y, 1.0]
            for x in (rect.x0, rect.x0 + rect.width)
            for y in (rect.y0, rect.y0 + rect.height)
        ]
    )
    h = corners @ np.linalg.inv(plane_to_pixel).T
    if np.any(h[:, 2] <= 0):
        return np.full(2, -np.inf), np.full(2, np.inf)
    q = h[:, :2] / h[:, 2:]
    return q.min(axis=0), q.max(axis=0)


def _sample_density(plane_to_pixel: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Samples per voxel length along each plane axis so that one sample is about one
    output pixel there (the pixel length of the homography's derivative)."""
    h = plane_to_pixel @ np.array([at[0], at[1], 1.0])
    pixel = h[:2] / h[2]
    jacobian = (plane_to_pixel[:2, :2] - np.outer(pixel, plane_to_pixel[2, :2])) / h[2]
    return np.clip(np.hypot(jacobian[0], jacobian[1]), 1.0, MAX_SAMPLES_PER_VOXEL)


# --------------------------------------------------------------- per-slice sampling


@dataclass(frozen=True)
class AxisSampling:
    """For one in-plane axis and every slice: which voxels and weights each intermediate
    row (or column) interpolates, the range of rows that fall on the grid, and which part
    of the ray segment ending at the slice (from the slice before it along the ray) lies
    within the grid's extent along this axis."""

    low: np.ndarray  # (slices, samples) intp: first voxel of the bilinear pair
    weight: np.ndarray  # (slices, samples) float32: weight of the second voxel
    start: np.ndarray  # (slices,) first sample on the grid
    stop: np.ndarray  # (slices,) one past the last sample on the grid
    enter: np.ndarray  # (slices, samples): the segment is inside from this fraction ...
    leave: np.ndarray  # (slices, samples): ... to this one
    partial: np.ndarray  # (slices, samples) bool: the segment crosses the grid's side


def axis_sampling(plan: ShearWarp, which: int, length: int, depths: np.ndarray) -> AxisSampling:
    """Sample positions along in-plane axis ``which`` (0: rows, 1: columns), ``length``
    voxels long, for the slices at ``depths`` all at once."""
    delta = depths - plan.reference
    scale = 1 + delta * plan.shift[2]
    scale = np.where(scale > 0, scale, np.nan)  # slices behind the eye: never sampled
    plane = plan.origin[which] + (np.arange(plan.size[which]) + 0.5) / plan.density[which]
    source = plane[None, :] * scale[:, None] - delta[:, None] * plan.shift[which]
    inside = (source >= 0) & (source <= length)  # monotonic along each row of `source`
    start = np.where(inside.any(axis=1), np.argmax(inside, axis=1), 0)
    stop = np.where(inside.any(axis=1), inside.shape[1] - np.argmax(inside[:, ::-1], axis=1), 0)
    centred = np.clip(np.nan_to_num(source) - 0.5, 0, length - 1)
    low = np.minimum(np.floor(centred), max(length - 2, 0)).astype(np.intp)
    weight = (centred - low).astype(np.float32)
    enter, leave = _inside_part(source, length, plan.forward)
    partial = (leave > enter) & ((enter > 0) | (leave < 1))
    return AxisSampling(low, weight, start, stop, enter, leave, partial)


def _inside_part(source: np.ndarray, length: int, forward: bool):
    """[enter, leave]: the fractions of each ray segment (from the previous slice along
    the ray to this one) between which its coordinate ``source`` is within [0, length]."""
    previous = source.copy()  # the first slice along the ray ends no segment: moved = 0
    if forward:
        previous[1:] = source[:-1]
    else:
        previous[:-1] = source[1:]
    moved = source - previous
    still = ~(np.abs(moved) > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        low_side = np.where(still, 0.0, (0 - previous) / moved)
        high_side = np.where(still, 0.0, (length - previous) / moved)
    enter = np.clip(np.minimum(low_side, high_side), 0, 1)
    leave = np.clip(np.maximum(low_side, high_side), 0, 1)
    inside = (source >= 0) & (source <= length)
    leave = np.where(still, inside, leave)
    return np.nan_to_num(enter), np.nan_to_num(leave)


# ------------------------------------------------------------------ the prepared grid


@dataclass(frozen=True)
class Slab:
    """The volume's codes as slices across ``axis``, ready for sampling.

    Slices lie every 1 / SLICES_PER_VOXEL voxel from the grid's front face to its back
    face, each the linear interpolation in depth of the two nearest voxel slices (clamped
    to the edge one, as voxel cubes reach the faces): bilinear samples of them are
    trilinear samples of the volume, at the cost of bilinear lookups. Each slice is padded
    by one empty row and column (the second voxel of a bilinear pair on a one-voxel-wide
    grid). ``coarse`` bounds the visible voxels of each slice.
    """

    codes: np.ndarray  # (slices, rows + 1, cols + 1) float32, C-contiguous
    depths: np.ndarray  # (slices,) depth of each slice along the axis, in voxels
    row_any: np.ndarray  # (slices, rows) bool: the row has a visible voxel
    col_first: np.ndarray  # (slices, rows) first visible column (cols if none)
    col_last: np.ndarray  # (slices, rows) last visible column (-1 if none)
    coarse: np.ndarray  # (slices, 4) first row, last row, first col, last col (-1: none)


def make_slab(codes: np.ndarray, axis: int) -> Slab:
    moved = np.moveaxis(codes, axis, 0)
    n, rows, cols = moved.shape
    depths = np.arange(SLICES_PER_VOXEL * n + 1) / SLICES_PER_VOXEL
    centred = np.clip(depths - 0.5, 0, n - 1)
    low = np.minimum(np.floor(centred), max(n - 2, 0)).astype(np.intp)
    high = np.minimum(low + 1, n - 1)
    weight = (centred - low).astype(np.float32)

    padded = np.empty((len(depths), rows + 1, cols + 1), dtype=np.float32)
    padded[:, rows, :] = 0
    padded[:, :, cols] = 0
    for k in range(len(depths)):
        out = padded[k, :rows, :cols]
        if weight[k] == 0:
            out[...] = moved[low[k]]
        else:
            np.multiply(moved[high[k]], weight[k], out=out)
            out += moved[low[k]] * (1 - weight[k])

    visible = moved >= 1.0  # code of LUT entry 1 or more: t > 0, alpha > 0
    row_any = visible.any(axis=2)
    col_first = np.where(row_any, np.argmax(visible, axis=2), cols)
    col_last = np.where(row_any, cols - 1 - np.argmax(visible[:, :, ::-1], axis=2), -1)
    # a slice in between is visible only where one of its two voxel slices is
    mixed = weight > 0
    row_any = row_any[low] | (row_any[high] & mixed[:, None])
    col_first = np.where(
        mixed[:, None], np.minimum(col_first[low], col_first[high]), col_first[low]
    )
    col_last = np.where(mixed[:, None], np.maximum(col_last[low], col_last[high]), col_last[low])
    return Slab(padded, depths, row_any, col_first, col_last, _coarse(row_any, col_first, col_last))


def _coarse(row_any, col_first, col_last) -> np.ndarray:
    rows = row_any.shape[1]
    anything = row_any.any(axis=1)
    first_row = np.argmax(row_any, axis=1)
    last_row = rows - 1 - np.argmax(row_any[:, ::-1], axis=1)
    coarse = np.stack([first_row, last_row, col_first.min(axis=1), col_last.max(axis=1)], 1)
    coarse[~anything] = -1
    return coarse


# ----------------------------------------------------------------------- compositing


@dataclass(frozen=True)
class Window:
    """Intermediate-image rows [r0, r1) x columns [c0, c1)."""

    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows[1] - self.rows[0], self.cols[1] - self.cols[0]

    @property
    def where(self) -> tuple[slice, slice]:
        return slice(*self.rows), slice(*self.cols)


def tiles(size: tuple[int, int]) -> list[Window]:
    return [
        Window((r, min(r + TILE_ROWS, size[0])), (c, min(c + TILE_COLS, size[1])))
        for r in range(0, size[0], TILE_ROWS)
        for c in range(0, size[1], TILE_COLS)
    ]


class Compositor:
    """Runs the slices through the tiles of the intermediate image, front to back.

    A tile is narrow and each slice updates a band of its rows across the whole tile
    width: then every array the loop touches is contiguous, which halves the cost of
    numpy's gathers and quarters that of its arithmetic. ``composite`` fills ``colour``
    (3, rows, cols) premultiplied and ``transmittance``; ``mip`` fills ``peak`` with the
    largest code along each ray.
    """

    def __init__(self, slab: Slab, plan: ShearWarp):
        self.slab, self.plan = slab, plan
        self.n_rows, self.n_cols = slab.codes.shape[1] - 1, slab.codes.shape[2] - 1
        self.rows = axis_sampling(plan, 0, self.n_rows, slab.depths)
        self.cols = axis_sampling(plan, 1, self.n_cols, slab.depths)
        self.order = np.arange(len(slab.depths))
        if not plan.forward:
            self.order = self.order[::-1]
        self.coarse = [self._slice_window(k) for k in range(len(slab.depths))]
        self.edges = self._touches_sides()

    def _touches_sides(self) -> np.ndarray:
        """(slices,) bool: can a segment ending at the slice cross a side of the grid
        with something visible next to it? (Only then does ``partial_segments`` work.)"""
        slab = self.slab
        near_rows = slab.row_any[:, :2].any(axis=1) | slab.row_any[:, -2:].any(axis=1)
        near_cols = (slab.col_first.min(axis=1) <= 1) | (
            slab.col_last.max(axis=1) >= self.n_cols - 2
        )
        near = near_rows | near_cols
        near[1:] |= near[:-1].copy()  # the segment's other end is a neighbouring slice
        near[:-1] |= near[1:].copy()
        return near

    def _slice_window(self, k: int) -> Window | None:
        """The intermediate samples that can see a visible voxel of slice k."""
        first_row, last_row, first_col, last_col = (int(v) for v in self.slab.coarse[k])
        if first_row < 0:
            return None
        rows = self._samples_seeing(self.rows, k, first_row, last_row)
        cols = self._samples_seeing(self.cols, k, first_col, last_col)
        return Window(rows, cols) if rows[1] > rows[0] and cols[1] > cols[0] else None

    @staticmethod
    def _samples_seeing(axis: AxisSampling, k: int, first: int, last: int) -> tuple[int, int]:
        # a sample interpolates voxels low and low + 1: it sees voxels [first - 1, last]
        low = axis.low[k]
        start = max(int(axis.start[k]), int(np.searchsorted(low, first - 1)))
        stop = min(int(axis.stop[k]), int(np.searchsorted(low, last, "right")))
        return start, stop

    def visible_rows(self, k: int, tile: Window) -> tuple[int, int] | None:
        """The band of ``tile``'s rows where slice k can have a visible sample."""
        coarse = self.coarse[k]
        if coarse is None:
            return None
        r0, r1 = max(tile.rows[0], coarse.rows[0]), min(tile.rows[1], coarse.rows[1])
        if r1 <= r0 or max(tile.cols[0], coarse.cols[0]) >= min(tile.cols[1], coarse.cols[1]):
            return None
        # are the voxels these rows sample visible within the tile's columns?
        voxel_rows = slice(self.rows.low[k, r0], self.rows.low[k, r1 - 1] + 2)
        first = int(self.slab.col_first[k, voxel_rows].min())
        last = int(self.slab.col_last[k, voxel_rows].max())
        c0, c1 = self._samples_seeing(self.cols, k, first, last)
        return (r0, r1) if max(c0, tile.cols[0]) < min(c1, tile.cols[1]) else None

    def bands(self, tile: Window):
        """(slice, rows) front to back, where the ray segment ending at that slice is
        visible: the slice or the one before it has a visible sample."""
        before = None
        for k in self.order:
            here = self.visible_rows(k, tile)
            band = here if before is None else _union(before, here)
            before = here
            if band is not None:
                yield k, band

    def sample(self, k: int, rows: tuple[int, int], cols: tuple[int, int], out) -> None:
        """Bilinear codes of slice k at intermediate samples rows x cols, into ``out``
        (0 where they lie off the slice)."""
        r0, r1 = max(rows[0], self.rows.start[k]), min(rows[1], self.rows.stop[k])
        c0, c1 = max(cols[0], self.cols.start[k]), min(cols[1], self.cols.stop[k])
        if (r0, r1, c0, c1) != (*rows, *cols):
            out[...] = 0
            if r1 <= r0 or c1 <= c0:
                return
            out = out[r0 - rows[0] : r1 - rows[0], c0 - cols[0] : c1 - cols[0]]
        first_voxel = self.rows.low[k, r0]
        low_r = self.rows.low[k, r0:r1] - first_voxel
        weight_r = self.rows.weight[k, r0:r1, None]
        low_c, weight_c = self.cols.low[k, c0:c1], self.cols.weight[k, c0:c1]
        block = self.slab.codes[k, first_voxel : first_voxel + low_r[-1] + 2]
        # along the columns first, on the few voxel rows involved ...
        left = block.take(low_c, axis=1)
        along = block.take(low_c + 1, axis=1)
        along -= left
        along *= weight_c
        along += left
        # ... then along the rows, at full sample resolution
        np.take(along, low_r, axis=0, out=out)
        rise = np.diff(along, axis=0)
        gathered = rise.take(low_r, axis=0, mode="clip")  # weight 0 where clipped
        gathered *= weight_r
        out += gathered

    def composite(self, tile: Window, transfer: Transfer, colour, transmittance) -> None:
        height, width = tile.shape
        tile_colour = np.zeros((3, height, width), dtype=np.float32)
        tile_through = np.ones((height, width), dtype=np.float32)
        # LUT index of the previous slice's sample, times LUT_SIZE; 0 (empty) where the
        # previous slice had nothing visible, which holds outside every band below
        front = np.zeros((height, width), dtype=np.intp)
        scratch = Scratch(height * width)
        for count, (k, (r0, r1)) in enumerate(self.bands(tile)):
            band = slice(r0 - tile.rows[0], r1 - tile.rows[0])
            value, back, segment, term = scratch.arrays((r1 - r0, width))
            self.sample(k, (r0, r1), tile.cols, value)
            np.copyto(back, value, casting="unsafe")  # truncation: codes carry +0.5
            if k == self.order[0]:  # the front face: no segment ends here
                np.multiply(back, LUT_SIZE, out=front[band])
                continue
            np.add(front[band], back, out=segment)  # = front * LUT_SIZE + back
            part = self.partial_segments(k, (r0, r1), tile.cols, segment, transfer)
            through = tile_through[band]
            for channel in range(3):
                np.take(transfer.premultiplied[channel], segment, out=term, mode="clip")
                if part is not None:
                    term.reshape(-1)[part.samples] *= part.gain
                term *= through
                tile_colour[channel, band] += term
            np.take(transfer.transmittance, segment, out=term, mode="clip")
            if part is not None:
                term.reshape(-1)[part.samples] = part.transmittance
            through *= term
            np.multiply(back, LUT_SIZE, out=front[band])
            if count % OPACITY_CHECK_EVERY == 0 and tile_through.max() < OPAQUE_TRANSMITTANCE:
                break
        colour[(slice(None), *tile.where)] = tile_colour
        transmittance[tile.where] = tile_through

    def partial_segments(self, k, rows, cols, segment, transfer) -> Partial | None:
        """Fix the segments of this band that cross a side of the grid.

        Such a segment has one end outside (sampled 0) and is inside for only a fraction
        f of its length. Taken whole, it would ramp from nothing over the full step, so
        where a ray enters through a side face depends on which slice comes next: the
        face shows the slices as stripes. Instead the segment is the inside end's value,
        constant, over f of the step: its lookup moves to the table's diagonal and its
        opacity and colour are rescaled for the shorter length. The value is the slice's,
        at the nearest point on the grid (where the ray crosses the side)."""
        if not self.edges[k]:
            return None
        on_rows = self.rows.partial[k, rows[0] : rows[1]]
        on_cols = self.cols.partial[k, cols[0] : cols[1]]
        if not (on_rows.any() or on_cols.any()):
            return None
        samples = np.flatnonzero(on_rows[:, None] | on_cols[None, :])
        row, col = np.divmod(samples, cols[1] - cols[0])
        row, col = row + rows[0], col + cols[0]
        enter = np.maximum(self.rows.enter[k, row], self.cols.enter[k, col])
        leave = np.minimum(self.rows.leave[k, row], self.cols.leave[k, col])
        inside = np.clip(leave - enter, 0, 1)
        diagonal = self._clamped_codes(k, row, col).astype(np.intp) * (LUT_SIZE + 1)
        segment.reshape(-1)[samples] = diagonal
        whole = transfer.transmittance[diagonal].astype(np.float64)
        part = whole**inside
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(whole < 1, (1 - part) / (1 - whole), inside)
        return Partial(samples, gain.astype(np.float32), part.astype(np.float32))

    def _clamped_codes(self, k: int, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Bilinear codes of slice k at the given samples, clamped onto the grid."""
        low_r, weight_r = self.rows.low[k, row], self.rows.weight[k, row]
        low_c, weight_c = self.cols.low[k, col], self.cols.weight[k, col]
        plane = self.slab.codes[k]
        top = plane[low_r, low_c] + weight_c * (plane[low_r, low_c + 1] - plane[low_r, low_c])
        bottom = plane[low_r + 1, low_c] + weight_c * (
            plane[low_r + 1, low_c + 1] - plane[low_r + 1, low_c]
        )
        return top + weight_r * (bottom - top)

    def mip(self, tile: Window, peak) -> None:
        height, width = tile.shape
        tile_peak = np.zeros((height, width), dtype=np.float32)
        scratch = Scratch(height * width)
        for k in self.order:
            rows = self.visible_rows(k, tile)
            if rows is not None:
                value = scratch.arrays((rows[1] - rows[0], width))[0]
                self.sample(k, rows, tile.cols, value)
                band = tile_peak[rows[0] - tile.rows[0] : rows[1] - tile.rows[0]]
                np.maximum(band, value, out=band)
        peak[tile.where] = tile_peak


@dataclass(frozen=True)
class Partial:
    """Samples (flat indices into a band) whose segment is partly off the grid."""

    samples: np.ndarray
    gain: np.ndarray  # colour factor for the shorter segment
    transmittance: np.ndarray  # light let through by the shorter segment


def _union(a: tuple[int, int], b: tuple[int, int] | None) -> tuple[int, int]:
    return a if b is None else (min(a[0], b[0]), max(a[1], b[1]))


class Scratch:
    """Contiguous work arrays of any shape up to ``size`` elements, reused per band."""

    def __init__(self, size: int):
        self.value = np.empty(size, np.float32)
        self.back = np.empty(size, np.intp)
        self.segment = np.empty(size, np.intp)
        self.term = np.empty(size, np.float32)

    def arrays(self, shape: tuple[int, int]):
        n = shape[0] * shape[1]
        return tuple(a[:n].reshape(shape) for a in (self.value, self.back, self.segment, self.term))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


def _run(tasks, function) -> None:
    """Run ``function`` over ``tasks`` on a few threads (results go to disjoint arrays,
    so the outcome does not depend on the scheduling)."""
    workers = min(MAX_THREADS, _cpus(), len(tasks))
    if workers <= 1:
        for task in tasks:
            function(task)
        return
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(function, tasks):
            pass


def intermediate_image(
    slab: Slab, plan: ShearWarp, mode: str, colormap, opacity: float
) -> np.ndarray:
    """(rows, cols, 4) premultiplied RGBA of the volume in the reference plane."""
    compositor = Compositor(slab, plan)
    work = tiles(plan.size)
    rgba = np.empty((*plan.size, 4), dtype=np.float32)
    if mode == "mip":
        peak = np.empty(plan.size, dtype=np.float32)
        _run(work, lambda tile: compositor.mip(tile, peak))
        transfer = peak_table(colormap, opacity)
        index = peak.astype(np.intp)
        for channel in range(3):
            rgba[..., channel] = transfer.premultiplied[channel][index]
        rgba[..., 3] = 1.0 - transfer.transmittance[index]
        return rgba
    transfer = segment_table(colormap, opacity, plan.step / SLICES_PER_VOXEL)
    colour = np.empty((3, *plan.size), dtype=np.float32)
    transmittance = np.empty(plan.size, dtype=np.float32)
    _run(work, lambda tile: compositor.composite(tile, transfer, colour, transmittance))
    rgba[..., :3] = np.moveaxis(colour, 0, -1)
    rgba[..., 3] = 1.0 - transmittance
    return rgba


# --------------------------------------------------------------------------- warping


def warp_to_pixels(rgba: np.ndarray, plan: ShearWarp, rect: PixelRect) -> np.ndarray:
    """(height, width, 4) premultiplied RGBA of the output pixels in ``rect`` (row 0 at the
    bottom, as ``draw_image`` takes it): each pixel centre mapped back into the
    intermediate image and sampled bilinearly (transparent outside it)."""
    rows, cols = plan.size
    padded = np.zeros((rows + 2, cols + 2, 4), dtype=np.float32)
    padded[1:-1, 1:-1] = rgba
    flat = padded.reshape(-1, 4)
    out = np.empty((rect.height, rect.width, 4), dtype=np.float32)
    to_plane = np.linalg.inv(plan.plane_to_pixel)
    x = rect.x0 + np.arange(rect.width) + 0.5

    def band(start: int) -> None:
        y = rect.y0 + np.arange(start, min(start + TILE_ROWS, rect.height)) + 0.5
        h = [
            to_plane[i, 0] * x[None, :] + to_plane[i, 1] * y[:, None] + to_plane[i, 2]
            for i in range(3)
        ]
        with np.errstate(divide="ignore", invalid="ignore"):
            fr = (h[0] / h[2] - plan.origin[0]) * plan.density[0] - 0.5
            fc = (h[1] / h[2] - plan.origin[1]) * plan.density[1] - 0.5
        fr = np.clip(np.nan_to_num(fr, nan=-1.0), -1.0, rows)
        fc = np.clip(np.nan_to_num(fc, nan=-1.0), -1.0, cols)
        fr[h[2] <= 0] = -1.0  # behind the eye
        r0 = np.minimum(np.floor(fr), rows - 1)
        c0 = np.minimum(np.floor(fc), cols - 1)
        wr = (fr - r0).astype(np.float32)[..., None]
        wc = (fc - c0).astype(np.float32)[..., None]
        corner = ((r0 + 1) * (cols + 2) + (c0 + 1)).astype(np.intp)
        top = flat.take(corner, axis=0)
        top += wc * (flat.take(corner + 1, axis=0) - top)
        bottom = flat.take(corner + cols + 2, axis=0)
        bottom += wc * (flat.take(corner + cols + 3, axis=0) - bottom)
        top += wr * (bottom - top)
        out[start : start + len(y)] = top

    _run(list(range(0, rect.height, TILE_ROWS)), band)
    return out


def to_straight_rgba8(premultiplied: np.ndarray) -> np.ndarray:
    """uint8 straight-alpha RGBA, what matplotlib renderers blend."""
    alpha = premultiplied[..., 3:]
    with np.errstate(divide="ignore", invalid="ignore"):
        rgb = np.where(alpha > 0, premultiplied[..., :3] / alpha, 0.0)
    straight = np.concatenate([rgb, alpha], axis=-1)
    return (np.clip(straight, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------- artist


@dataclass(frozen=True)
class Rendered:
    """The last image an artist drew: its projection, where it went and its pixels."""

    matrix: np.ndarray  # voxel -> pixel, as used
    rect: PixelRect
    rgba: np.ndarray  # (height, width, 4) uint8, straight alpha, row 0 at the bottom
    magnification: float


class VolumeImage(Artist):
    """A volume in an ``Axes3D``, rendered at draw time with the axes' current view.

    Use ``add_to(ax)``: the image is then drawn after the axes' panes and grid and before
    their axis lines, ticks and labels, so those stay on top where the volume reaches the
    box's edges. Axes3D draws those in one pass before its other artists and has no hook
    for it, so ``add_to`` wraps the z axis's ``draw_grid`` (the last step before the axis
    lines) of this one axes; with the axes hidden, or should matplotlib change that pass,
    the image is drawn with the other artists, where ``ax.voxels`` draws its cubes.
    """

    def __init__(self, codes: np.ndarray, *, cube: float, colormap, opacity: float, mode: str):
        super().__init__()
        self._codes = codes
        self._cube = float(cube)
        self._colormap = colormap
        self._opacity = float(opacity)
        self._mode = mode
        self._slab: tuple[int, Slab] | None = None  # the last one only: it is 2x the volume
        self._drawn_under_axis_lines = False
        self.last: Rendered | None = None
        self.set_zorder(2.5)  # with the other artists: where ax.voxels' collections go

    def add_to(self, ax: Axes3D) -> None:
        ax.add_artist(self)
        draw_grid = getattr(ax.zaxis, "draw_grid", None)
        if draw_grid is None:
            return

        def draw_grid_then_volume(renderer):
            draw_grid(renderer)
            if self.get_visible():
                self.draw_image(renderer)
                self._drawn_under_axis_lines = True

        ax.zaxis.draw_grid = draw_grid_then_volume

    def slab(self, axis: int) -> Slab:
        if self._slab is None or self._slab[0] != axis:
            self._slab = None  # free the old one before making the new one
            self._slab = (axis, make_slab(self._codes, axis))
        return self._slab[1]

    def render(self, matrix: np.ndarray, rect: PixelRect) -> np.ndarray:
        """uint8 RGBA of the pixels in ``rect`` for the view ``matrix``."""
        plan = plan_shear_warp(matrix, self._codes.shape, rect)
        if plan is None:
            return np.zeros((rect.height, rect.width, 4), dtype=np.uint8)
        rgba = intermediate_image(
            self.slab(plan.axis), plan, self._mode, self._colormap, self._opacity
        )
        return to_straight_rgba8(warp_to_pixels(rgba, plan, rect))

    @allow_rasterization
    def draw(self, renderer) -> None:
        if self._drawn_under_axis_lines:  # already drawn in this axes draw
            self._drawn_under_axis_lines = False
        elif self.get_visible():
            self.draw_image(renderer)
        self.stale = False

    def draw_image(self, renderer) -> None:
        """Render for the axes' current view (unless the last image still fits) and hand
        the image to ``renderer``."""
        magnification = renderer.get_image_magnification()
        matrix = _round_significant(voxel_to_pixel(self.axes, self._cube, magnification))
        rect = volume_rect(matrix, self._codes.shape, _pixel_box(self.axes, magnification))
        if rect.empty:
            return
        last = self.last
        if last is None or last.rect != rect or not np.array_equal(last.matrix, matrix):
            last = Rendered(matrix, rect, self.render(matrix, rect), magnification)
            self.last = last
        gc = renderer.new_gc()
        self._set_gc_clip(gc)
        renderer.draw_image(gc, rect.x0 / magnification, rect.y0 / magnification, last.rgba)
        gc.restore()


def _pixel_box(ax: Axes3D, magnification: float) -> PixelRect:
    """The axes' box in output pixels, inside the figure (rounded to 1e-6 px first, so
    the same box through another backend gives the same integers)."""
    box = Bbox.intersection(ax.bbox, ax.get_figure(root=True).bbox) or ax.bbox
    x0, y0, x1, y1 = (round(v * magnification, 6) for v in box.extents)
    x0, y0 = math.floor(x0), math.floor(y0)
    return PixelRect(x0, y0, math.ceil(x1) - x0, math.ceil(y1) - y0)
