"""The head-phantom data source: shape, determinism, and that it reads as a head MRI."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from voxspec import phantom
from voxspec.errors import UserError
from voxspec.phantom import head_phantom

WHITE_MATTER_MIN = 470  # white matter is ~520, grey matter ~340, CSF ~150


@pytest.fixture(scope="module")
def head() -> np.ndarray:
    return head_phantom((96, 96, 96))


def _index(n: int, c: float) -> int:
    """Index of the voxel whose centre is nearest the normalised coordinate c in [-1, 1]."""
    return int(np.clip(round((c + 1) / 2 * n - 0.5), 0, n - 1))


def _near(vol: np.ndarray, x: float, y: float, z: float, r: float = 0.03) -> np.ndarray:
    """The voxels within r (normalised units, per axis) of the point (x, y, z)."""
    return vol[
        tuple(slice(_index(n, c - r), _index(n, c + r) + 1) for n, c in zip(vol.shape, (x, y, z)))
    ]


@pytest.mark.parametrize(
    "shape", [(96, 96, 96), (2, 2, 2), (1, 1, 1), (3, 5, 7), (64, 128, 40), (17, 9, 33)]
)
def test_shape_dtype_and_range(shape):
    vol = head_phantom(shape)
    assert vol.shape == shape
    assert vol.dtype == np.float32
    assert np.isfinite(vol).all()
    assert vol.min() >= 0
    if min(shape) >= 32:  # fine enough to sample the scalp fat: a T1 scale like a real scan
        assert 1000 < vol.max() < 2000


def test_default_shape():
    assert head_phantom().shape == (96, 96, 96)


def test_same_bytes_on_every_call():
    assert head_phantom((50, 60, 40)).tobytes() == head_phantom((50, 60, 40)).tobytes()


@pytest.mark.parametrize("slab_voxels", [1, 1000, 1 << 40])
def test_painting_in_slabs_does_not_change_the_bytes(monkeypatch, slab_voxels):
    reference = head_phantom((37, 53, 29))
    monkeypatch.setattr(phantom, "SLAB_VOXELS", slab_voxels)
    assert head_phantom((37, 53, 29)).tobytes() == reference.tobytes()


def test_bytes_are_pinned():
    # Figures built on the phantom must reproduce on any machine. If a change to the
    # phantom is intended, update this digest (and look at the slices again).
    digest = hashlib.sha256(head_phantom((40, 48, 36)).tobytes()).hexdigest()
    assert digest == "5b77713686d4b525f6a9f11c9c7a5599fbe1a23e4899b9c7a3c5fe7e3dcf3c5a"


@pytest.mark.parametrize(
    "shape",
    [(96, 96), (96, 96, 96, 1), (0, 4, 4), (4, -1, 4), (2.5, 4, 4), (True, 4, 4), 96, "abc"],
)
def test_bad_shapes_are_user_errors(shape):
    with pytest.raises(UserError, match="head-phantom shape"):
        head_phantom(shape)


def test_numpy_integers_are_fine():
    assert head_phantom((np.int64(4), np.int32(5), 6)).shape == (4, 5, 6)


def test_air_in_the_corners_is_exactly_zero(head):
    c = head.shape[0] // 10
    for sx in (slice(0, c), slice(-c, None)):
        for sy in (slice(0, c), slice(-c, None)):
            for sz in (slice(0, c), slice(-c, None)):
                assert not head[sx, sy, sz].any()


def test_not_constant_with_grey_and_white_matter(head):
    inside = head[head > 0]
    assert 0.25 < inside.size / head.size < 0.6  # a head in air, not a block
    assert inside.std() > 100
    grey = ((inside > 290) & (inside < 390)).mean()
    white = ((inside > WHITE_MATTER_MIN) & (inside < 570)).mean()
    assert grey > 0.1 and white > 0.1


@pytest.mark.parametrize("shape", [(96, 96, 96), (64, 128, 40)])
def test_roughly_left_right_symmetric(shape):
    vol = head_phantom(shape)
    mirrored = vol[::-1]
    assert np.corrcoef(vol.ravel(), mirrored.ravel())[0, 1] > 0.95
    assert ((vol > 100) != (mirrored > 100)).mean() < 0.005  # the outline is symmetric


@pytest.mark.parametrize("shape", [(96, 96, 96), (64, 128, 40), (48, 48, 48)])
def test_eyes_are_dark_globes_in_bright_orbital_fat_at_the_front_bottom(shape):
    assert phantom.EYE_Y > 0.5 and phantom.EYE_Z < -0.5  # anterior (high y), inferior (low z)
    vol = head_phantom(shape)
    for x in (-phantom.EYE_X, phantom.EYE_X):
        vitreous = _near(vol, x, phantom.EYE_Y, phantom.EYE_Z).mean()
        orbital_fat = _near(vol, x, phantom.EYE_Y - 0.18, phantom.EYE_Z).mean()
        assert vitreous < 200
        assert orbital_fat > 1000


def test_tutorial_low_slice_shows_the_eye_sockets_on_the_right(head):
    # The tutorial shows imshow(arr[:, :, 5]): rows are x, columns y, so "right" is high y.
    low = head[:, :, 5]
    fat = low > 1000
    half = low.shape[1] // 2
    assert fat[:, half:].sum() > 2 * fat[:, :half].sum()


def test_ventricles_are_darker_than_white_matter(head):
    for x in (-0.1, 0.1):
        ventricle = _near(head, x, -0.08, 0.1).mean()
        white = _near(head, 3 * x, -0.1, 0.3).mean()
        assert white > WHITE_MATTER_MIN
        assert ventricle < 0.5 * white


def test_cortex_is_folded(head):
    # Around a ring at constant depth under the surface, a smooth brain would give one
    # tissue; gyri and sulci make it alternate between white and grey matter.
    nx, ny, nz = head.shape
    (cx, cy, cz), (ax, ay, az) = phantom.CEREBRUM
    angles = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    ring = head[
        [_index(nx, cx + 0.66 * ax * np.cos(t)) for t in angles],
        [_index(ny, cy + 0.66 * ay * np.sin(t)) for t in angles],
        _index(nz, cz + 0.43 * az),
    ]
    is_white = ring > WHITE_MATTER_MIN - 40
    assert (is_white != np.roll(is_white, 1)).sum() >= 10


def test_midline_fissure_separates_the_hemispheres(head):
    # Above the corpus callosum the two mid-sagittal planes hold cortex and CSF only.
    nx, ny, nz = head.shape
    (cx, cy, cz), (ax, ay, az) = phantom.CEREBRUM
    ys = slice(_index(ny, cy - 0.59 * ay), _index(ny, cy + 0.54 * ay))
    zs = slice(_index(nz, cz + 0.43 * az), _index(nz, cz + 0.76 * az))
    midline = head[[(nx - 1) // 2, nx // 2]][:, ys, zs]
    lateral = head[[_index(nx, cx - 0.33 * ax), _index(nx, cx + 0.33 * ax)]][:, ys, zs]
    assert (midline > WHITE_MATTER_MIN).mean() == 0
    assert (lateral > WHITE_MATTER_MIN).mean() > 0.3


def test_tutorial_transform_gives_a_spread_histogram(head):
    v = (head - head.min()) / (head.max() - head.min())
    v = np.clip(v - 0.1, 0, 1) ** 0.4
    v = (v - v.mean()) * 2 + v.mean()
    v = np.clip(v - 0.1, 0, 1)
    tissue = v[head > 0]
    assert (tissue >= 1).mean() < 0.25  # only fat saturates, not the brain
    q25, q50, q75 = np.quantile(tissue, [0.25, 0.5, 0.75])
    assert 0.4 < q50 < 0.9
    assert q75 - q25 > 0.25


# --- band-limited: no aliasing on any grid -----------------------------------------------


def _gain(p: np.ndarray) -> np.ndarray:
    """The phantom's smooth receive-coil gain at points p (n x 3), to divide it out."""
    return (1.0 + 0.05 * p[:, 2]) - 0.03 * p[:, 1]


def _ray(vol: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Gain-corrected voxel values met from outside the head inwards along a ray from the
    centre of the brain, sampled five times per voxel (each voxel as the tutorial shows it:
    one value, no interpolation)."""
    shape = np.array(vol.shape)
    t = np.arange(1.3, 0.2, -0.4 / shape.max())
    p = np.array(phantom.CEREBRUM[0]) + t[:, None] * direction
    p = p[np.all(np.abs(p) < 1, axis=1)]
    i = np.clip(np.round((p + 1) / 2 * shape - 0.5).astype(int), 0, shape - 1)
    return vol[i[:, 0], i[:, 1], i[:, 2]] / _gain(p)


def _cone(axis, half_angle: float, count: int) -> list[np.ndarray]:
    """``count`` directions spread evenly within ``half_angle`` of ``axis`` (a spiral)."""
    axis = np.asarray(axis, float)
    u = np.cross(axis, [0.3, 0.5, 0.8])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    rays = []
    for k in range(count):
        r, phi = half_angle * np.sqrt((k + 0.5) / count), k * 2.39996
        rays.append(np.cos(r) * axis + np.sin(r) * (np.cos(phi) * u + np.sin(phi) * v))
    return rays


@pytest.mark.parametrize("shape", [(48, 48, 48), (96, 96, 96), (64, 128, 40)])
@pytest.mark.parametrize("pole", [(0, 0, 1), (1, 0, 0), (0, -1, 0)], ids=["top", "side", "back"])
def test_the_scalp_does_not_alias(shape, pole):
    # Rays through the scalp near a pole of the head cross its shells at every sub-voxel
    # phase. Hard shells thinner than a voxel make the brightest value met (the fat) swing
    # with that phase: the concentric rings of a 3-D rendering. Band-limited shells a few
    # voxels thick give every ray the same fat, to within the noise and the sampling of a
    # smooth profile.
    vol = head_phantom(shape)
    peaks = []
    for direction in _cone(pole, 0.35, 150):
        profile = _ray(vol, direction)
        peaks.append(profile[np.argmax(profile > 0) :].max())
    peaks = np.array(peaks)
    assert peaks.std() / peaks.mean() < 0.08
    assert peaks.min() > 0.65 * peaks.max()


@pytest.mark.parametrize("shape", [(48, 48, 48), (96, 96, 96), (64, 128, 40), (157, 189, 68)])
def test_edges_are_soft_by_the_voxels_of_each_axis(shape):
    # The skin's outer edge, crossed along each axis (top, both sides, back), rises from 10 %
    # to 50 % of the skin's value over about one voxel of that axis: a smooth step of
    # EDGE_VOXELS voxels, whatever the grid's spacing on that axis. A hard edge rises within
    # one sample (at most 0.4 voxel, interpolated).
    vol = head_phantom(shape).astype(np.float64)
    (cx, cy, cz), _ = phantom.CEREBRUM
    centre = [_index(shape[0], cx + 0.1), _index(shape[1], cy), _index(shape[2], cz)]
    for axis, outwards in ((2, 1), (0, 1), (0, -1), (1, -1)):
        index = list(centre)
        index[axis] = slice(None)
        line = vol[tuple(index)][::-outwards]  # from the air inwards

        def crossing(level, line=line):
            k = int(np.argmax(line > level))
            return k - 1 + (level - line[k - 1]) / (line[k] - line[k - 1])

        rise = crossing(0.5 * phantom.SKIN) - crossing(0.1 * phantom.SKIN)
        assert 0.7 < rise < 1.6, (axis, outwards, rise)
