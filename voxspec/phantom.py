"""The ``head-phantom`` builtin data source: a synthetic T1-weighted head MRI.

``head_phantom(shape)`` paints a head into a float32 volume of any shape: scalp (skin, bright
subcutaneous fat), a skull with marrow, CSF, a folded cortex (grey matter lining sulci and a
midline fissure, white matter inside), butterfly-shaped lateral ventricles, deep grey nuclei,
cerebellum, brainstem, and in the face the eyes in fat-filled orbits and the nasal cavity.

Axes are (x, y, z) = (left->right, posterior->anterior, inferior->superior): the eyes sit at
high y and low z, the top of the skull at high z. Coordinates are normalised to [-1, 1] on
every axis, so an anisotropic shape gives the same head sampled differently.

Intensities follow the scale of a raw T1 scan, 0..~1400: air 0, CSF ~150, grey matter
~340, white matter ~520, fat ~1300 (the brightest, as in a real scan). The volume is
bit-identical on every call and machine: sin/cos are only taken on small 1-D tables rounded
to 6 decimals (so last-bit differences between libm builds cannot leak), the 3-D work is
plain IEEE arithmetic, the noise is an integer hash, and the result is rounded to whole
numbers like a scanner's integer output.
"""

from __future__ import annotations

import numpy as np

from voxspec.errors import UserError

# T1-weighted intensities, arbitrary scanner units. As in a raw T1 scan, fat (scalp, orbits,
# marrow) is the brightest tissue and white matter sits at under half of the maximum.
SKIN = 420.0
FAT = 1300.0
MUSCLE = 300.0
BONE = 60.0
MARROW = 650.0
CSF = 150.0
GREY = 340.0
DEEP_GREY = 400.0
WHITE = 520.0
BRAINSTEM = 480.0
VITREOUS = 120.0
SCLERA = 230.0
LENS = 450.0

# Offsets from the intracranial surface outwards (normalised units).
CSF_RIM = 0.025  # subarachnoid space
SKULL = 0.085  # outer table
SCALP = 0.13  # skin surface

# Cortical folding: sulci are the zero set of a sum of plane waves (a labyrinth, like gyri).
# Directions are spread over the sphere; no wave is axis-aligned so no grid shows through.
FOLD_K = 14.0  # wave number: gyri about 0.22 wide
FOLD_WAVES = (
    (0.58, 0.71, 0.40, 0.3),
    (-0.83, 0.25, 0.50, 1.9),
    (0.12, -0.60, 0.79, 4.1),
    (0.70, -0.31, -0.64, 2.6),
    (-0.35, -0.88, -0.32, 5.3),
    (0.93, 0.18, 0.32, 0.9),
    (-0.20, 0.45, -0.87, 3.4),
)
SULCUS_HALF_WIDTH = 0.01
SULCUS_DEPTH = 0.2
CORTEX = 0.045  # grey matter thickness
FOLIA = 14.0  # cerebellar leaves per unit height

SLAB_VOXELS = 1 << 20


def head_phantom(shape: tuple[int, int, int] = (96, 96, 96)) -> np.ndarray:
    """A deterministic synthetic T1 head of ``shape`` (x, y, z) as float32, values >= 0."""
    shape = _check_shape(shape)
    vol = np.zeros(shape, np.float32)
    # Paint in slabs of z-planes: every step is voxel-wise, so the bytes are those of one
    # pass, but the many temporaries are slab-sized instead of volume-sized.
    step = max(1, SLAB_VOXELS // (shape[0] * shape[1]))
    for z0 in range(0, shape[2], step):
        grid = _Grid(shape, z0, min(z0 + step, shape[2]))
        slab = vol[:, :, z0 : z0 + step]
        _paint_head(slab, grid)
        _paint_cerebrum(slab, grid)
        _paint_hindbrain(slab, grid)
        _paint_face(slab, grid)
        _finish(slab, grid)
    return vol


def _check_shape(shape) -> tuple[int, int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) != 3 or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in dims
    ):
        raise UserError(f"head-phantom shape must be three positive integers, got {shape!r}")
    return tuple(int(n) for n in dims)


class _Grid:
    """Voxel-centre coordinates in [-1, 1] of the z-planes z0..z1 of a volume of ``shape``."""

    def __init__(self, shape: tuple[int, int, int], z0: int, z1: int):
        self.shape = (shape[0], shape[1], z1 - z0)
        self.z0 = z0
        axes = [((np.arange(n) + 0.5) * (2.0 / n) - 1.0).astype(np.float32) for n in shape]
        self.axes = [axes[0], axes[1], axes[2][z0:z1]]
        # Edges are ramps one (finest) voxel wide: partial-volume look, no staircase aliasing.
        self.edge = 2.0 / max(shape)
        self.everything = (slice(None),) * 3

    def box(self, lo, hi) -> tuple[slice, slice, slice]:
        """Index slices covering the normalised box [lo, hi] (plus an edge) on each axis."""
        pad = 2 * self.edge
        return tuple(
            slice(int(np.searchsorted(axis, a - pad)), int(np.searchsorted(axis, b + pad, "right")))
            for axis, a, b in zip(self.axes, lo, hi)
        )

    def coords(self, box):
        """Broadcastable x, y, z coordinate arrays of a box."""
        x, y, z = (axis[s] for axis, s in zip(self.axes, box))
        return x[:, None, None], y[None, :, None], z[None, None, :]


def _ellipsoid(x, y, z, center, radii) -> np.ndarray:
    """Approximate signed distance to an ellipsoid surface (negative inside)."""
    (cx, cy, cz), (ax, ay, az) = center, radii
    q = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2  # 1-D + 1-D: cheap 2-D
    q = q + ((z - cz) / az) ** 2
    np.sqrt(q, out=q)
    q -= 1.0
    q *= (ax + ay + az) / 3.0
    return q


def _smooth_min(a, b, k):
    """Union of two signed distances, with a fillet of size k instead of a crease."""
    h = b - a  # in place from here on: fewer slab-sized temporaries
    h *= 0.5 / k
    h += 0.5
    np.clip(h, 0.0, 1.0, out=h)
    out = a - b
    out *= h
    out += b
    h -= h * h
    h *= k
    out -= h
    return out


def _inside(sd, edge, level=0.0) -> np.ndarray:
    """Soft mask of sd < level: 1 inside, 0 outside, a linear ramp one voxel wide between."""
    mask = sd * (-1.0 / edge)
    mask += 0.5 + level / edge
    return np.clip(mask, 0.0, 1.0, out=mask)


def _paint(vol, box, mask, value) -> None:
    """Blend ``value`` into ``vol[box]`` with weight ``mask`` (layers painted outside-in)."""
    part = vol[box]
    step = np.subtract(value, part, dtype=np.float32)
    step *= mask
    part += step


def _sincos(t) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of a 1-D array, rounded so libm's last-bit differences cannot matter."""
    t = np.asarray(t, np.float64)
    return (
        np.round(np.sin(t), 6).astype(np.float32),
        np.round(np.cos(t), 6).astype(np.float32),
    )


def _waves(grid, box, waves, k) -> np.ndarray:
    """Sum of plane waves sin(k d.p + phase), RMS ~1, built from separable 1-D tables."""
    x, y, z = (axis[s].astype(np.float64) for axis, s in zip(grid.axes, box))
    out = np.zeros((len(x), len(y), len(z)), np.float32)
    for dx, dy, dz, phase in waves:
        sx, cx = _sincos(k * dx * x + phase)
        sy, cy = _sincos(k * dy * y)
        sz, cz = _sincos(k * dz * z)
        # sin(a+b+c) = sin(a+b) cos(c) + cos(a+b) sin(c), the (a+b) parts being 2-D only.
        sin_xy = sx[:, None] * cy[None, :] + cx[:, None] * sy[None, :]
        cos_xy = cx[:, None] * cy[None, :] - sx[:, None] * sy[None, :]
        out += sin_xy[:, :, None] * cz
        out += cos_xy[:, :, None] * sz
    out *= float(np.sqrt(2.0 / len(waves)))
    return out


# --- geometry (normalised coordinates) ---------------------------------------------------

CEREBRUM = ((0.0, -0.03, -0.03), (0.6, 0.8, 0.76))
CEREBELLUM = ((0.0, -0.5, -0.5), (0.42, 0.27, 0.22))
FACE = ((0.0, 0.26, -0.75), (0.64, 0.62, 0.45))
NOSE = ((0.0, 0.84, -0.88), (0.09, 0.12, 0.17))
EYE_X, EYE_Y, EYE_Z = 0.24, 0.68, -0.78
EYE_RADIUS = 0.11


def _intracranial(x, y, z):
    """Signed distance to the inner skull: cerebrum and posterior fossa, joined smoothly."""
    return _smooth_min(_ellipsoid(x, y, z, *CEREBRUM), _ellipsoid(x, y, z, *CEREBELLUM), 0.08)


def _paint_head(vol, grid):
    """Skin, subcutaneous fat, muscle, skull and CSF: everything outside the brain."""
    box = grid.everything
    x, y, z = grid.coords(box)
    inner = _intracranial(x, y, z)
    head = _smooth_min(inner - SCALP, _ellipsoid(x, y, z, *FACE), 0.1)
    neck = (np.sqrt((x / 0.4) ** 2 + ((y + 0.12) / 0.38) ** 2) - 1.0) * 0.39
    head = _smooth_min(head, np.maximum(neck, z + 0.35), 0.15)
    np.minimum(head, _ellipsoid(x, y, z, *NOSE), out=head)
    e = grid.edge
    _paint(vol, box, _inside(head, e), SKIN)
    _paint(vol, box, _inside(head, e, -0.012), FAT)
    _paint(vol, box, _inside(head, e, -0.04), MUSCLE)
    # Skull: dark compact bone around a band of bright fatty marrow (the diploe).
    _paint(vol, box, _inside(inner, e, SKULL), BONE)
    _paint(vol, box, _inside(inner, e, 0.068), MARROW)
    _paint(vol, box, _inside(inner, e, 0.048), BONE)
    _paint(vol, box, _inside(inner, e, CSF_RIM), CSF)


def _paint_cerebrum(vol, grid):
    """Cortex folded by sulci and the midline fissure, white matter, nuclei, ventricles."""
    (cx, cy, cz), (ax, ay, az) = CEREBRUM
    box = grid.box((cx - ax, cy - ay, cz - az), (cx + ax, cy + ay, cz + az))
    x, y, z = grid.coords(box)
    depth = -_ellipsoid(x, y, z, *CEREBRUM)  # > 0 inside
    # The interhemispheric fissure splits the hemispheres down to the arch of the corpus
    # callosum, and all the way through in front of and behind it.
    callosum = np.sqrt(((y + 0.06) / 0.46) ** 2 + ((z + 0.02) / 0.24) ** 2) - 1.0
    fissure = np.maximum(np.abs(x) - 0.005, -callosum)
    surface = np.minimum(depth, fissure)  # depth below the pial surface, medial side too
    del depth, fissure, callosum
    sulci = np.abs(_waves(grid, box, FOLD_WAVES, FOLD_K))
    sulci *= 1.0 / FOLD_K  # |s| / |grad s|: distance to the sulcus mid-plane
    sulci -= SULCUS_HALF_WIDTH
    # Each sulcus ends at its own depth, or their floors would outline a smaller brain.
    fundus = _waves(grid, box, FOLD_WAVES[3:6], FOLD_K * 0.7)
    fundus *= SULCUS_DEPTH * 0.45
    fundus += SULCUS_DEPTH
    fundus -= surface
    # Distance into tissue: beside a sulcus it is the distance to its wall, below it the
    # distance to its floor; so grey matter lines every sulcus with the same thickness.
    tissue = np.minimum(surface, np.maximum(sulci, -fundus))
    del sulci, surface, fundus
    np.negative(tissue, out=tissue)  # as a signed distance: negative inside the brain
    e = grid.edge
    _paint(vol, box, _inside(tissue, e), GREY)
    _paint(vol, box, _inside(tissue, e, -CORTEX), WHITE)
    del tissue
    _paint_deep(vol, grid)


def _paint_deep(vol, grid):
    """Deep grey nuclei and the ventricles, painted in a box around the midline."""
    box = grid.box((-0.45, -0.6, -0.35), (0.45, 0.5, 0.35))
    x, y, z = grid.coords(box)
    ax_ = np.abs(x)  # mirrored: every paired structure is built once, for both sides
    e = grid.edge
    thalamus = _ellipsoid(ax_, y, z, (0.085, -0.2, -0.04), (0.08, 0.14, 0.1))
    caudate = _ellipsoid(ax_, y, z, (0.19, 0.14, 0.05), (0.05, 0.14, 0.08))
    putamen = _ellipsoid(ax_, y, z, (0.28, 0.02, -0.06), (0.05, 0.16, 0.11))
    nuclei = np.minimum(np.minimum(thalamus, caudate), putamen)
    _paint(vol, box, _inside(nuclei, e), DEEP_GREY)
    del thalamus, caudate, putamen, nuclei
    # Lateral ventricles: in coronal section each is an ellipse tilted down and outwards
    # from the midline, the pair making the "butterfly"; in sagittal section an arch.
    yy = y + 0.08
    zc = 0.1 - 0.5 * yy**2
    tilt_c, tilt_s = 0.87, 0.5  # 30 degrees
    u = (ax_ - 0.1) * tilt_c - (z - zc) * tilt_s
    v = (ax_ - 0.1) * tilt_s + (z - zc) * tilt_c
    q = (u / 0.13) ** 2 + (v / 0.05) ** 2 + (yy / 0.46) ** 2
    ventricles = (np.sqrt(q) - 1.0) * 0.06
    ventricles = np.maximum(ventricles, 0.005 - ax_)  # septum pellucidum between them
    third = _ellipsoid(x, y, z, (0.0, -0.12, -0.1), (0.014, 0.14, 0.09))
    _paint(vol, box, _inside(np.minimum(ventricles, third), e), CSF)


def _paint_hindbrain(vol, grid):
    """Cerebellum with folia, brainstem and, below the skull base, the spine and airway."""
    e = grid.edge
    (cx, cy, cz), radii = CEREBELLUM
    lo = tuple(c - r - 0.05 for c, r in zip((cx, cy, cz), radii))
    hi = tuple(c + r + 0.05 for c, r in zip((cx, cy, cz), radii))
    box = grid.box(lo, hi)
    x, y, z = grid.coords(box)
    sd = _ellipsoid(x, y, z, *CEREBELLUM)
    inside = _inside(sd, e)
    _paint(vol, box, _inside(sd, e, 0.02), CSF)  # tentorium and cisterns around it
    _paint(vol, box, inside, GREY)
    # Folia: leaves stacked like bowls, wobbling with the fold field. A triangle wave (exact
    # arithmetic) gives a CSF cleft between leaves and a white lamina in each, the laminae
    # joining a white core: the arbor vitae.
    leaf = _waves(grid, box, FOLD_WAVES[:3], FOLD_K)
    leaf *= 0.35
    leaf += (z - cz + 1.5 * (y - cy) ** 2 + 0.8 * x**2) * FOLIA
    leaf %= 1.0
    leaf -= 0.5
    np.abs(leaf, out=leaf)
    leaf *= 2.0  # 1 at the clefts, 0 mid-leaf
    outer = np.clip((sd + 0.12) / 0.03, 0.0, 1.0)
    _paint(vol, box, np.clip((leaf - 0.7) / 0.25, 0.0, 1.0) * outer * inside, CSF)
    lamina = np.clip((0.3 - leaf) / 0.3, 0.0, 1.0) * _inside(sd, e, -0.04)
    _paint(vol, box, np.maximum(lamina, _inside(sd, e, -0.12)), WHITE)
    del sd, inside, leaf, outer, lamina
    # Brainstem: a column leaning back as it goes down, with the pons bulging in front.
    box = grid.box((-0.3, -0.45, -1.0), (0.3, 0.3, -0.15))
    x, y, z = grid.coords(box)
    yc = -0.16 + 0.12 * (z + 0.3)
    stem = (np.sqrt((x / 0.09) ** 2 + ((y - yc) / 0.08) ** 2) - 1.0) * 0.085
    stem = np.maximum(stem, z + 0.2)
    stem = np.minimum(stem, _ellipsoid(x, y, z, (0.0, -0.1, -0.45), (0.13, 0.11, 0.13)))
    below_brain = np.clip((-0.3 - z) / 0.08, 0.0, 1.0)  # above it the stem joins the brain
    below_skull = np.clip((-0.8 - z) / 0.05, 0.0, 1.0)
    # Below the skull base the cord runs in a bony canal, the vertebral body in front of it
    # and the airway in front of that.
    yy = y - yc
    canal = (np.sqrt((x / 0.17) ** 2 + (yy / 0.16) ** 2) - 1.0) * 0.16
    _paint(vol, box, _inside(canal, e) * below_skull, BONE)
    body = (np.sqrt((x / 0.11) ** 2 + ((yy - 0.25) / 0.08) ** 2) - 1.0) * 0.09
    _paint(vol, box, _inside(body, e) * below_skull, BONE)
    _paint(vol, box, _inside(body, e, -0.015) * below_skull, MARROW)
    airway = (np.sqrt((x / 0.1) ** 2 + ((yy - 0.42) / 0.045) ** 2) - 1.0) * 0.06
    _paint(vol, box, _inside(airway, e) * below_skull, 0.0)
    _paint(vol, box, _inside(stem, e, 0.025) * below_brain, CSF)
    _paint(vol, box, _inside(stem, e), BRAINSTEM)
    fourth = _ellipsoid(x, y, z, (0.0, -0.25, -0.48), (0.04, 0.03, 0.07))
    _paint(vol, box, _inside(fourth, e), CSF)


def _paint_face(vol, grid):
    """Eyes in their fat-filled orbits, the nasal cavity and maxillary sinuses (air)."""
    e = grid.edge
    box = grid.box((-0.6, 0.3, -1.0), (0.6, 1.0, -0.45))
    x, y, z = grid.coords(box)
    ax_ = np.abs(x)
    orbit = _ellipsoid(ax_, y, z, (EYE_X, EYE_Y - 0.08, EYE_Z), (0.15, 0.2, 0.15))
    _paint(vol, box, _inside(orbit, e), FAT)
    eye = _ellipsoid(ax_, y, z, (EYE_X, EYE_Y, EYE_Z), (EYE_RADIUS,) * 3)
    _paint(vol, box, _inside(eye, e), SCLERA)
    _paint(vol, box, _inside(eye, e, -0.014), VITREOUS)
    lens = _ellipsoid(ax_, y, z, (EYE_X, EYE_Y + 0.085, EYE_Z), (0.045, 0.018, 0.045))
    _paint(vol, box, _inside(lens, e), LENS)
    # Nasal cavity between the orbits (split by the septum) and the sinuses below them.
    nasal = _ellipsoid(ax_, y, z, (0.0, 0.6, -0.9), (0.09, 0.2, 0.2))
    nasal = np.maximum(nasal, 0.012 - ax_)
    sinus = _ellipsoid(ax_, y, z, (0.21, 0.5, -1.02), (0.11, 0.14, 0.1))
    _paint(vol, box, _inside(np.minimum(nasal, sinus), e), 0.0)


def _finish(vol, grid) -> None:
    """Scanner realism: a smooth receive-coil bias, a little noise, integer rounding."""
    x, y, z = grid.coords(grid.everything)
    gain = (1.0 + 0.05 * z) - 0.03 * y  # brighter near the crown coil elements
    vol *= gain
    # Noise from an integer hash of the voxel index: exact on every machine, unlike a
    # float RNG whose stream numpy does not promise to keep across versions.
    nx, ny, nz = grid.shape
    i, j = np.arange(nx, dtype=np.uint32), np.arange(ny, dtype=np.uint32)
    k = np.arange(grid.z0, grid.z0 + nz, dtype=np.uint32)
    h = (i * np.uint32(73856093))[:, None, None] ^ (j * np.uint32(19349663))[None, :, None]
    h = h ^ (k * np.uint32(83492791))[None, None, :]
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    noise = (h >> np.uint32(8)).astype(np.float32)  # 24 bits: exact in float32
    del h
    noise *= 0.06 / 2**24
    noise += 0.97  # multiplicative, +-3%: air stays exactly 0
    vol *= noise
    del noise
    np.rint(vol, out=vol)
    np.maximum(vol, 0.0, out=vol)
