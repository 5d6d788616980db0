"""The ``head-phantom`` builtin data source: a synthetic T1-weighted head MRI.

``head_phantom(shape)`` paints a head into a float32 volume of any shape: scalp (skin, bright
subcutaneous fat), a skull with marrow, CSF, a folded cortex (grey matter lining sulci and a
midline fissure, white matter inside), butterfly-shaped lateral ventricles, deep grey nuclei,
cerebellum, brainstem, and in the face the eyes in fat-filled orbits and the nasal cavity.

Axes are (x, y, z) = (left->right, posterior->anterior, inferior->superior): the eyes sit at
high y and low z, the top of the skull at high z. Coordinates are normalised to [-1, 1] on
every axis, so an anisotropic shape gives the same head sampled differently.

Intensities follow the scale of a raw T1 scan, 0..~1400: air 0, CSF ~150, grey matter
~340, white matter ~520, fat ~1300 (the brightest, as in a real scan).

Band-limited, like a scan. Every tissue boundary is a smooth step ``EDGE_VOXELS`` voxels of
the requested grid wide along its normal, like a scanner's point spread: so an anisotropic
grid gets steps of the same number of voxels on each axis, and a 24^3 grid as smooth a head
as a 256^3 one. Each boundary is a level of a field that is (near it) a signed distance in
normalised units; the step's width comes from the field's gradient in voxel units, taken by
central differences over a one-voxel halo, so the bytes do not depend on how the volume is
cut into slabs. A layer thinner than a step (a sulcus, the fissure, a coarse grid's skull)
is the difference of two steps, a fainter and wider band; detail finer than the grid can
hold (the cerebellar folia) fades to its mean. Nothing is sampled from a hard edge, so no
intensity swings with where a boundary falls between voxel centres.

The shells around the brain are each a few % of the head's radius (skin 0.08, fat 0.05,
skull 0.075, CSF 0.04, where the head is ~0.78 x 0.92 x 0.89): two to four voxels on a 96^3
grid, and on the tutorial's 50^3 the skin and the skull still two. The skin is thick and of
middling intensity so that, through the tutorial's transform (alpha = value), it rather
than the bright fat under it makes the surface of a 3-D rendering.

The volume is bit-identical on every call and machine: sin/cos are only taken on small 1-D
tables rounded to 6 decimals (so last-bit differences between libm builds cannot leak), the
3-D work is exactly rounded IEEE arithmetic (+, -, *, /, sqrt; min, max, abs, floor), the
noise is an integer hash, and the result is rounded to whole numbers like a scanner's
integer output.
"""

from __future__ import annotations

import numpy as np

from voxspec.errors import UserError

# T1-weighted intensities, arbitrary scanner units. As in a raw T1 scan, fat (scalp, orbits,
# marrow) is the brightest tissue and white matter sits at under half of the maximum.
SKIN = 300.0
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

# Width of every tissue boundary: a smooth step (C1 cubic) over this many voxels along the
# boundary's normal. Its 10-90 % rise takes 1.8 voxels, like a scanner's point spread.
EDGE_VOXELS = 3.0

# The shells around the brain, from the intracranial surface outwards (normalised units,
# as distances: each layer has the same thickness all round).
CSF_RIM = 0.04  # subarachnoid space
INNER_TABLE = 0.018  # compact bone
DIPLOE = 0.039  # fatty marrow between the tables
OUTER_TABLE = 0.018
SKULL = CSF_RIM + INNER_TABLE + DIPLOE + OUTER_TABLE  # outer surface of the skull
FAT_LAYER = 0.05  # subcutaneous fat
SKIN_LAYER = 0.08  # skin and the dense tissue under it
EYELID_LAYER = 0.02
SCALP = SKULL + FAT_LAYER + SKIN_LAYER  # skin surface

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
SULCUS_HALF_WIDTH = 0.012
SULCUS_DEPTH = 0.2
FISSURE_HALF_WIDTH = 0.012
SEPTUM_HALF_WIDTH = 0.008
CORTEX = 0.045  # grey matter thickness
FOLIA = 8.0  # cerebellar lobules per unit height
FOLIA_CUTOFF = 0.35  # cycles per voxel at which the folia have faded out

SLAB_VOXELS = 1 << 20


def head_phantom(shape: tuple[int, int, int] = (96, 96, 96)) -> np.ndarray:
    """A deterministic synthetic T1 head of ``shape`` (x, y, z) as float32, values >= 0."""
    shape = _check_shape(shape)
    vol = np.zeros(shape, np.float32)
    # Paint in slabs of z-planes: every step is voxel-wise (a voxel's value depends on the
    # fields at it and its 26 neighbours, always computed from the same coordinates), so the
    # bytes are those of one pass, but the many temporaries are slab-sized.
    step = max(1, SLAB_VOXELS // (shape[0] * shape[1]))
    for z0 in range(0, shape[2], step):
        z1 = min(z0 + step, shape[2])
        grid = _Grid(shape, z0, z1)
        slab = vol[:, :, z0:z1]
        _paint_head(slab, grid)
        _paint_cerebrum(slab, grid)
        _paint_deep(slab, grid)
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


# --- sampling: regions, fields, soft masks -------------------------------------------------


class _Grid:
    """The z-planes z0..z1 of a volume of ``shape``, whose voxel centres span [-1, 1]."""

    def __init__(self, shape: tuple[int, int, int], z0: int, z1: int):
        self.shape = shape
        self.z0, self.z1 = z0, z1

    def coordinates(self, axis: int, start: int, stop: int) -> np.ndarray:
        """Normalised centres of voxels start..stop-1 on ``axis`` (beyond the grid too)."""
        n = self.shape[axis]
        return ((np.arange(start, stop) + 0.5) * (2.0 / n) - 1.0).astype(np.float32)

    def region(self, lo=(-2.0,) * 3, hi=(2.0,) * 3) -> _Region:
        """The voxels of the slab within the box [lo, hi], grown by a boundary's width."""
        bounds = []
        grow = EDGE_VOXELS * 2.0 / min(self.shape)  # the widest a step can be
        for axis, (a, b) in enumerate(zip(lo, hi)):
            n = self.shape[axis]
            first = int(np.ceil((a - grow + 1.0) * n / 2.0 - 0.5))
            last = int(np.floor((b + grow + 1.0) * n / 2.0 - 0.5)) + 1
            bounds.append((max(first, 0), min(last, n)))
        bounds[2] = (max(bounds[2][0], self.z0), min(bounds[2][1], self.z1))
        return _Region(self, bounds)


class _Region:
    """A box of the slab: where to paint (``box``) and its coordinates with a 1-voxel halo."""

    def __init__(self, grid: _Grid, bounds):
        self.empty = any(b <= a for a, b in bounds)
        self.voxel = 2.0 / min(grid.shape)  # the coarsest spacing
        (x0, x1), (y0, y1), (z0, z1) = bounds
        self.box = (slice(x0, x1), slice(y0, y1), slice(z0 - grid.z0, z1 - grid.z0))
        x, y, z = (grid.coordinates(axis, a - 1, b + 1) for axis, (a, b) in enumerate(bounds))
        self.x, self.y, self.z = x[:, None, None], y[None, :, None], z[None, None, :]

    def part(self, lo, hi, margin=0.0) -> tuple[slice, slice, slice]:
        """Slices of the haloed arrays: the coordinates in [lo - margin, hi + margin]."""
        return tuple(
            slice(
                int(np.searchsorted(c.ravel(), a - margin)),
                int(np.searchsorted(c.ravel(), b + margin, "right")),
            )
            for c, a, b in zip((self.x, self.y, self.z), lo, hi)
        )

    def field(self, values, distance=True) -> _Field:
        """A field on the region and its halo: a signed distance, or any smooth field."""
        return _Field(values, self.voxel if distance else None)


class _Field:
    """A scalar field on a region, thresholded into soft masks with band-limited edges.

    ``values`` covers the region and its halo (or broadcasts to it). The step at a level
    is ``EDGE_VOXELS`` voxels wide along the field's gradient taken in voxel units, so it
    spans that many voxels whatever the grid's spacing on each axis. Given ``max_voxel``
    (the grid's coarsest spacing) the field is taken for a distance, whose step is never
    wider than that of a distance across the coarsest voxels.
    """

    def __init__(self, values, max_voxel=None):
        v = np.asarray(values, np.float32)
        grad2 = np.zeros((1, 1, 1), np.float32)
        first = True
        for axis, n in enumerate(v.shape):
            if n > 1:
                hi = [slice(1, -1) if m > 1 else slice(None) for m in v.shape]
                lo = list(hi)
                hi[axis], lo[axis] = slice(2, None), slice(None, -2)
                d = v[tuple(hi)] - v[tuple(lo)]  # twice the derivative, per voxel
                d *= d
                if first:
                    grad2, first = d, False
                else:
                    grad2 += d
        self.value = v[tuple(slice(1, -1) if n > 1 else slice(None) for n in v.shape)]
        width = np.sqrt(grad2, out=grad2)
        width *= 0.5 * EDGE_VOXELS  # the field's change over the step
        if max_voxel is not None:
            # A distance changes by at most a voxel per voxel. Far from its surface a
            # shape's approximate distance can change faster (an eccentric ellipsoid's, off
            # its axes), and a step made that wide would reach out from the surface.
            np.minimum(width, EDGE_VOXELS * 1.25 * max_voxel, out=width)
        np.maximum(width, 1e-9, out=width)
        self.inv_width = np.reciprocal(width, out=width)

    def per_voxel(self) -> np.ndarray:
        """How much the field changes over one voxel along its gradient."""
        return np.divide(1.0 / EDGE_VOXELS, self.inv_width, dtype=np.float32)

    def below(self, level=0.0) -> np.ndarray:
        """Soft mask of field < level: 1 below, 0 above, a smooth step between."""
        t = np.subtract(level, self.value, dtype=np.float32)
        t *= self.inv_width
        t += 0.5
        return _smoothstep(t)

    def above(self, level=0.0) -> np.ndarray:
        """Soft mask of field > level."""
        t = np.subtract(self.value, level, dtype=np.float32)
        t *= self.inv_width
        t += 0.5
        return _smoothstep(t)

    def between(self, lo, hi) -> np.ndarray:
        """Soft mask of lo < field < hi: a layer, faint and wide if thinner than the step."""
        mask = self.below(hi)
        mask -= self.below(lo)
        return mask


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """3t^2 - 2t^3 of t clipped to [0, 1], in place: the integral of a smooth bump."""
    np.clip(t, 0.0, 1.0, out=t)
    t2 = t * t
    t *= -2.0
    t += 3.0
    t *= t2
    return t


def _not(mask: np.ndarray) -> np.ndarray:
    """1 - mask, in place."""
    np.subtract(1.0, mask, out=mask)
    return mask


def _paint(vol, region, mask, value) -> None:
    """Blend ``value`` into the region with weight ``mask`` (layers painted outside-in)."""
    part = vol[region.box]
    step = np.subtract(value, part, dtype=np.float32)
    step *= mask
    part += step


def _quadric(*axes) -> np.ndarray:
    """Signed distance (negative inside) to the ellipsoid sum((d / r)^2) = 1, given (d, r)
    pairs of offsets along orthogonal axes and radii.

    It is k0 - 1 divided by the length of its gradient, k0 = |d / r|: exact on the surface,
    a distance to first order near it however eccentric the ellipsoid (so layers at fixed
    levels have even thicknesses, and edge widths taken from the gradient are right).
    """
    radii = [r for _, r in axes]
    k0 = k1 = box = None
    for d, r in axes:  # separable parts are combined in the order given: 1-D + 1-D first
        t0, t1, t2 = (d / r) ** 2, (d / (r * r)) ** 2, np.abs(d) - r
        k0 = t0 if k0 is None else k0 + t0
        k1 = t1 if k1 is None else k1 + t1
        box = t2 if box is None else np.maximum(box, t2)
    np.maximum(k1, 1e-12, out=k1)
    ratio = np.divide(k0, k1, out=k1)  # 1 / |grad k0|^2: from min(r)^2 to max(r)^2
    np.clip(ratio, min(radii) ** 2, max(radii) ** 2, out=ratio)  # (at the centre: 0 / 0)
    np.sqrt(ratio, out=ratio)
    sd = np.sqrt(k0, out=k0)
    sd -= 1.0
    sd *= ratio
    # Far out, off the axes of an eccentric ellipsoid, that underestimates the distance;
    # the distance to the bounding box is a lower bound that holds there.
    return np.maximum(sd, box, out=sd)


def _ellipsoid(x, y, z, center, radii) -> np.ndarray:
    """Signed distance to an axis-aligned ellipsoid (negative inside)."""
    (cx, cy, cz), (ax, ay, az) = center, radii
    return _quadric((x - cx, ax), (y - cy, ay), (z - cz, az))


def _smooth_min(a, b, k):
    """Union of two signed distances, with a fillet of size k instead of a crease."""
    h = b - a  # in place from here on: fewer temporaries
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


def _sincos(t) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of a 1-D array, rounded so libm's last-bit differences cannot matter."""
    t = np.asarray(t, np.float64)
    return (
        np.round(np.sin(t), 6).astype(np.float32),
        np.round(np.cos(t), 6).astype(np.float32),
    )


def _waves(region, waves, k) -> np.ndarray:
    """Sum of plane waves sin(k d.p + phase), RMS ~1, built from separable 1-D tables."""
    x, y, z = (a.ravel().astype(np.float64) for a in (region.x, region.y, region.z))
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

CEREBRUM = ((0.0, -0.03, -0.03), (0.535, 0.675, 0.645))
CEREBELLUM = ((0.0, -0.45, -0.48), (0.42, 0.26, 0.21))
FACE = ((0.0, 0.26, -0.75), (0.64, 0.62, 0.45))
NOSE = ((0.0, 0.84, -0.88), (0.09, 0.12, 0.17))
EYE_X, EYE_Y, EYE_Z = 0.24, 0.71, -0.78
EYE_RADIUS = 0.11


def _intracranial(x, y, z):
    """Signed distance to the inner skull: cerebrum and posterior fossa, joined smoothly."""
    return _smooth_min(_ellipsoid(x, y, z, *CEREBRUM), _ellipsoid(x, y, z, *CEREBELLUM), 0.08)


def _paint_head(vol, grid):
    """Skin, subcutaneous fat, muscle, skull and CSF: everything outside the brain."""
    region = grid.region()
    if region.empty:
        return
    x, y, z = region.x, region.y, region.z
    inner = _intracranial(x, y, z)
    head = _smooth_min(inner - SCALP, _ellipsoid(x, y, z, *FACE), 0.1)
    neck = _quadric((x, 0.4), (y + 0.12, 0.38))
    head = _smooth_min(head, np.maximum(neck, z + 0.35), 0.15)
    # The nose is only evaluated near it: further out it cannot be the nearest surface
    # within a step's width of the skin, where the head's masks are not all 0.
    centre, radii = NOSE
    near = region.part(np.subtract(centre, radii), np.add(centre, radii), 4.0 * region.voxel)
    nose = _ellipsoid(x[near[0]], y[:, near[1]], z[..., near[2]], centre, radii)
    np.minimum(head[near], nose, out=head[near])
    _paint(vol, region, region.field(head).below(), SKIN)
    # The fat starts under the skin, which is thinner over the eyes (the eyelids).
    head += SKIN_LAYER
    centre, radii = (EYE_X, EYE_Y + 0.1, EYE_Z), (0.2, 0.15, 0.18)
    lo, hi = np.subtract(centre, radii), np.add(centre, radii)
    near = region.part((-hi[0], lo[1], lo[2]), hi)  # both eyes
    eyelids = _ellipsoid(np.abs(x[near[0]]), y[:, near[1]], z[..., near[2]], centre, radii)
    eyelids *= -1.0 / 0.06
    eyelids = _smoothstep(eyelids)  # 1 inside, fading out over 0.06
    eyelids *= EYELID_LAYER - SKIN_LAYER
    head[near] += eyelids
    fat = region.field(head)
    del head, eyelids
    _paint(vol, region, fat.below(), FAT)
    # Under the fat of the face and neck, muscle; over the vault the skull is right there.
    _paint(vol, region, fat.below(-FAT_LAYER), MUSCLE)
    del fat
    # Skull: dark compact bone around a band of bright fatty marrow (the diploe).
    inner = region.field(inner)
    _paint(vol, region, inner.below(SKULL), BONE)
    _paint(vol, region, inner.below(SKULL - OUTER_TABLE), MARROW)
    _paint(vol, region, inner.below(CSF_RIM + INNER_TABLE), BONE)
    _paint(vol, region, inner.below(CSF_RIM), CSF)


def _paint_cerebrum(vol, grid):
    """Cortex folded by sulci and the midline fissure, and the white matter inside."""
    (cx, cy, cz), (ax, ay, az) = CEREBRUM
    region = grid.region((cx - ax, cy - ay, cz - az), (cx + ax, cy + ay, cz + az))
    if region.empty:
        return
    x, y, z = region.x, region.y, region.z
    # Depth below the pial surface: from the outer surface, and from the midline where the
    # interhemispheric fissure splits the hemispheres (down to the arch of the corpus
    # callosum, and all the way through in front of and behind it).
    outer = -_ellipsoid(x, y, z, *CEREBRUM)
    callosum = _quadric((y + 0.06, 0.46), (z + 0.02, 0.24))
    medial = np.maximum(np.abs(x) - FISSURE_HALF_WIDTH, -callosum)
    # Sulci: the zero set of the wave field w, |w| / FOLD_K being the distance to it. Each
    # sulcus ends at its own depth, or their floors would outline a smaller brain.
    fundus = _waves(region, FOLD_WAVES[3:6], FOLD_K * 0.7)
    fundus *= SULCUS_DEPTH * 0.45
    fundus += SULCUS_DEPTH
    past_fundus = region.field(outer - fundus), region.field(medial - fundus)
    del medial, fundus
    outer, callosum, midline = region.field(outer), region.field(callosum), region.field(x)
    sulci = _waves(region, FOLD_WAVES, FOLD_K)
    sulci *= 1.0 / FOLD_K
    sulci = region.field(sulci, distance=False)
    # Tissue lies d deep where it is d below the outer surface and d from the midline (or
    # under the callosum), and, if shallower than the local fundus + d, d from a sulcus.
    for depth, value in ((0.0, GREY), (CORTEX, WHITE)):
        mask = outer.above(depth)
        fissure = midline.between(-FISSURE_HALF_WIDTH - depth, FISSURE_HALF_WIDTH + depth)
        fissure = fissure * callosum.above(-depth)
        mask *= _not(fissure)
        deep = past_fundus[0].above(depth)
        deep *= past_fundus[1].above(depth)
        sulcus = sulci.between(-SULCUS_HALF_WIDTH - depth, SULCUS_HALF_WIDTH + depth)
        sulcus *= _not(deep)
        mask *= _not(sulcus)
        del fissure, deep, sulcus
        _paint(vol, region, mask, value)


def _paint_deep(vol, grid):
    """Deep grey nuclei and the ventricles, painted in a box around the midline."""
    region = grid.region((-0.45, -0.6, -0.35), (0.45, 0.5, 0.35))
    if region.empty:
        return
    x, y, z = region.x, region.y, region.z
    ax_ = np.abs(x)  # mirrored: every paired structure is built once, for both sides
    thalamus = _ellipsoid(ax_, y, z, (0.085, -0.2, -0.04), (0.08, 0.14, 0.1))
    caudate = _ellipsoid(ax_, y, z, (0.19, 0.14, 0.05), (0.05, 0.14, 0.08))
    putamen = _ellipsoid(ax_, y, z, (0.28, 0.02, -0.06), (0.05, 0.16, 0.11))
    nuclei = region.field(np.minimum(np.minimum(thalamus, caudate), putamen))
    del thalamus, caudate, putamen
    _paint(vol, region, nuclei.below(), DEEP_GREY)
    del nuclei
    # Lateral ventricles: in coronal section each is an ellipse tilted down and outwards
    # from the midline, the pair making the "butterfly"; in sagittal section an arch.
    yy = y + 0.08
    dz = z - (0.1 - 0.5 * yy**2)  # above the arch's midline ...
    dz *= 1.0 / np.sqrt(1.0 + yy**2)  # ... across it, as the arch slopes
    tilt_c, tilt_s = 0.87, 0.5  # 30 degrees
    u = (ax_ - 0.1) * tilt_c - dz * tilt_s
    v = (ax_ - 0.1) * tilt_s + dz * tilt_c
    del dz
    ventricles = _quadric((yy, 0.46), (u, 0.13), (v, 0.05))
    del u, v
    mask = region.field(ventricles).below()
    del ventricles
    mask *= _not(region.field(x).between(-SEPTUM_HALF_WIDTH, SEPTUM_HALF_WIDTH))  # the septum
    third = region.field(_ellipsoid(x, y, z, (0.0, -0.12, -0.1), (0.016, 0.14, 0.09)))
    np.maximum(mask, third.below(), out=mask)
    _paint(vol, region, mask, CSF)


def _paint_hindbrain(vol, grid):
    """Cerebellum with folia, brainstem and, below the skull base, the spine and airway."""
    (cx, cy, cz), radii = CEREBELLUM
    lo = tuple(c - r - 0.05 for c, r in zip((cx, cy, cz), radii))
    hi = tuple(c + r + 0.05 for c, r in zip((cx, cy, cz), radii))
    region = grid.region(lo, hi)
    if not region.empty:
        _paint_cerebellum(vol, region)
    region = grid.region((-0.3, -0.45, -1.0), (0.3, 0.3, -0.15))
    if not region.empty:
        _paint_brainstem(vol, region)


def _paint_cerebellum(vol, region):
    (cx, cy, cz), _ = CEREBELLUM
    x, y, z = region.x, region.y, region.z
    sd = region.field(_ellipsoid(x, y, z, *CEREBELLUM))
    _paint(vol, region, sd.below(0.025), CSF)  # tentorium and cisterns around it
    inside = sd.below()
    _paint(vol, region, inside, GREY)
    # Folia: leaves stacked like bowls, wobbling with the fold field, a CSF cleft between
    # leaves and a white lamina in each, the laminae joining a white core: the arbor vitae.
    # The leaf profile is a smooth periodic wave of the phase, faded out where the grid is
    # too coarse to hold it (the local frequency, in cycles per voxel, is the phase's
    # gradient in voxel units), so the leaves never alias into stripes.
    phase = _waves(region, FOLD_WAVES[:3], FOLD_K)
    phase *= 0.35
    phase += (z - cz + 1.5 * (y - cy) ** 2 + 0.8 * x**2) * FOLIA
    phase = region.field(phase, distance=False)
    fade = phase.per_voxel()  # cycles per voxel
    fade *= 1.0 / FOLIA_CUTOFF
    fade *= fade
    np.subtract(1.0, fade, out=fade)
    np.clip(fade, 0.0, 1.0, out=fade)
    leaf = phase.value - np.floor(phase.value)
    del phase
    leaf -= 0.5
    np.abs(leaf, out=leaf)
    leaf *= 4.0
    leaf -= 1.0  # a triangle wave: 1 at the clefts, -1 mid-leaf
    wave = leaf * leaf
    np.subtract(3.0, wave, out=wave)
    wave *= leaf
    wave *= 0.45  # 0.9 * (3t - t^3) / 2: smooth at its peaks, about a cosine
    del leaf
    wave *= fade
    wave *= sd.above(-0.11)  # the leaves are in the outer cortex only
    cleft = np.maximum(wave, 0.0)
    cleft *= inside
    _paint(vol, region, cleft, CSF)
    lamina = np.negative(wave, out=wave)
    np.maximum(lamina, 0.0, out=lamina)
    lamina *= sd.below(-0.03)
    np.maximum(lamina, sd.below(-0.12), out=lamina)
    _paint(vol, region, lamina, WHITE)


def _paint_brainstem(vol, region):
    x, y, z = region.x, region.y, region.z
    # Brainstem: a column leaning back as it goes down, with the pons bulging in front.
    yc = -0.16 + 0.12 * (z + 0.3)
    stem = _quadric((x, 0.09), (y - yc, 0.08))
    stem = np.maximum(stem, z + 0.2)
    stem = region.field(
        np.minimum(stem, _ellipsoid(x, y, z, (0.0, -0.1, -0.45), (0.13, 0.11, 0.13)))
    )
    height = region.field(z)
    below_brain = height.below(-0.34)  # above it the stem joins the brain
    below_skull = height.below(-0.82)
    # Below the skull base the cord runs in a bony canal, the vertebral body in front of it
    # and the airway in front of that.
    yy = y - yc
    canal = region.field(_quadric((x, 0.17), (yy, 0.16)))
    _paint(vol, region, canal.below() * below_skull, BONE)
    del canal
    body = region.field(_quadric((x, 0.11), (yy - 0.25, 0.08)))
    _paint(vol, region, body.below() * below_skull, BONE)
    _paint(vol, region, body.below(-0.02) * below_skull, MARROW)
    del body
    airway = region.field(_quadric((x, 0.1), (yy - 0.42, 0.05)))
    _paint(vol, region, airway.below() * below_skull, 0.0)
    del airway
    _paint(vol, region, stem.below(0.025) * below_brain, CSF)
    _paint(vol, region, stem.below(), BRAINSTEM)
    fourth = region.field(_ellipsoid(x, y, z, (0.0, -0.25, -0.48), (0.04, 0.03, 0.07)))
    _paint(vol, region, fourth.below(), CSF)


def _paint_face(vol, grid):
    """Eyes in their fat-filled orbits, the nasal cavity and maxillary sinuses (air)."""
    region = grid.region((-0.6, 0.3, -1.0), (0.6, 1.0, -0.45))
    if region.empty:
        return
    x, y, z = region.x, region.y, region.z
    ax_ = np.abs(x)
    orbit = region.field(_ellipsoid(ax_, y, z, (EYE_X, EYE_Y - 0.08, EYE_Z), (0.15, 0.2, 0.15)))
    _paint(vol, region, orbit.below(), FAT)
    del orbit
    eye = region.field(_ellipsoid(ax_, y, z, (EYE_X, EYE_Y, EYE_Z), (EYE_RADIUS,) * 3))
    _paint(vol, region, eye.below(), SCLERA)
    _paint(vol, region, eye.below(-0.016), VITREOUS)
    del eye
    lens = region.field(_ellipsoid(ax_, y, z, (EYE_X, EYE_Y + 0.085, EYE_Z), (0.045, 0.02, 0.045)))
    _paint(vol, region, lens.below(), LENS)
    del lens
    # Nasal cavity between the orbits (split by the septum) and the sinuses below them.
    nasal = region.field(_ellipsoid(ax_, y, z, (0.0, 0.6, -0.9), (0.09, 0.2, 0.2))).below()
    nasal *= _not(region.field(x).between(-0.012, 0.012))
    sinus = region.field(_ellipsoid(ax_, y, z, (0.21, 0.5, -1.02), (0.11, 0.14, 0.1)))
    np.maximum(nasal, sinus.below(), out=nasal)
    _paint(vol, region, nasal, 0.0)


def _finish(vol, grid) -> None:
    """Scanner realism: a smooth receive-coil bias, a little noise, integer rounding."""
    nx, ny, nz = vol.shape
    y = grid.coordinates(1, 0, ny)[None, :, None]
    z = grid.coordinates(2, grid.z0, grid.z1)[None, None, :]
    gain = (1.0 + 0.05 * z) - 0.03 * y  # brighter near the crown coil elements
    vol *= gain
    # Noise from an integer hash of the voxel index: exact on every machine, unlike a
    # float RNG whose stream numpy does not promise to keep across versions.
    i, j = np.arange(nx, dtype=np.uint32), np.arange(ny, dtype=np.uint32)
    k = np.arange(grid.z0, grid.z1, dtype=np.uint32)
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
