"""The transform pipeline: the tutorial's transform on real data, and each bad-data case."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path
from skimage.transform import resize

from voxspec.errors import UserError
from voxspec.model import Volume
from voxspec.steps import apply_steps
from voxspec.volume import VolumeData

TUTORIAL_STEPS = [
    "normalize",
    {"offset": -0.1},
    {"clip": [0, 1]},
    {"gamma": 0.4},
    {"contrast": 2},
    {"offset": -0.1},
    {"clip": [0, 1]},
]


def run(data, steps, affine=None):
    volume = Volume.model_validate({"source": {"builtin": "head-phantom"}, "steps": steps})
    loaded = VolumeData(np.asarray(data, np.float32), np.eye(4) if affine is None else affine)
    return apply_steps(loaded, volume.steps, "head", ("volumes", "head"))


@pytest.fixture(scope="module")
def anatomical():
    """A real scan that nibabel ships (a small T1 image), as float64 like the tutorial."""
    return np.asarray(nib.load(f"{data_path}/anatomical.nii").get_fdata())


def tutorial_transform(arr):
    def normalize(a):
        return (a - a.min()) / (a.max() - a.min())

    def scale_by(a, factor):
        mean = np.mean(a)
        return (a - mean) * factor + mean

    return np.clip(scale_by(np.clip(normalize(arr) - 0.1, 0, 1) ** 0.4, 2) - 0.1, 0, 1)


def test_tutorial_transform_on_real_data(anatomical):
    expected = tutorial_transform(anatomical)
    got = run(anatomical, TUTORIAL_STEPS).data
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_resize_matches_scikit_image(anatomical):
    transformed = tutorial_transform(anatomical)
    expected = resize(transformed, (20, 20, 20), mode="constant")
    got = run(anatomical, [*TUTORIAL_STEPS, {"resize": 20}]).data
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_crop_flip_and_cut_match_the_tutorial_indexing():
    rng = np.random.default_rng(0)
    cube = rng.random((12, 12, 12)).astype(np.float32) + 0.1
    cropped = run(cube, [{"crop": {"x": [0, 7], "z": [0, 5]}}, {"flip": ["y"]}]).data
    np.testing.assert_array_equal(cropped, cube[:7, ::-1, :5])
    cut = run(cube, [{"cut": {"normal": [-1, 1, 1], "offset": 5}}]).data
    expected = cube.copy()
    for x in range(12):
        for y in range(12):
            for z in range(max(x - y + 5, 0), 12):
                expected[x, y, z] = 0
    np.testing.assert_array_equal(cut, expected)


def test_negative_crop_bounds_count_from_the_end():
    cube = np.ones((10, 10, 10), np.float32)
    assert run(cube, [{"crop": {"x": [-3, None], "y": [None, -2]}}]).shape == (3, 8, 10)


def test_threshold_scale_offset():
    data = np.array([[[0.2, 0.5, 0.9]]], np.float32)
    out = run(data, [{"threshold": 0.5}, {"scale": 2}, {"offset": 1}]).data
    np.testing.assert_allclose(out, [[[1.0, 2.0, 2.8]]], rtol=1e-6)


def test_crop_and_flip_keep_the_world_position_of_voxels():
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = [10, 20, 30]
    data = np.arange(1, 4 * 5 * 6 + 1, dtype=np.float32).reshape(4, 5, 6)
    out = run(data, [{"crop": {"x": [1, 3]}}, {"flip": ["y"]}], affine)
    # voxel (0, 0, 0) of the result is old voxel (1, 4, 0)
    assert out.data[0, 0, 0] == data[1, 4, 0]
    np.testing.assert_allclose(out.affine @ [0, 0, 0, 1], affine @ [1, 4, 0, 1])


def test_canonical_reorients_to_ras():
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])  # x runs right-to-left (LAS)
    data = np.arange(1, 28, dtype=np.float32).reshape(3, 3, 3)
    out = run(data, ["canonical"], affine)
    np.testing.assert_array_equal(out.data, data[::-1])
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")


def test_constant_volume_under_normalize_is_an_error():
    with pytest.raises(UserError) as caught:
        run(np.full((4, 4, 4), 3.0), ["normalize"])
    problem = caught.value.problems[0]
    assert problem.where == ("volumes", "head", "steps", 0)
    assert "constant volume" in problem.message and "3" in problem.message


def test_nan_values_are_counted_and_replace_nan_fixes_them():
    data = np.ones((4, 4, 4), np.float32)
    data[0, 0, :2] = np.nan
    data[1, 1, 1] = np.inf
    with pytest.raises(UserError) as caught:
        run(data, ["normalize"])
    assert "3 NaN or infinite values" in caught.value.problems[0].message
    assert "replace_nan" in caught.value.problems[0].message
    data[2, 2, 2] = 5
    out = run(data, [{"replace_nan": 0}, "normalize"]).data
    assert np.isfinite(out).all() and out.max() == 1


def test_gamma_on_negative_values_is_an_error():
    with pytest.raises(UserError, match="gamma needs values >= 0"):
        run(np.linspace(-1, 1, 27).reshape(3, 3, 3), [{"gamma": 0.5}])


def test_nothing_left_to_draw_is_an_error():
    with pytest.raises(UserError, match="all zeros"):
        run(np.ones((4, 4, 4)), [{"threshold": 2}])
    with pytest.raises(UserError, match="empty after this step"):
        run(np.ones((4, 4, 4)), [{"crop": {"x": [3, 1]}}])


def test_two_dimensional_data_is_an_error():
    loaded = VolumeData(np.ones((4, 4), np.float32))
    with pytest.raises(UserError, match="2 dimensions"):
        apply_steps(loaded, [], "flat", ("volumes", "flat"))


def test_resize_beyond_memory_is_refused_before_allocating(monkeypatch):
    # a machine with 64 MiB: a 200^3 float64 resize (128 MB) must be refused, not tried
    monkeypatch.setattr("voxspec.steps.available_memory", lambda: 64 * 1024**2)
    with pytest.raises(UserError, match="needs 0.1 GiB"):
        run(np.ones((4, 4, 4)), [{"resize": 200}])
