"""`montage`: which slices, how they are laid out, one shared scale, pixels."""

from __future__ import annotations

import numpy as np
import pytest
from rendering import (
    box_in_figure,
    colorbar_axes,
    image_axes,
    make_spec,
    pixel_at,
    pixels,
    render,
    volume,
)

from voxspec.errors import UserError
from voxspec.model import MontagePanel
from voxspec.render.montage import montage_indices

# slice k along z holds the value k everywhere: a tile's colour tells its index
LAYERS = np.broadcast_to(np.arange(10, dtype=np.float32), (6, 8, 10))


def panel(**keys) -> MontagePanel:
    return MontagePanel(kind="montage", volume="head", **keys)


def test_count_takes_the_centres_of_equal_slabs():
    assert montage_indices(panel(count=4), 96) == [12, 36, 60, 84]
    assert montage_indices(panel(count=5), 5) == [0, 1, 2, 3, 4]


def test_the_default_count_shows_every_slice_of_a_small_volume():
    assert montage_indices(panel(), 3) == [0, 1, 2]


def test_explicit_indices_count_from_the_end_when_negative():
    assert montage_indices(panel(indices=[0, -1, 3]), 10) == [0, 9, 3]


def test_bad_indices_are_located():
    with pytest.raises(UserError) as caught:
        montage_indices(panel(indices=[1, 10]), 10)
    assert caught.value.problems[0].where == ("indices", 1)
    with pytest.raises(UserError) as caught:
        montage_indices(panel(count=11), 10)
    assert caught.value.problems[0].where == ("count",)


def draw(figure=None, **keys):
    spec = make_spec([{"kind": "montage", "volume": "head", **keys}], figure)
    return render(spec, {"head": volume(LAYERS)})


def test_one_tile_per_slice_with_its_label_and_data():
    fig, _ = draw(indices=[2, 5, 9])
    tiles = image_axes(fig)
    assert len(tiles) == 3
    for ax, k in zip(tiles, [2, 5, 9]):
        assert [t.get_text() for t in ax.texts] == [f"z = {k}"]
        assert np.all(ax.images[0].get_array() == k)


def test_labels_can_be_left_out():
    fig, _ = draw(indices=[2, 5], labels=False)
    assert all(not ax.texts for ax in image_axes(fig))


def test_one_shared_scale_and_one_colorbar():
    fig, _ = draw(indices=[2, 5, 9])
    assert {ax.images[0].get_clim() for ax in image_axes(fig)} == {(2.0, 9.0)}
    (bar,) = colorbar_axes(fig)
    assert bar.get_ylim() == (2.0, 9.0)
    fig, _ = draw(indices=[2, 5], colorbar=False)
    assert colorbar_axes(fig) == []


def rows_and_columns(fig) -> tuple[int, int]:
    boxes = [ax.get_position() for ax in image_axes(fig)]
    return len({round(b.y0, 3) for b in boxes}), len({round(b.x0, 3) for b in boxes})


def test_default_grid_suits_the_slot():
    square = {"width": 8, "height": 8}
    assert rows_and_columns(draw(square, count=9, colorbar=False)[0]) == (3, 3)
    wide = {"width": 16, "height": 3}
    assert rows_and_columns(draw(wide, count=4, colorbar=False)[0]) == (1, 4)
    tall = {"width": 3, "height": 12}
    assert rows_and_columns(draw(tall, count=4, colorbar=False)[0]) == (4, 1)


def test_asked_columns_win():
    fig, _ = draw({"width": 16, "height": 3}, count=6, columns=2)
    assert rows_and_columns(fig) == (3, 2)


def test_tiles_and_colorbar_stay_inside_their_slot():
    # the montage is the second of two panels: nothing it draws reaches into the first
    # panel (with its tick labels) or out of the figure
    spec = make_spec(
        [
            {"kind": "slice", "volume": "head", "colorbar": False},
            {"kind": "montage", "volume": "head", "count": 6, "title": "montage"},
        ],
        {"width": 12, "height": 5},
    )
    fig, _ = render(spec, {"head": volume(LAYERS)})
    slice_ax, *tiles = image_axes(fig)
    first_panel_ends = slice_ax.get_tightbbox().transformed(fig.transFigure.inverted()).x1
    for ax in [*tiles, *colorbar_axes(fig)]:
        box = box_in_figure(fig, ax)
        assert first_panel_ends < box.x0 < box.x1 <= 1.0 and 0.0 <= box.y0 < box.y1 <= 1.0


def test_pixels_show_each_slice_on_the_shared_grey_scale():
    fig, files = draw(
        {"width": 6, "height": 3, "dpi": 100},
        indices=[0, 9, 5],
        colormap="gray",
        range=[0, 9],
        labels=False,
    )
    image = pixels(files["png"])
    black, white, middle = (pixel_at(image, ax, 0.5, 0.5) for ax in image_axes(fig))
    assert list(black) == [0, 0, 0]
    assert list(white) == [255, 255, 255]
    assert np.all(np.abs(middle - 255 * 5 / 9) <= 2)
