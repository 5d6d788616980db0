"""Overlays: resampling through both affines, threshold, opacity, range, colorbars,
on every panel that takes one."""

from __future__ import annotations

import numpy as np
import pytest
from rendering import colorbar_axes, image_axes, make_spec, pixel_at, pixels, render, volume

from voxspec.model import Overlay
from voxspec.render.overlay import overlay_range, plane_on_grid, sample

ii, jj, kk = np.meshgrid(np.arange(6), np.arange(7), np.arange(8), indexing="ij")
LINEAR = (2 * ii + 3 * jj - kk).astype(np.float32)


def test_trilinear_sampling_is_exact_on_a_linear_field():
    points = np.array([[0.5, 2.25, 4.9], [1.5, 6.0, 0.1], [7.0, 3.3, 2.0]])
    expected = 2 * points[0] + 3 * points[1] - points[2]
    assert np.allclose(sample(LINEAR, points, "linear"), expected, atol=1e-5)


def test_nearest_sampling_takes_the_nearest_voxel():
    points = np.array([[0.4, 2.6], [5.9, 0.2], [3.5001, 6.7]])
    assert list(sample(LINEAR, points, "nearest")) == [LINEAR[0, 6, 4], LINEAR[3, 0, 7]]


def test_points_beyond_the_grid_are_nan():
    # half a voxel beyond the outer centres is still inside; further is outside
    points = np.array([[-0.5, -0.6, 5.6], [0, 0, 0], [0, 0, 0]])
    assert np.isnan(sample(LINEAR, points, "linear")).tolist() == [False, True, True]


def test_an_overlay_on_the_same_grid_is_its_own_slice():
    vol = volume(LINEAR)
    assert np.array_equal(plane_on_grid(vol, vol, "y", 2, "linear"), LINEAR[:, 2, :])


def test_an_overlay_on_a_coarser_shifted_grid_goes_through_both_affines():
    # the overlay holds each voxel's world x; its voxels are 2 mm, starting at x = -3
    coarse = np.array([[2, 0, 0, -3], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]], float)
    world_x = (2 * np.arange(5) - 3)[:, None, None] * np.ones((5, 5, 5), np.float32)
    underlay = volume(np.zeros((6, 6, 6)))  # 1 mm voxels at the origin
    plane = plane_on_grid(volume(world_x, coarse), underlay, "z", 3, "linear")
    # underlay voxel (i, j, 3) is at world x = i: the overlay gives back i
    assert np.allclose(plane, np.arange(6)[:, None] * np.ones((6, 6)))
    plane = plane_on_grid(volume(world_x, coarse), underlay, "x", 5, "nearest")
    assert np.all(plane == 5)  # x = 5 is exactly an overlay voxel centre


def test_the_range_spans_what_is_shown_from_the_threshold():
    shown = [np.ma.masked_less(np.array([0.0, 2.0, 5.0]), 1.5)]
    assert overlay_range(shown, Overlay(volume="o", threshold=1.5)) == (1.5, 5.0)
    assert overlay_range(shown, Overlay(volume="o")) == (2.0, 5.0)
    assert overlay_range(shown, Overlay(volume="o", range=(0, 9))) == (0.0, 9.0)
    nothing = [np.ma.masked_all(3)]
    assert overlay_range(nothing, Overlay(volume="o", threshold=4)) == (4.0, 5.0)


PANELS = {
    "slice": {"kind": "slice", "volume": "head", "index": 2},
    "montage": {"kind": "montage", "volume": "head", "indices": [1, 2, 3]},
    "ortho": {"kind": "ortho", "volume": "head"},
}
# the underlay is black; the overlay is a ramp along x: 0 1 2 3 4 5
RAMP = np.broadcast_to(np.arange(6, dtype=np.float32)[:, None, None], (6, 6, 6))


def draw(panel: dict, overlay: dict, figure=None, overlay_affine=None):
    spec = make_spec(
        [{**panel, "colormap": "gray", "overlay": {"volume": "stat", **overlay}}],
        {"width": 8, "height": 6, "dpi": 100, **(figure or {})},
        volumes=("head", "stat"),
    )
    volumes = {"head": volume(np.zeros((6, 6, 6))), "stat": volume(RAMP, overlay_affine)}
    return render(spec, volumes)


@pytest.mark.parametrize("kind", PANELS)
def test_every_slice_panel_draws_its_overlay_with_its_own_colorbar(kind):
    fig, _ = draw(PANELS[kind], {"threshold": 2, "colormap": "hot"})
    for ax in image_axes(fig):
        underlay, over = ax.images
        assert over.get_cmap().name == "hot"
        assert over.get_clim() == (2.0, 5.0)
    bars = colorbar_axes(fig)
    assert [b.get_ylabel() for b in bars] == ["head", "stat"]
    fig, _ = draw(PANELS[kind], {"threshold": 2, "colorbar": False})
    assert [b.get_ylabel() for b in colorbar_axes(fig)] == [""]


def test_pixels_below_the_threshold_are_transparent():
    # the slice at z = 2 shows x down the rows: rows 0-2 below the threshold, 3-5 above
    fig, files = draw(PANELS["slice"], {"threshold": 3, "colormap": "gray", "range": [0, 5]})
    (ax,) = image_axes(fig)
    image = pixels(files["png"])
    top_row, bottom_row = (pixel_at(image, ax, 0.5, fy) for fy in (1 - 0.5 / 6, 0.5 / 6))
    assert list(top_row) == [0, 0, 0]  # x = 0: the black underlay shows through
    assert list(bottom_row) == [255, 255, 255]  # x = 5: the overlay at its maximum


def test_pixels_blend_with_the_opacity():
    fig, files = draw(PANELS["slice"], {"colormap": "gray", "range": [0, 5], "opacity": 0.5})
    (ax,) = image_axes(fig)
    bottom_row = pixel_at(pixels(files["png"]), ax, 0.5, 0.5 / 6)
    assert np.all(np.abs(bottom_row - 128) <= 2)  # white at half opacity over black


def test_a_resampled_overlay_is_noted_once_per_figure(capsys):
    draw(PANELS["montage"], {"threshold": 1})
    assert capsys.readouterr().err == ""
    half = np.diag([0.5, 0.5, 0.5, 1.0])
    spec = make_spec(
        [{**PANELS[kind], "overlay": {"volume": "stat"}} for kind in ("montage", "ortho")],
        {"width": 8, "height": 4},
        volumes=("head", "stat"),
    )
    render(spec, {"head": volume(np.zeros((6, 6, 6))), "stat": volume(RAMP, half)})
    (note,) = capsys.readouterr().err.splitlines()
    assert "overlay 'stat' (6x6x6)" in note and "resampled (linear)" in note
