"""The `volume` panel: the shear-warp renderer against a per-pixel ray marcher, mip,
zero voxels, agreement with ax.voxels on where the object lands, pdf/svg output,
determinism, and the build pipeline."""

from __future__ import annotations

import base64
import io
import re

import matplotlib as mpl
import numpy as np
import PIL.Image
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from mpl_toolkits.mplot3d import proj3d

from voxspec.errors import UserError
from voxspec.model import VolumePanel
from voxspec.render import volume as vr
from voxspec.render.scene3d import finish_axes3d, make_axes3d
from voxspec.volume import VolumeData

VIRIDIS = mpl.colormaps["viridis"]


# ------------------------------------------------------------------------- helpers


def smooth_blobs(shape=(22, 18, 14)) -> np.ndarray:
    """Two soft blobs, off centre on a non-cubic grid, zero (empty) far from them."""
    i, j, k = np.indices(shape) + 0.5
    n = np.array(shape, dtype=float)
    big = np.exp(
        -(((i - 0.4 * n[0]) / 5) ** 2 + ((j - 0.5 * n[1]) / 4) ** 2 + ((k - 0.5 * n[2]) / 3.5) ** 2)
    )
    small = np.exp(
        -(
            ((i - 0.75 * n[0]) / 3) ** 2
            + ((j - 0.25 * n[1]) / 3) ** 2
            + ((k - 0.7 * n[2]) / 2.5) ** 2
        )
    )
    data = big + 0.7 * small
    data[data < 0.03] = 0
    return data.astype(np.float32)


def render(data, size_cm=5.0, dpi=100, proj="persp", **keys):
    """Draw a volume panel of ``data`` and return (figure, axes, the volume artist)."""
    panel = VolumePanel(kind="volume", volume="v", **keys)
    fig = Figure(figsize=(size_cm / 2.54, size_cm / 2.54), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = vr.draw(
        panel,
        {"v": VolumeData(np.asarray(data, dtype=np.float32))},
        fig,
        GridSpec(1, 1, figure=fig)[0],
    )
    if proj == "ortho":
        ax.set_proj_type("ortho")
    fig.canvas.draw()
    artist = next(a for a in ax.get_children() if isinstance(a, vr.VolumeImage))
    return fig, ax, artist


def premultiplied(rgba8: np.ndarray) -> np.ndarray:
    rgba = rgba8.astype(float) / 255
    rgba[..., :3] *= rgba[..., 3:]
    return rgba


def trilinear(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Trilinear samples at voxel coordinates (grid from 0, voxel centres at +0.5),
    clamped to the edge voxel inside the grid's box and 0 outside it."""
    shape = np.array(values.shape)
    inside = np.all((points >= 0) & (points <= shape), axis=1)
    centred = np.clip(points - 0.5, 0, shape - 1)
    low = np.minimum(np.floor(centred).astype(int), np.maximum(shape - 2, 0))
    high = np.minimum(low + 1, shape - 1)
    w = centred - low
    out = np.zeros(len(points))
    for corner in np.ndindex(2, 2, 2):
        index = [np.where(c, high[:, a], low[:, a]) for a, c in enumerate(corner)]
        weight = np.prod([w[:, a] if c else 1 - w[:, a] for a, c in enumerate(corner)], axis=0)
        out += weight * values[tuple(index)]
    return np.where(inside, out, 0.0)


def ray_march(t, matrix, rect, colormap=VIRIDIS, opacity=1.0, mode="composite", step=0.1):
    """The slow obvious rendering: for every output pixel, march its ray through the
    trilinear field of ``t`` in steps of ``step`` voxels, compositing front to back
    (alpha per step 1 - (1 - min(1, opacity * t))**step), or keep the largest t.
    Premultiplied RGBA (height, width, 4), row 0 at the bottom like the artist's image."""
    ys, xs = np.mgrid[0 : rect.height, 0 : rect.width]
    x = (rect.x0 + xs + 0.5).ravel()
    y = (rect.y0 + ys + 0.5).ravel()
    shape = np.array(t.shape, dtype=float)
    corners = np.array(np.meshgrid(*[[0, n] for n in shape], indexing="ij")).reshape(3, -1).T
    h = np.c_[corners, np.ones(8)] @ matrix.T
    depth = h[:, 2] / h[:, 3]
    inverse = np.linalg.inv(matrix)

    def unproject(z):
        p = np.stack([x, y, np.full_like(x, z), np.ones_like(x)], 1) @ inverse.T
        return p[:, :3] / p[:, 3:]

    span = depth.max() - depth.min()
    near = unproject(depth.min() - 0.1 * span)
    ray = unproject(depth.max() + 0.1 * span) - near
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = (0 - near) / ray, (shape - near) / ray
    enter = np.maximum(np.nanmax(np.minimum(a, b), axis=1), 0)
    leave = np.nanmin(np.maximum(a, b), axis=1)
    colour, through, peak = np.zeros((len(x), 3)), np.ones(len(x)), np.zeros(len(x))
    for i in range(int(np.nanmax(np.maximum(leave - enter, 0)) / step) + 1):
        s = enter + (i + 0.5) * step
        live = s < leave
        sample = np.zeros(len(x))
        sample[live] = trilinear(t, near[live] + s[live, None] * ray[live])
        peak = np.maximum(peak, sample)
        alpha = 1 - (1 - np.minimum(1, opacity * sample)) ** step
        colour += (through * alpha)[:, None] * colormap(sample)[:, :3]
        through *= 1 - alpha
    if mode == "mip":
        alpha = np.minimum(1, opacity * peak)
        colour, through = alpha[:, None] * colormap(peak)[:, :3], 1 - alpha
    return np.concatenate([colour, 1 - through[:, None]], 1).reshape(rect.height, rect.width, 4)


def t_of(data, vmin=None, vmax=None):
    vmin = data.min() if vmin is None else vmin
    vmax = data.max() if vmax is None else vmax
    t = np.clip((data - vmin) / (vmax - vmin), 0, 1)
    return np.where(data == 0, 0.0, t)


def principal_axis(artist) -> int:
    return vr.plan_shear_warp(artist.last.matrix, artist._codes.shape, artist.last.rect).axis


# ------------------------------------------------------------- against the reference

VIEWS = [
    # elevation, azimuth, roll, projection, the axis the slices are taken across
    (30, 320, 0, "persp", 0),
    (-25, 65, 0, "persp", 1),
    (70, 200, 20, "ortho", 2),
    (10, 170, 0, "ortho", 0),
]


@pytest.mark.parametrize(("elev", "azim", "roll", "proj", "axis"), VIEWS)
def test_composite_matches_ray_marching(elev, azim, roll, proj, axis):
    data = smooth_blobs()
    view = {"elevation": elev, "azimuth": azim, "roll": roll}
    _, _, artist = render(data, proj=proj, view=view)
    assert principal_axis(artist) == axis  # the views cover all three slicing axes
    got = premultiplied(artist.last.rgba)
    want = ray_march(t_of(data), artist.last.matrix, artist.last.rect)
    difference = np.abs(got - want)
    assert want[..., 3].max() > 0.5  # something substantial is drawn
    assert difference.mean() < 0.006
    assert np.percentile(difference, 99) < 0.05


@pytest.mark.parametrize("azimuth", [30, 120])
def test_cut_faces_match_ray_marching(azimuth):
    # a slab with no empty voxel, seen through its sides: rays enter and leave between
    # two slices, which would show the slices as stripes on the faces if each segment
    # crossing a side were taken whole
    data = (0.2 + smooth_blobs((14, 12, 2))).astype(np.float32)
    _, _, artist = render(data, view={"elevation": 60, "azimuth": azimuth}, range=(0.0, 2.0))
    assert principal_axis(artist) in (0, 1)  # the large faces are sides of the slices
    want = ray_march(t_of(data, 0.0, 2.0), artist.last.matrix, artist.last.rect)
    difference = np.abs(premultiplied(artist.last.rgba) - want)
    assert difference.mean() < 0.004
    assert np.percentile(difference, 99) < 0.03


def test_opacity_scales_absorption():
    data = smooth_blobs()
    _, _, faint = render(data, opacity=0.3)
    want = ray_march(t_of(data), faint.last.matrix, faint.last.rect, opacity=0.3)
    assert np.abs(premultiplied(faint.last.rgba) - want).mean() < 0.006
    _, _, full = render(data)
    assert faint.last.rgba[..., 3].mean() < 0.8 * full.last.rgba[..., 3].mean()


def test_mip_matches_ray_marching():
    data = smooth_blobs()
    _, _, artist = render(data, mode="mip", colormap="magma")
    want = ray_march(
        t_of(data), artist.last.matrix, artist.last.rect, mpl.colormaps["magma"], mode="mip"
    )
    difference = np.abs(premultiplied(artist.last.rgba) - want)
    assert difference.mean() < 0.006
    assert np.percentile(difference, 99) < 0.05


def test_one_voxel_thick_grid_matches_ray_marching():
    data = smooth_blobs((12, 10, 1))
    _, _, artist = render(data, view={"elevation": 60, "azimuth": 30})
    want = ray_march(t_of(data), artist.last.matrix, artist.last.rect)
    assert np.abs(premultiplied(artist.last.rgba) - want).mean() < 0.006


def test_range_maps_values_and_zero_voxels_stay_empty():
    # with range [-2, 2] a zero would be half way up the colormap, yet it is empty
    data = np.zeros((12, 12, 12), dtype=np.float32)
    data[1:4, 8:11, 2:5] = -1.0
    _, _, artist = render(data, range=(-2.0, 2.0))
    want = ray_march(t_of(data, -2.0, 2.0), artist.last.matrix, artist.last.rect)
    got = premultiplied(artist.last.rgba)
    assert np.abs(got - want).mean() < 0.006
    drawn = got[..., 3] > 0.01
    assert 0 < drawn.mean() < 0.2  # only the small block shows


# ------------------------------------------------------------------------ geometry


def _figure_pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)


def _mask(pixels: np.ndarray) -> np.ndarray:
    return np.abs(pixels - 255).max(axis=-1) > 40  # not the white background


def _volume_mask(fig, artist) -> np.ndarray:
    """Figure pixels (top row first) where the volume image is at least half opaque."""
    height, width = fig.canvas.get_width_height()[::-1]
    mask = np.zeros((height, width), dtype=bool)
    rect = artist.last.rect
    rows = height - 1 - (rect.y0 + np.arange(rect.height))
    mask[rows[:, None], rect.x0 + np.arange(rect.width)] = artist.last.rgba[..., 3] >= 128
    return mask


def _voxels_reference(filled: np.ndarray, panel: VolumePanel) -> np.ndarray:
    """The same axes with matplotlib's own ax.voxels drawing ``filled``."""
    fig = Figure(figsize=(5 / 2.54, 5 / 2.54), dpi=100)
    FigureCanvasAgg(fig)
    ax = make_axes3d(fig, GridSpec(1, 1, figure=fig)[0], panel)
    finish_axes3d(ax, panel, tuple(panel.cube * n for n in filled.shape))  # limits first
    corners = [panel.cube * c for c in np.indices(np.array(filled.shape) + 1)]
    ax.voxels(*corners, filled, facecolors="#440154", shade=False)
    return _mask(_figure_pixels(fig))


def _bbox(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([rows.min(), rows.max(), cols.min(), cols.max()])


@pytest.mark.parametrize("view", [{}, {"elevation": -20, "azimuth": 120, "roll": 15}])
def test_full_grid_covers_the_same_pixels_as_ax_voxels(view):
    # a grid with no empty voxel: its edges are the box's faces, sharp in both renderings
    data = np.ones((14, 9, 6), dtype=np.float32)
    keys = dict(view=view, axes=False, cube=3.0, range=(0.0, 1.0))
    fig, _, artist = render(data, **keys)
    volume = _volume_mask(fig, artist)
    voxels = _voxels_reference(data > 0, VolumePanel(kind="volume", volume="v", **keys))
    # edges differ by the antialiasing of ax.voxels' polygons and the image's last sample
    assert np.abs(_bbox(volume) - _bbox(voxels)).max() <= 3
    assert (volume & voxels).sum() / (volume | voxels).sum() > 0.9


def test_object_lands_where_ax_voxels_puts_it():
    # an L-shaped object in one corner of a non-cubic grid: a flipped or swapped axis
    # would move it far across the page
    data = np.zeros((16, 12, 10), dtype=np.float32)
    data[10:15, 1:4, 5:9] = 1.0
    data[10:15, 1:9, 7:9] = 1.0
    keys = dict(axes=False, limits=(32.0, 24.0, 20.0))
    fig, _, artist = render(data, **keys)
    volume = _volume_mask(fig, artist)
    voxels = _voxels_reference(data > 0, VolumePanel(kind="volume", volume="v", **keys))
    # interpolation rounds the object's own edges and corners (a voxel is ~5 px here)
    assert np.abs(_bbox(volume) - _bbox(voxels)).max() <= 4
    assert (volume & voxels).sum() / (volume | voxels).sum() > 0.8


def test_image_sits_on_matplotlibs_projection_of_the_volume():
    data = np.zeros((10, 10, 10), dtype=np.float32)
    data[7:9, 1:3, 6:8] = 1.0  # a small block near the (high x, low y, high z) corner
    fig, ax, artist = render(data, opacity=50.0, cube=2.0)
    alpha = artist.last.rgba[..., 3].astype(float)
    rows, cols = np.nonzero(alpha > 128)
    centre = np.array([cols.mean(), rows.mean()]) + [artist.last.rect.x0, artist.last.rect.y0]
    x, y, _ = proj3d.proj_transform(16.0, 4.0, 14.0, ax.M)  # the block's centre, in data units
    expected = ax.transData.transform((x, y))
    assert np.hypot(*(centre + 0.5 - expected)) < 4  # pixels; one voxel is ~10 px here


def test_axis_lines_and_labels_are_drawn_over_the_volume():
    data = np.ones((8, 8, 8), dtype=np.float32)
    _, ax, artist = render(data, opacity=50.0, colormap="gray", range=(0.0, 1e-6))
    order = []
    original_image, original_axis = artist.draw_image, type(ax.xaxis).draw
    artist.draw_image = lambda r: (order.append("volume"), original_image(r))
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.draw = lambda r, a=axis: (order.append("axis"), original_axis(a, r))
    ax.figure.canvas.draw()
    assert order == ["volume", "axis", "axis", "axis"]


def test_limits_smaller_than_the_grid_clip_to_the_axes():
    _, ax, artist = render(smooth_blobs(), limits=(10.0, 10.0, 10.0))
    rect, box = artist.last.rect, ax.bbox
    assert rect.x0 >= np.floor(box.x0) and rect.x0 + rect.width <= np.ceil(box.x1)
    assert rect.y0 >= np.floor(box.y0) and rect.y0 + rect.height <= np.ceil(box.y1)


def test_empty_volume_draws_nothing():
    fig, _, artist = render(np.zeros((6, 7, 8), dtype=np.float32))
    assert artist.last.rgba[..., 3].max() == 0


# ----------------------------------------------------------------------- outputs


def test_pdf_holds_one_image_at_the_dpi_and_vector_text():
    fig, _, artist = render(smooth_blobs(), colorbar=True, colorbar_label="value", title="T")
    at_100_dpi = artist.last.rect
    buffer = io.BytesIO()
    with mpl.rc_context({"pdf.compression": 0, "pdf.fonttype": 42}):
        fig.savefig(buffer, format="pdf", dpi=150)
    pdf = buffer.getvalue()
    rect = artist.last.rect
    assert artist.last.magnification == pytest.approx(150 / 72)
    assert abs(rect.width - 1.5 * at_100_dpi.width) <= 2  # computed for 150 dpi
    # the colour part of the volume's image, stored top row first
    header = rb"/Width %d /Height %d\s*/ColorSpace /DeviceRGB [^>]*/SMask[^>]*>>\s*stream\r?\n"
    start = re.search(header % (rect.width, rect.height), pdf).end()
    stored = np.frombuffer(pdf[start : start + rect.width * rect.height * 3], np.uint8)
    assert np.array_equal(stored.reshape(rect.height, rect.width, 3), artist.last.rgba[::-1, :, :3])
    assert b"/FontFile2" in pdf and (b" Tj" in pdf or b" TJ" in pdf)  # text stays text


def test_svg_holds_the_image_and_vector_axes():
    fig, _, artist = render(smooth_blobs())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", dpi=120)
    svg = buffer.getvalue().decode()
    assert svg.count("<image") == 1
    assert "<!-- x -->" in svg and 'id="line2d_' in svg  # labels and ticks as vectors
    png = base64.b64decode(re.search(r"data:image/png;base64,([^\"]+)", svg).group(1))
    stored = np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGBA"))
    assert np.array_equal(stored, artist.last.rgba)  # at 120 dpi
    assert "scale(1 -1)" in re.search(r"<image[^>]*>", svg).group(0)  # shown bottom row down


def test_rendering_is_deterministic(monkeypatch):
    def png():
        fig, _, _ = render(smooth_blobs(), size_cm=4)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()

    first = png()
    assert png() == first
    monkeypatch.setattr(vr, "MAX_THREADS", 1)  # tiles are independent of the threads
    assert png() == first


def test_drawing_again_at_the_same_size_does_not_render_again(monkeypatch):
    fig, _, artist = render(smooth_blobs())
    calls = []
    original = artist.render
    monkeypatch.setattr(artist, "render", lambda *a: (calls.append(1), original(*a))[1])
    fig.savefig(io.BytesIO(), format="png")
    assert calls == []
    fig.savefig(io.BytesIO(), format="png", dpi=50)
    assert calls == [1]


def test_colorbar_and_unknown_colormap():
    fig, _, _ = render(smooth_blobs(), colorbar=True)
    assert len(fig.axes) == 2
    with pytest.raises(UserError, match="colormap"):
        render(smooth_blobs(), colormap="not-a-map")


def test_build_writes_png_and_pdf(run_cli, write_spec, tmp_path):
    spec = write_spec(
        """
voxspec: 1
volumes:
  head: {source: {builtin: head-phantom, shape: [32, 32, 32]}}
figure: {width: 8, height: 8, dpi: 100, formats: [png, pdf]}
panels:
  - {kind: volume, volume: head, mode: composite}
"""
    )
    code, _, err = run_cli("build", spec, "-o", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "fig.png").stat().st_size > 0
    assert (tmp_path / "out" / "fig.pdf").stat().st_size > 0
