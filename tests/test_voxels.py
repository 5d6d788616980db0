"""The ``voxels`` panel: the same picture as matplotlib's ``ax.voxels``, and every key.

Fidelity tests draw small volumes twice at the same size and dpi: once with
``ax.voxels`` fed as the tutorial feeds it (explode, expanded coordinates, RGBA
facecolors with alpha), once with voxspec, and require SSIM >= 0.98 on the RGB pixels
(they are in fact pixel-identical, but for one marker quirk of ax.voxels with
faces='outer'). ``VOXSPEC_TEST_IMAGES=DIR pytest tests/test_voxels.py`` keeps each pair.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import matplotlib as mpl
import matplotlib.image
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from skimage.metrics import structural_similarity

from voxspec.errors import UserError
from voxspec.model import VoxelsPanel
from voxspec.render import voxels
from voxspec.render.scene3d import make_axes3d
from voxspec.volume import VolumeData

SIZE_INCHES = 3.2
DPI = 100
MIN_SSIM = 0.98


# ------------------------------------------------------------ tutorial-style inputs


def explode(array: np.ndarray) -> np.ndarray:
    """A grid twice as large minus one per spatial axis, the data on even indices."""
    shape = np.array(array.shape)
    out = np.zeros((*(shape[:3] * 2 - 1), *shape[3:]), dtype=array.dtype)
    out[::2, ::2, ::2] = array
    return out


def expanded_corners(filled_shape) -> list[np.ndarray]:
    """Corner coordinates that make even (data) cells 2 wide and odd (gap) cells 0."""
    corners = [c.astype(float) for c in np.indices(np.array(filled_shape) + 1)]
    for axis, c in enumerate(corners):
        index = [slice(None)] * 3
        index[axis] = slice(1, None, 2)
        c[tuple(index)] += 1
    return corners


def tutorial_colours(cube: np.ndarray, colormap="viridis") -> np.ndarray:
    """The tutorial's facecolors: colormap of the normalized cube, alpha = the value."""
    norm = (cube - cube.min()) / (cube.max() - cube.min())
    colours = mpl.colormaps[colormap](norm)
    colours[..., 3] = norm
    return colours


def smooth_volume(n: int, seed: int = 0) -> np.ndarray:
    """A blob with varied values and some empty voxels, reaching every side of the grid."""
    rng = np.random.default_rng(seed)
    x, y, z = np.indices((n, n, n)) / (n - 1)
    value = 0.6 + 0.4 * np.sin(3 * x + 1) * np.cos(2 * y) * np.sin(4 * z + 0.5)
    value[rng.random((n, n, n)) < 0.25] = 0
    value[0, 0, 0] = value[-1, -1, -1] = 1.0  # the whole grid is the extent
    return value.astype(np.float32)


# ---------------------------------------------------------------- rendering helpers


def new_axes(panel: VoxelsPanel | None = None):
    fig = Figure(figsize=(SIZE_INCHES, SIZE_INCHES), dpi=DPI)
    FigureCanvasAgg(fig)
    slot = GridSpec(1, 1, figure=fig)[0]
    panel = panel or VoxelsPanel(kind="voxels", volume="v")
    return fig, make_axes3d(fig, slot, panel)


def rgb(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, channel_axis=2)


def save_pair(name: str, a: np.ndarray, b: np.ndarray) -> None:
    """With VOXSPEC_TEST_IMAGES=DIR set, keep both images side by side in DIR to look at."""
    folder = os.environ.get("VOXSPEC_TEST_IMAGES")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        mpl.image.imsave(Path(folder) / f"voxels-{name}.png", np.concatenate([a, b], axis=1))


def compare(name: str, reference, ours) -> float:
    """SSIM between the figures ``reference(ax)`` and ``ours(ax)`` draw into fresh axes."""
    fig_a, ax_a = new_axes()
    reference(ax_a)
    fig_b, ax_b = new_axes()
    ours(ax_b)
    a, b = rgb(fig_a), rgb(fig_b)
    save_pair(name, a, b)
    return ssim(a, b)


def view(ax, elevation, azimuth, roll=0):
    ax.view_init(elev=elevation, azim=azimuth, roll=roll)


# ------------------------------------------------------------------------- fidelity

# (elevation, azimuth, roll, grid size): the tutorial's two views, and two unusual ones
VIEWS = [(30, 320, 0, 10), (30, 200, 0, 7), (-25, 60, 20, 7), (70, 135, 0, 7)]


@pytest.mark.parametrize("elevation,azimuth,roll,size", VIEWS)
def test_colormap_with_alpha_value_matches_the_tutorials_ax_voxels(elevation, azimuth, roll, size):
    cube = smooth_volume(size)
    colours = tutorial_colours(cube)
    filled = colours[..., 3] != 0

    def reference(ax):
        view(ax, elevation, azimuth, roll)
        exploded = explode(colours)
        corners = expanded_corners(exploded.shape[:3])
        ax.voxels(*corners, exploded[..., 3] != 0, facecolors=exploded, shade=False)

    def ours(ax):
        view(ax, elevation, azimuth, roll)
        voxels.add_voxels(ax, filled, colours, cube=2, faces="all")

    assert compare(f"colormap-{azimuth}", reference, ours) >= MIN_SSIM


def test_fixed_translucent_colour_with_gray_edges_matches():
    # the tutorial's 3x3x3 block, translucent blue with a red centre, exploded
    colours = np.empty((3, 3, 3), dtype=object)
    colours[:] = "#1f77b430"
    colours[1, 1, 1] = "#ff0000ff"
    rgba = mpl.colors.to_rgba_array(colours.ravel()).reshape(3, 3, 3, 4)
    filled = np.ones((3, 3, 3), dtype=bool)

    def reference(ax):
        exploded = explode(filled)
        ax.voxels(
            *expanded_corners(exploded.shape),
            exploded,
            facecolors=explode(colours),
            edgecolors="gray",
            shade=False,
        )

    def ours(ax):
        voxels.add_voxels(ax, filled, rgba, cube=2, faces="all", edgecolor="gray")

    assert compare("fixed-colour-edges", reference, ours) >= MIN_SSIM


def test_gaps_match_the_exploded_array_without_expanded_coordinates():
    cube = smooth_volume(8, seed=1)
    colours = tutorial_colours(cube)
    filled = colours[..., 3] != 0

    def reference(ax):
        ax.voxels(explode(filled), facecolors=explode(colours), shade=False)

    def ours(ax):
        voxels.add_voxels(ax, filled, colours, cube=1, pitch=2, faces="all")

    assert compare("gaps", reference, ours) >= MIN_SSIM


@pytest.mark.parametrize("elevation,azimuth", [(30, 320), (20, 200)])
def test_outer_faces_match_plain_ax_voxels(elevation, azimuth):
    rng = np.random.default_rng(2)
    filled = rng.random((6, 6, 6)) < 0.6
    filled[0, 0, 0] = filled[-1, -1, -1] = True
    colours = np.zeros((6, 6, 6, 4))
    colours[..., :3] = rng.random((6, 6, 6, 3))
    colours[..., 3] = 0.6

    def reference(ax):
        view(ax, elevation, azimuth)
        ax.voxels(filled, facecolors=colours, edgecolors="k", shade=False)

    def ours(ax):
        view(ax, elevation, azimuth)
        voxels.add_voxels(ax, filled, colours, faces="outer", edgecolor="k")

    assert compare(f"outer-{azimuth}", reference, ours) >= MIN_SSIM


def test_shading_matches_ax_voxels_light():
    cube = smooth_volume(6, seed=3)
    colours = tutorial_colours(cube, "plasma")
    colours[..., 3] = np.where(cube > 0, 0.8, 0)
    filled = colours[..., 3] != 0

    def reference(ax):
        exploded = explode(colours)
        ax.voxels(
            *expanded_corners(exploded.shape[:3]),
            exploded[..., 3] != 0,
            facecolors=exploded,
            edgecolors="gray",
            shade=True,
        )

    def ours(ax):
        voxels.add_voxels(ax, filled, colours, cube=2, faces="all", edgecolor="gray", shade=True)

    assert compare("shade", reference, ours) >= MIN_SSIM


def test_outer_and_all_faces_are_different_pictures():
    filled = np.ones((4, 4, 4), dtype=bool)
    colours = np.broadcast_to([0.2, 0.4, 0.8, 0.3], (4, 4, 4, 4))

    def outer(ax):
        voxels.add_voxels(ax, filled, colours, faces="outer")

    def every(ax):
        voxels.add_voxels(ax, filled, colours, faces="all")

    assert compare("outer-vs-all", outer, every) < 0.95


def test_panel_reproduces_the_tutorials_plot_cube():
    # the whole chain: range from the data, alpha = value, limits set before drawing,
    # the tutorial's view; the reference is plot_cube's own calls in the same axes
    n = 9
    cube = smooth_volume(n, seed=4)[:6]  # a cut, as the tutorial's resized[:35]
    panel = VoxelsPanel(kind="voxels", volume="v", limits=(2 * n, 2 * n, 2 * n))
    fig_a, ax_a = new_axes(panel)
    ax_a.set_xlim(right=2 * n)
    ax_a.set_ylim(top=2 * n)
    ax_a.set_zlim(top=2 * n)
    exploded = explode(tutorial_colours(cube))
    ax_a.voxels(
        *expanded_corners(exploded.shape[:3]),
        exploded[..., 3] != 0,
        facecolors=exploded,
        shade=False,
    )
    fig_b, ax_b = panel_figure(cube, limits=(2 * n, 2 * n, 2 * n))
    a, b = rgb(fig_a), rgb(fig_b)
    save_pair("plot-cube", a, b)
    assert ax_a.get_w_lims() == pytest.approx(ax_b.get_w_lims())
    assert ssim(a, b) >= MIN_SSIM


def test_painting_order_is_ax_voxels_order():
    # same faces, same order: what ax.voxels' collections hand to the renderer
    rng = np.random.default_rng(5)
    filled = rng.random((4, 4, 4)) < 0.5
    fig, ax = new_axes()
    collections = ax.voxels(filled, shade=False)
    ax.M = ax.get_proj()
    depth = {coord: c.do_3d_projection() for coord, c in collections.items()}
    expected = [
        path.vertices[:4]
        for coord in sorted(collections, key=depth.get, reverse=True)
        for path in collections[coord].get_paths()
    ]
    fig2, ax2 = new_axes()
    artist = voxels.add_voxels(ax2, filled, "C0")
    ax2.M = ax2.get_proj()
    artist.do_3d_projection()
    artist._load_chunk(artist._order)
    ours = [path.vertices[:4] for path in artist.get_paths()]
    np.testing.assert_allclose(np.array(expected), np.array(ours), atol=1e-9)


# ------------------------------------------------------------------------ the panel


def panel_figure(data, dpi=DPI, **keys):
    panel = VoxelsPanel(kind="voxels", volume="v", **keys)
    fig = Figure(figsize=(SIZE_INCHES, SIZE_INCHES), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = voxels.draw(
        panel, {"v": VolumeData(np.asarray(data, np.float32))}, fig, GridSpec(1, 1, figure=fig)[0]
    )
    return fig, ax


def the_artist(ax) -> voxels.VoxelFaces:
    (artist,) = [c for c in ax.collections if isinstance(c, voxels.VoxelFaces)]
    return artist


def drawn_colours(ax) -> np.ndarray:
    """The RGBA of every drawn voxel (by grid index order)."""
    return the_artist(ax)._rgba


def test_view_keys_reach_the_axes():
    _, ax = panel_figure(smooth_volume(4), view={"elevation": 12, "azimuth": 200, "roll": 5})
    assert (ax.elev, ax.azim, ax.roll) == (12, 200, 5)


def test_axes_false_turns_the_axis_off():
    fig_on, ax_on = panel_figure(smooth_volume(4))
    fig_off, ax_off = panel_figure(smooth_volume(4), axes=False)
    on, off = rgb(fig_on), rgb(fig_off)
    white_on, white_off = ((im == 255).all(axis=2).mean() for im in (on, off))
    assert white_off > white_on + 0.1  # no panes, no ticks, no labels
    # what is left is the voxels alone: the same pixels wherever they are drawn
    assert the_artist(ax_off).face_count == the_artist(ax_on).face_count


def test_grid_false_removes_the_grid_lines():
    fig_a, _ = panel_figure(np.zeros((4, 4, 4)), grid=True)
    fig_b, _ = panel_figure(np.zeros((4, 4, 4)), grid=False)
    assert ssim(rgb(fig_a), rgb(fig_b)) < 0.999


def test_limits_set_the_upper_limits_like_the_tutorial():
    _, fresh = new_axes()
    low = fresh.get_xlim()[0]  # the default lower limit, kept as set_xlim(right=) keeps it
    _, ax = panel_figure(smooth_volume(5), limits=(30, 40, 50))
    assert ax.get_xlim() == pytest.approx((low, 30))
    assert ax.get_ylim()[1] == pytest.approx(40)
    assert ax.get_zlim()[1] == pytest.approx(50)


def test_without_limits_the_axes_fit_the_whole_grid():
    data = np.zeros((5, 6, 7))
    data[2, 3, 3] = 1  # one voxel in the middle: the grid, not the voxel, sets the axes
    _, ax = panel_figure(data)
    limits = (ax.get_xlim(), ax.get_ylim(), ax.get_zlim())
    for (low, high), extent in zip(limits, (10, 12, 14)):
        assert low < 0 < extent < high < extent * 1.1


@pytest.mark.parametrize("gaps,cube,extent", [(False, 2, 10), (False, 3, 15), (True, 2, 18)])
def test_cube_and_gaps_set_the_geometry(gaps, cube, extent):
    data = np.ones((5, 5, 5))
    _, ax = panel_figure(data, cube=cube, gaps=gaps)
    high = ax.get_xlim()[1]
    assert extent < high < extent * 1.1
    artist = the_artist(ax)
    assert artist.face_count == 6 * 125  # 'all' faces by default; apart, all are outer


def test_faces_outer_keeps_only_the_shell():
    _, ax = panel_figure(np.ones((4, 4, 4)), faces="outer")
    artist = the_artist(ax)
    assert artist.voxel_count == 4**3 - 2**3  # the inner 2x2x2 shows no face
    assert artist.face_count == 6 * 4 * 4


def test_opacity_value_and_range_map_values_to_alpha():
    data = np.array([0.0, 1.0, 2.0, 3.0, 4.0]).reshape(5, 1, 1)
    _, ax = panel_figure(data)
    np.testing.assert_allclose(drawn_colours(ax)[:, 3], [0.25, 0.5, 0.75, 1.0])
    _, ax = panel_figure(data, range=(2.0, 3.0))
    np.testing.assert_allclose(drawn_colours(ax)[:, 3], [1.0, 1.0])  # t = 0 is not drawn
    _, ax = panel_figure(data, opacity=0.4)
    np.testing.assert_allclose(drawn_colours(ax)[:, 3], 0.4)


def test_colormap_colours_the_values():
    data = np.array([0.0, 1.0, 2.0]).reshape(3, 1, 1)
    _, ax = panel_figure(data, colormap="magma", opacity=1.0)
    expected = mpl.colormaps["magma"]([0.5, 1.0])
    np.testing.assert_allclose(drawn_colours(ax), expected)


def test_one_colour_replaces_the_colormap_and_keeps_its_alpha():
    data = np.array([0.0, 1.0, 1.0]).reshape(3, 1, 1)
    _, ax = panel_figure(data, color="#1f77b430")
    np.testing.assert_allclose(drawn_colours(ax), [mpl.colors.to_rgba("#1f77b430")] * 2)


def test_colour_table_draws_only_listed_labels():
    data = np.array([0, 1, 2, 3, 1]).reshape(5, 1, 1)
    _, ax = panel_figure(data, color={1: "red", 3: "#0000ff80"})
    assert the_artist(ax).voxel_count == 3
    np.testing.assert_allclose(
        drawn_colours(ax), [(1, 0, 0, 1), (0, 0, 1, 128 / 255), (1, 0, 0, 1)]
    )


def test_zero_and_not_finite_values_are_empty():
    data = np.array([0.0, np.nan, 2.0, np.inf, 1.0]).reshape(5, 1, 1)
    _, ax = panel_figure(data, opacity=1.0, range=(0.0, 2.0))
    assert the_artist(ax).voxel_count == 2


def test_empty_volume_draws_axes_only():
    fig, ax = panel_figure(np.zeros((3, 3, 3)))
    assert the_artist(ax).face_count == 0
    rgb(fig)  # draws


def test_shade_darkens_faces_by_orientation_and_edgecolor_is_used():
    _, ax = panel_figure(np.ones((1, 1, 1)), opacity=1.0, shade=True, edgecolor="red")
    artist = the_artist(ax)
    ax.M = ax.get_proj()
    artist.do_3d_projection()
    artist._load_chunk(np.arange(6))  # faces in ax.voxels order: z-, z+, x-, x+, y-, y+
    faces = artist.get_facecolor()
    assert len({tuple(np.round(c, 6)) for c in faces}) >= 4  # lit by orientation
    assert faces[1, :3].sum() > faces[0, :3].sum()  # the light is above: top brighter
    edges = artist.get_edgecolor()
    assert (edges[:, 1:3] == 0).all() and len(set(edges[:, 0])) >= 4  # shaded red


def test_colorbar_shows_colormap_and_range():
    fig, ax = panel_figure(
        np.arange(8.0).reshape(2, 2, 2) + 1, colorbar=True, colorbar_label="T1", colormap="magma"
    )
    (bar_ax,) = [a for a in fig.axes if a is not ax]
    bar = bar_ax._colorbar
    assert bar.cmap.name == "magma"
    assert (bar.norm.vmin, bar.norm.vmax) == (1.0, 8.0)
    assert bar_ax.get_ylabel() == "T1"
    fig2, _ = panel_figure(np.ones((2, 2, 2)), colorbar=True, color="red")
    assert len(fig2.axes) == 1  # one colour has no scale to show


def test_bad_colour_is_a_user_error():
    with pytest.raises(UserError, match="not a colour"):
        panel_figure(np.ones((2, 2, 2)), color="notacolour")
    with pytest.raises(UserError, match="colormap"):
        panel_figure(np.ones((2, 2, 2)), colormap="notamap")


# -------------------------------------------------------------------------- outputs


def saved(fig, fmt: str, **rc) -> bytes:
    buffer = io.BytesIO()
    with mpl.rc_context(rc):
        fig.savefig(buffer, format=fmt)
    return buffer.getvalue()


def pdf_images(pdf: bytes) -> list[tuple[int, int]]:
    """(width, height) of each RGB image drawn (an image's alpha is a separate gray one)."""
    images = re.findall(
        rb"/Subtype /Image /Width (\d+) /Height (\d+)\s*/ColorSpace /DeviceRGB", pdf
    )
    return [(int(w), int(h)) for w, h in images]


def test_pdf_has_one_raster_voxel_layer_at_the_figure_dpi_and_vector_text():
    fig, _ = panel_figure(smooth_volume(5), dpi=100)
    pdf = saved(fig, "pdf", **{"pdf.compression": 0, "pdf.fonttype": 42})
    assert len(re.findall(rb"/\w+ Do", pdf)) == 1  # one image drawn
    (size,) = pdf_images(pdf)
    fig2, _ = panel_figure(smooth_volume(5), dpi=200)
    (size2,) = pdf_images(saved(fig2, "pdf", **{"pdf.compression": 0}))
    assert size2 == pytest.approx((2 * size[0], 2 * size[1]), abs=4)  # rasterized at the dpi
    assert b"/FontFile2" in pdf and pdf.count(b"BT") > 10  # tick labels are text


def test_svg_has_one_image_and_vector_axes():
    fig, _ = panel_figure(smooth_volume(5))
    svg = saved(fig, "svg").decode()
    assert svg.count("<image") == 1
    assert svg.count("<path") > 20  # panes, grid, ticks, glyphs


def test_rendering_is_deterministic():
    first = saved(panel_figure(smooth_volume(6), view={"azimuth": 45})[0], "png")
    second = saved(panel_figure(smooth_volume(6), view={"azimuth": 45})[0], "png")
    assert first == second


def test_blocks_and_chunks_give_the_picture_of_one_pass(monkeypatch):
    cube = smooth_volume(6, seed=7)
    whole = rgb(panel_figure(cube)[0])
    monkeypatch.setattr(voxels, "CHUNK_FACES", 100)
    monkeypatch.setattr(voxels, "BLOCK_VOXELS", 7)
    chunked = rgb(panel_figure(cube)[0])
    assert (whole == chunked).all()


def test_too_many_voxels_is_a_user_error_that_points_to_the_volume_panel(monkeypatch):
    monkeypatch.setattr(voxels, "MAX_DRAWN_VOXELS", 26)
    panel_figure(np.ones((2, 13, 1)))
    with pytest.raises(UserError, match="'volume' panel"):
        panel_figure(np.ones((3, 3, 3)))
