"""The ``voxels`` panel: the tutorial's ``ax.voxels`` figure, without its per-voxel loop.

matplotlib's ``Axes3D.voxels`` walks the grid in Python and makes one ``Poly3DCollection``
per voxel; at draw time the axes sort those collections by their nearest vertex and each
collection sorts its own faces by mean depth. That takes minutes at the tutorial's 50^3.

Here the faces of every drawn voxel are built once with numpy and held by one collection,
``VoxelFaces``. At draw time it projects the voxel corners with the axes' own projection
matrix, orders the faces exactly as matplotlib would paint its per-voxel collections, and
hands them to the renderer's path-collection call in bounded chunks. Axes, panes, grid,
ticks and labels stay matplotlib's own; the voxel layer is rasterized in pdf/svg.

Two entry points:

- ``draw(panel, volumes, fig, slot)``: the panel renderer the build pipeline calls;
- ``add_voxels(ax, filled, facecolors, ...)``: the same drawing from plain arrays, a
  stand-in for ``ax.voxels`` (used by the fidelity tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from matplotlib.artist import allow_rasterization
from matplotlib.collections import Collection
from matplotlib.colors import LightSource, to_rgba
from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec
from matplotlib.path import Path
from mpl_toolkits.mplot3d import Axes3D

from voxspec.errors import UserError
from voxspec.model import VoxelsPanel
from voxspec.render.common import add_colorbar, colormap, value_range
from voxspec.render.scene3d import finish_axes3d, make_axes3d
from voxspec.volume import VolumeData

FaceMode = Literal["all", "outer"]

# Faces go to the renderer this many at a time, through one pool of this many Path
# objects refilled for every chunk: memory and Path-making time stay bounded whatever
# the number of faces (a Path costs about half a kilobyte and microseconds to make).
CHUNK_FACES = 16_384

# Beyond this many drawn voxels a voxels panel is refused (about 0.5 GB and 30 s at
# 100 dpi); the volume panel is the tool for such data.
MAX_DRAWN_VOXELS = 1_000_000

# Voxels are projected this many at a time (about 1 kB of temporaries each).
BLOCK_VOXELS = 32_768

# A face: four corners and the closing vertex, as PolyCollection makes its polygons.
CLOSED_QUAD = np.array(
    [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY], Path.code_type
)

# The six faces of a voxel, in the order ax.voxels finds them (it scans the faces normal
# to z, then x, then y; the low side of a voxel before its high side). The order matters
# only to break depth ties the same way matplotlib does.
FACE_NORMAL_AXIS = np.array([2, 2, 0, 0, 1, 1])
FACE_HIGH_SIDE = np.array([0, 1, 0, 1, 0, 1])

# The light ax.voxels shades with when it is given none (art3d's default LightSource).
VOXELS_LIGHT = LightSource(azdeg=225, altdeg=19.4712)


def _face_corner_ids() -> np.ndarray:
    """(6, 4) indices into a voxel's 8 corners (id = 4*dx + 2*dy + dz) for each face.

    The in-plane axes follow the cyclic order ax.voxels uses, and a low face runs its
    square backwards, so the vertex order (and with it the outward normal) is the same.
    """
    square = [(0, 0), (1, 0), (1, 1), (0, 1)]
    in_plane = {2: (0, 1), 0: (1, 2), 1: (2, 0)}
    ids = np.empty((6, 4), dtype=np.intp)
    for face, (axis, high) in enumerate(zip(FACE_NORMAL_AXIS, FACE_HIGH_SIDE)):
        u, w = in_plane[int(axis)]
        corners = square if high else square[::-1]
        for vertex, (du, dw) in enumerate(corners):
            offset = [0, 0, 0]
            offset[axis], offset[u], offset[w] = high, du, dw
            ids[face, vertex] = 4 * offset[0] + 2 * offset[1] + offset[2]
    return ids


FACE_CORNER_IDS = _face_corner_ids()


def face_shade(light: LightSource = VOXELS_LIGHT) -> np.ndarray:
    """(6,) brightness factor of each face, as matplotlib shades a polygon with outward
    normal n: 0.3 + 0.7 * (n . light + 1) / 2 (faces turned away keep 30 %)."""
    sign = np.where(FACE_HIGH_SIDE == 1, 1.0, -1.0)
    dot = sign * np.asarray(light.direction)[FACE_NORMAL_AXIS]
    return 0.3 + 0.7 * (dot + 1.0) / 2.0


# ----------------------------------------------------------------------------- artist


class VoxelFaces(Collection):
    """The faces of a set of axis-aligned voxels, drawn back to front in a 3D axes.

    Voxel ``(i, j, k)`` spans ``[pitch*i, pitch*i + cube]`` on x (likewise y, z). With
    ``faces='outer'`` only faces towards an undrawn voxel (or the border) exist, as in
    ``ax.voxels(filled)``; with ``'all'`` every voxel shows its six faces, as the
    tutorial's explode trick makes ``ax.voxels`` do.
    """

    def __init__(
        self,
        indices: np.ndarray,
        rgba: np.ndarray,
        *,
        cube: float,
        pitch: float,
        faces: FaceMode = "all",
        edgecolor=None,
        shade: bool = False,
        grid_shape: tuple[int, int, int] | None = None,
    ):
        super().__init__(edgecolors="none")
        indices = np.asarray(indices, dtype=np.intp).reshape(-1, 3)
        exposed = _exposed_faces(indices, faces, grid_shape)
        keep = exposed.any(axis=1)  # ax.voxels makes nothing for a fully hidden voxel
        self._exposed = exposed[keep]  # (voxels, 6): which faces are drawn
        self._indices = indices[keep]
        self._rgba = np.asarray(rgba, dtype=float).reshape(-1, 4)[keep]
        self._tie_rank = _discovery_rank(self._indices, self._exposed)
        self._cube, self._pitch = float(cube), float(pitch)
        self._edge = None if edgecolor is None else np.array(to_rgba(edgecolor))
        self._shade = face_shade() if shade else None
        # Painting order, as face codes 6 * voxel + face: the one array as long as the
        # number of faces that outlives a draw.
        self._order = np.empty(0, dtype=np.intp)
        self._corner_xy = np.empty((0, 8, 2))
        self._vertex_buffer = np.empty((0, 5, 2))
        self._path_pool: list[Path] = []

    @property
    def face_count(self) -> int:
        return int(self._exposed.sum())

    @property
    def voxel_count(self) -> int:
        return len(self._indices)

    def do_3d_projection(self) -> float:
        """Project with the axes' matrix and fix the painting order; return the depth
        the axes use to order this collection among other 3D artists (nearest vertex)."""
        count = self.voxel_count
        if count == 0:
            self._order = np.empty(0, dtype=np.intp)
            return np.nan
        self._corner_xy = np.empty((count, 8, 2))
        nearest = np.empty(count)
        farness = np.empty((count, 6))
        # in blocks of voxels: the per-corner temporaries stay small at any volume size
        for start in range(0, count, BLOCK_VOXELS):
            block = slice(start, start + BLOCK_VOXELS)
            corners = self._project_corners(self.axes.M, self._indices[block])
            self._corner_xy[block] = corners[..., :2]
            face_z = corners[..., 2][:, FACE_CORNER_IDS]  # (voxels, 6, 4) as ax.voxels has them
            hidden = ~self._exposed[block]
            # each per-voxel Poly3DCollection of ax.voxels reports its nearest drawn vertex
            nearest[block] = np.where(hidden, np.inf, face_z.min(axis=2)).min(axis=1)
            far = -face_z.mean(axis=2)  # ascending = farthest face first
            far[hidden] = np.inf
            farness[block] = far
        self._order = self._painting_order(nearest, farness)
        return float(nearest.min())

    def _project_corners(self, matrix: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Projected (x, y, depth) of the 8 corners of the voxels ``indices``; larger
        depth is farther from the eye.

        The projection is linear in homogeneous coordinates, so each axis contributes
        its own term and a corner is the sum of three looked-up terms plus the
        translation: no 4x4 product per vertex.
        """
        low = indices * self._pitch  # (voxels, 3)
        terms = []
        for axis in range(3):
            ends = low[:, axis, None] + np.array([0.0, self._cube])  # (voxels, 2)
            terms.append(ends[..., None] * matrix[:, axis])  # (voxels, 2, 4)
        x, y, z = terms
        homogeneous = x[:, :, None, None, :] + y[:, None, :, None, :]
        homogeneous = homogeneous + z[:, None, None, :, :]  # (voxels, 2, 2, 2, 4)
        homogeneous += matrix[:, 3]
        homogeneous = homogeneous.reshape(-1, 8, 4)
        projected = homogeneous[..., :3]
        projected /= homogeneous[..., 3:]
        return projected

    def _painting_order(self, nearest: np.ndarray, farness: np.ndarray) -> np.ndarray:
        """Face codes in the order ax.voxels paints: voxels by decreasing nearest-vertex
        depth (ties: the order ax.voxels created them), then each voxel's faces by
        decreasing mean depth (ties: the later face first, as its reversed argsort)."""
        voxels = np.lexsort((self._tie_rank, -nearest))
        farness = farness[voxels]
        # a stable sort of the reversed row keeps the later of two equal faces first
        faces = 5 - np.argsort(farness[:, ::-1], axis=1, kind="stable")
        codes = voxels[:, None] * 6 + faces
        return codes[self._exposed[voxels[:, None], faces]]

    @allow_rasterization
    def draw(self, renderer) -> None:
        # One outer draw holds the rasterization open, so in pdf/svg all chunks land
        # in one image; each chunk goes through Collection.draw unchanged.
        try:
            for start in range(0, len(self._order), CHUNK_FACES):
                self._load_chunk(self._order[start : start + CHUNK_FACES])
                super().draw(renderer)
        finally:
            self.set_paths([])
        self.stale = False

    def _load_chunk(self, codes: np.ndarray) -> None:
        """Make the faces ``codes`` (in painting order) the collection's paths and colours."""
        voxel, face = np.divmod(codes, 6)
        paths = self._paths_for(len(codes))
        xy = self._vertex_buffer[: len(codes)]
        xy[:, :4] = self._corner_xy[voxel[:, None], FACE_CORNER_IDS[face]]
        xy[:, 4] = xy[:, 0]
        self.set_paths(paths)
        shade = None if self._shade is None else self._shade[face, None]
        colors = self._rgba[voxel]
        if shade is not None:
            colors[:, :3] *= shade
        self.set_facecolor(colors)
        if self._edge is not None:
            edges = np.broadcast_to(self._edge, (len(codes), 4))
            if shade is not None:
                edges = edges.copy()
                edges[:, :3] *= shade
            self.set_edgecolor(edges)

    def _paths_for(self, count: int) -> list[Path]:
        """``count`` closed quadrilateral paths whose vertices are rows of one buffer.

        Making a Path costs microseconds, hundreds of thousands of times per draw; so a
        chunk's worth is made once and refilled through the buffer they view. Their
        codes (moveto, lineto, closepoly) make matplotlib never simplify or cache
        anything from the vertices, so refilling them is safe.
        """
        if len(self._path_pool) < count:
            size = max(count, min(CHUNK_FACES, 2 * len(self._path_pool)))
            self._vertex_buffer = np.zeros((size, 5, 2))
            self._path_pool = [Path(xy, CLOSED_QUAD) for xy in self._vertex_buffer]
        return self._path_pool[:count]


def _exposed_faces(
    indices: np.ndarray, faces: FaceMode, grid_shape: tuple[int, int, int] | None
) -> np.ndarray:
    """(voxels, 6) booleans: which faces of each voxel are drawn."""
    if faces == "all":
        return np.ones((len(indices), 6), dtype=bool)
    if faces != "outer":
        raise ValueError(f"faces must be 'all' or 'outer', not {faces!r}")
    shape = grid_shape or tuple(indices.max(axis=0) + 1 if len(indices) else (0, 0, 0))
    occupied = np.zeros(np.add(shape, 2), dtype=bool)  # one empty layer all around
    i, j, k = (indices + 1).T
    occupied[i, j, k] = True
    exposed = np.empty((len(indices), 6), dtype=bool)
    for face, (axis, high) in enumerate(zip(FACE_NORMAL_AXIS, FACE_HIGH_SIDE)):
        step = [0, 0, 0]
        step[axis] = 1 if high else -1
        exposed[:, face] = ~occupied[i + step[0], j + step[1], k + step[2]]
    return exposed


def _discovery_rank(indices: np.ndarray, exposed: np.ndarray) -> np.ndarray:
    """The order in which ax.voxels creates each voxel's collection (its dict order).

    ax.voxels meets a voxel at its first drawn face: it scans faces normal to z with
    (x, y, z) as (outer, middle, inner) loop, then normal to x over (y, z, x), then
    normal to y over (z, x, y). Only depth ties between voxels depend on this.
    """
    if len(indices) == 0:
        return np.empty(0, dtype=np.intp)
    first_pass = np.argmax(exposed, axis=1) // 2
    frames = np.stack([indices, np.roll(indices, -1, axis=1), np.roll(indices, -2, axis=1)])
    keys = frames[first_pass, np.arange(len(indices))]  # (voxels, 3) in scan order
    return np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0], first_pass))


# ------------------------------------------------------------------ plain-array entry


def grid_extent(shape: tuple[int, ...], cube: float, pitch: float) -> tuple[float, float, float]:
    """Upper corner of the whole grid in axis units (the lower corner is the origin)."""
    return tuple(pitch * (n - 1) + cube for n in shape[:3])


def add_voxels(
    ax: Axes3D,
    filled: np.ndarray,
    facecolors,
    *,
    cube: float = 1.0,
    pitch: float | None = None,
    faces: FaceMode = "outer",
    edgecolor=None,
    shade: bool = False,
    autoscale: bool = True,
) -> VoxelFaces:
    """Draw the voxels ``filled`` (3D bool array) into ``ax`` like ``ax.voxels`` would.

    ``facecolors`` is one colour, or an RGBA array of shape ``filled.shape + (4,)``.
    Voxel (i, j, k) spans ``[pitch*i, pitch*i + cube]`` per axis (``pitch`` defaults to
    ``cube``: contiguous voxels). ``faces='outer'`` is plain ``ax.voxels(filled)``;
    ``'all'`` is the tutorial's explode trick. Unlike ``ax.voxels``, ``shade`` defaults
    to False (the tutorial's setting).

    With ``autoscale`` the axes fit the whole grid, as ``ax.voxels`` intends ("scale to
    the full array, even if the data is only in the center") and did in the tutorial's
    matplotlib. Since matplotlib 3.10 ``ax.voxels`` ends up fitting the drawn voxels
    instead (each collection it adds autoscales the axes again); the two agree whenever
    drawn voxels touch every side of the grid. The picture is otherwise the same, pixel
    for pixel in the tests, except that ``ax.voxels`` draws a voxel with exactly one
    visible face as a marker, snapped to whole pixels (only with ``faces='outer'``).
    """
    filled = np.asarray(filled, dtype=bool)
    if filled.ndim != 3:
        raise ValueError(f"filled must be 3-dimensional, got shape {filled.shape}")
    pitch = cube if pitch is None else pitch
    indices = np.argwhere(filled)
    colors = np.asarray(facecolors) if not isinstance(facecolors, str) else None
    if colors is not None and colors.shape == filled.shape + (4,):
        rgba = colors[filled].astype(float)
    else:
        rgba = np.broadcast_to(to_rgba(facecolors), (len(indices), 4))
    artist = VoxelFaces(
        indices,
        rgba,
        cube=cube,
        pitch=pitch,
        faces=faces,
        edgecolor=edgecolor,
        shade=shade,
        grid_shape=filled.shape,
    )
    ax.add_collection(artist, autolim=False)
    if autoscale:
        extent = grid_extent(filled.shape, cube, pitch)
        ax.auto_scale_xyz([0, extent[0]], [0, extent[1]], [0, extent[2]])
    return artist


# --------------------------------------------------------------------- panel colours


@dataclass(frozen=True)
class ColouredVoxels:
    """The voxels a panel draws: grid indices (C order), their RGBA, the value range."""

    indices: np.ndarray  # (n, 3) int
    rgba: np.ndarray  # (n, 4) float
    vmin: float
    vmax: float


def colour_voxels(data: np.ndarray, panel: VoxelsPanel) -> ColouredVoxels:
    """Colour and opacity of each voxel by the panel's keys; keep those that show.

    A value v maps to t = (v - vmin) / (vmax - vmin) clipped to [0, 1], with [vmin, vmax]
    the panel's ``range`` or the data's min..max (the tutorial normalizes its cube).
    colormap: colour = colormap(t); ``opacity: value`` gives alpha = t, a number gives
    that alpha. One ``color`` replaces the colormap; its own alpha is multiplied by t
    (or by the number). A {value: colour} table is categorical: voxels whose value is not
    in it are not drawn, and alpha is the colour's own (times a numeric opacity).
    A voxel shows where its value is non-zero (and finite) and its alpha is above 0.
    A constant volume maps to t = 1 (the tutorial's normalize would divide by zero).
    """
    vmin, vmax = _value_range(data, panel.range)
    flat = np.flatnonzero((data != 0) & np.isfinite(data))
    values = data.reshape(-1)[flat].astype(np.float64)
    t = np.clip((values - vmin) / (vmax - vmin), 0.0, 1.0)
    strength = t if panel.opacity == "value" else np.full_like(t, float(panel.opacity))
    if panel.color is None:
        rgba = colormap(panel.colormap)(t)
        rgba[:, 3] = strength
    elif isinstance(panel.color, str):
        rgba = np.tile(_colour(panel.color, "color"), (len(values), 1))
        rgba[:, 3] *= strength
    else:
        rgba = _colour_table(values, panel.color)
        if panel.opacity != "value":
            rgba[:, 3] *= float(panel.opacity)
    shown = rgba[:, 3] > 0
    indices = np.column_stack(np.unravel_index(flat[shown], data.shape))
    return ColouredVoxels(indices.reshape(-1, 3), rgba[shown], vmin, vmax)


def _value_range(data: np.ndarray, asked) -> tuple[float, float]:
    """common.value_range, except that a constant volume (a mask of ones, say) maps its
    value to t = 1 and shows, where min..max would make every voxel t = 0 and empty."""
    vmin, vmax = value_range(data, asked)
    if asked is None and data.size and np.nanmax(data) == vmin:
        return vmin - 1.0, vmin
    return vmin, vmax


def _colour_table(values: np.ndarray, table: dict[float, str]) -> np.ndarray:
    rgba = np.zeros((len(values), 4))
    for value, colour in table.items():
        # the data are float32: compare with the key as float32 would store it
        rgba[values == float(np.float32(value))] = _colour(colour, "color")
    return rgba


def _colour(text: str, key: str) -> np.ndarray:
    try:
        return np.array(to_rgba(text))
    except ValueError:
        raise UserError(f"{text!r} is not a colour matplotlib knows", (key,)) from None


# ------------------------------------------------------------------------- the panel


def draw(
    panel: VoxelsPanel, volumes: dict[str, VolumeData], fig: Figure, slot: SubplotSpec
) -> Axes3D:
    """Draw ``volumes[panel.volume]`` as the tutorial's voxel plot into ``slot``."""
    data = volumes[panel.volume].data
    voxels = colour_voxels(data, panel)
    if len(voxels.indices) > MAX_DRAWN_VOXELS:
        raise UserError(
            f"volume {panel.volume!r} would draw {len(voxels.indices):,} voxels; a voxels "
            f"panel draws at most {MAX_DRAWN_VOXELS:,} cubes (more takes minutes and "
            "gigabytes): add a 'resize' step, or use a 'volume' panel"
        )
    if panel.edgecolor is not None:
        _colour(panel.edgecolor, "edgecolor")
    ax = make_axes3d(fig, slot, panel)
    pitch = 2 * panel.cube if panel.gaps else panel.cube
    artist = VoxelFaces(
        voxels.indices,
        voxels.rgba,
        cube=panel.cube,
        pitch=pitch,
        faces="all" if panel.gaps else panel.faces,  # apart, every face is outer
        edgecolor=panel.edgecolor,
        shade=panel.shade,
        grid_shape=data.shape,
    )
    artist.set_rasterized(True)  # thousands of faces: one image in pdf/svg, at the dpi
    ax.add_collection(artist, autolim=False)
    finish_axes3d(ax, panel, grid_extent(data.shape, panel.cube, pitch))
    if panel.colorbar and panel.color is None:
        add_colorbar(fig, ax, panel.colormap, voxels.vmin, voxels.vmax, panel.colorbar_label)
    return ax
