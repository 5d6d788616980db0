"""`ortho`: the point, the three views and their data, the crosshair, the layout."""

from __future__ import annotations

import numpy as np
import pytest
from rendering import colorbar_axes, image_axes, make_spec, pixels, render, row_across, volume

from voxspec.errors import UserError
from voxspec.model import OrthoPanel
from voxspec.render.ortho import ortho_point

DATA = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
# 2 mm voxels, voxel (0, 0, 0) at world (-10, 20, 4)
AFFINE = np.array([[2, 0, 0, -10], [0, 2, 0, 20], [0, 0, 2, 4], [0, 0, 0, 1]], float)


def panel(**keys) -> OrthoPanel:
    return OrthoPanel(kind="ortho", volume="head", **keys)


def test_the_point_defaults_to_the_centre_and_counts_negatives_from_the_end():
    vol = volume(DATA)
    assert ortho_point(panel(), vol) == (3, 3, 4)
    assert ortho_point(panel(at=(1, -1, -8)), vol) == (1, 6, 0)


def test_a_world_point_goes_through_the_inverse_affine():
    vol = volume(DATA, AFFINE)
    assert ortho_point(panel(at_world=(-6, 30, 10.9)), vol) == (2, 5, 3)


def test_points_outside_the_grid_are_located():
    with pytest.raises(UserError) as caught:
        ortho_point(panel(at_world=(0, 0, 0)), volume(DATA, AFFINE))
    assert caught.value.problems[0].where == ("at_world",)
    assert "outside" in caught.value.problems[0].message
    with pytest.raises(UserError) as caught:
        ortho_point(panel(at=(1, 7, 0)), volume(DATA))
    assert caught.value.problems[0].where == ("at", 1)


def draw(figure=None, data=DATA, **keys):
    spec = make_spec([{"kind": "ortho", "volume": "head", **keys}], figure)
    return render(spec, {"head": volume(data)})


def test_three_views_through_the_point_on_one_scale():
    fig, _ = draw(at=[1, 2, 3])
    x_view, y_view, z_view = image_axes(fig)
    assert np.array_equal(x_view.images[0].get_array(), DATA[1, :, :])
    assert np.array_equal(y_view.images[0].get_array(), DATA[:, 2, :])
    assert np.array_equal(z_view.images[0].get_array(), DATA[:, :, 3])
    assert [ax.texts[0].get_text() for ax in (x_view, y_view, z_view)] == [
        "x = 1",
        "y = 2",
        "z = 3",
    ]
    shown = np.concatenate([DATA[1].ravel(), DATA[:, 2].ravel(), DATA[:, :, 3].ravel()])
    clims = {ax.images[0].get_clim() for ax in (x_view, y_view, z_view)}
    assert clims == {(shown.min(), shown.max())}
    assert len(colorbar_axes(fig)) == 1


def test_the_crosshair_marks_the_point_in_each_view():
    fig, _ = draw(at=[1, 2, 3])
    x_view, y_view, z_view = image_axes(fig)
    # (row, column) of the point in each view: the two other axes, in order
    for ax, (row, column) in [(x_view, (2, 3)), (y_view, (1, 3)), (z_view, (1, 2))]:
        horizontal, vertical = ax.lines
        assert list(horizontal.get_ydata()) == [row, row]
        assert list(vertical.get_xdata()) == [column, column]
    fig, _ = draw(at=[1, 2, 3], crosshair=False, labels=False, colorbar=False)
    assert all(not ax.lines and not ax.texts for ax in image_axes(fig))
    assert colorbar_axes(fig) == []


def test_wide_slots_get_one_row_and_square_ones_two():
    def rows(figure) -> int:
        fig, _ = draw(figure)
        # views of unequal height share a row when their centres do
        return len(
            {
                round(ax.get_position().y0 + ax.get_position().height / 2, 3)
                for ax in image_axes(fig)
            }
        )

    assert rows({"width": 15, "height": 4}) == 1
    assert rows({"width": 8, "height": 8}) == 2


def test_pixels_show_the_crosshair_only_when_asked():
    dark = np.zeros((9, 9, 9), np.float32)

    def greenest(**keys) -> int:
        fig, files = draw({"width": 12, "height": 4, "dpi": 100}, data=dark, **keys)
        image = pixels(files["png"])
        # a quarter up the z view, only its vertical line crosses the row
        return int(row_across(image, image_axes(fig)[2], 0.25)[:, 1].max())

    assert greenest(colormap="gray") > 100
    assert greenest(colormap="gray", crosshair=False) == 0
