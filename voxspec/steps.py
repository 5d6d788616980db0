"""The transform pipeline: a volume's ``steps``, applied top to bottom.

Each step is one small function of (data, affine). Data stays float32; reductions
(min, max, mean) are taken in float64 so results do not depend on summation order.
Anything the data makes impossible (a constant volume under ``normalize``, NaN, a
grid too large for this machine, nothing left to draw) is a ``UserError`` that names
the volume and the step.
"""

from __future__ import annotations

import os

import numpy as np

from voxspec import model
from voxspec.errors import UserError, Where
from voxspec.sources import count_nonfinite
from voxspec.volume import VolumeData


def apply_steps(volume: VolumeData, steps: list, name: str, where: Where) -> VolumeData:
    """Run ``steps`` on ``volume`` (named ``name``, declared at ``where`` in the spec)."""
    data, affine = volume.data, volume.affine
    _check_3d(data, name, (*where, "source"))
    for i, step in enumerate(steps):
        at = (*where, "steps", i)
        kind = next(iter(type(step).model_fields))
        if kind != "replace_nan":
            _check_finite(data, name, at)
        try:
            data, affine = STEPS[kind](data, affine, getattr(step, kind))
        except UserError as error:
            raise error.at(at) from None
        if data.size == 0:
            raise UserError(f"volume {name!r} is empty after this step: shape {data.shape}", at)
    _check_finite(data, name, (*where, "steps") if steps else (*where, "source"))
    if not np.any(data):
        raise UserError(
            f"volume {name!r} is all zeros after its steps: nothing to draw",
            (*where, "steps") if steps else (*where, "source"),
        )
    data = np.ascontiguousarray(data, dtype=np.float32)
    return VolumeData(data, affine, volume.sha256)


def _check_3d(data: np.ndarray, name: str, where: Where) -> None:
    if data.ndim != 3:
        raise UserError(f"volume {name!r} has {data.ndim} dimensions {data.shape}; need 3", where)


def _check_finite(data: np.ndarray, name: str, where: Where) -> None:
    bad = count_nonfinite(data)
    if bad:
        raise UserError(
            f"volume {name!r} has {bad} NaN or infinite values; "
            "add the step 'replace_nan: 0' before this one",
            where,
        )


def available_memory() -> int:
    """Bytes of physical memory on this machine (a generous bound on what we may use)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def check_allocation(shape, bytes_per_voxel: int, what: str) -> None:
    need = int(np.prod(shape, dtype=np.int64)) * bytes_per_voxel
    have = available_memory() // 2
    if need > have:
        raise UserError(
            f"{what} {list(shape)} needs {need / 1024**3:.1f} GiB; "
            f"this machine allows about {have / 1024**3:.1f} GiB"
        )


# ------------------------------------------------------------------------ steps


def _normalize(data, affine, _):
    lo, hi = float(np.min(data)), float(np.max(data))
    if hi == lo:
        raise UserError(f"cannot normalize a constant volume (every voxel is {lo:g})")
    return ((data - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32), affine


def _offset(data, affine, value):
    return data + np.float32(value), affine


def _scale(data, affine, value):
    return data * np.float32(value), affine


def _clip(data, affine, bounds):
    return np.clip(data, np.float32(bounds[0]), np.float32(bounds[1])), affine


def _gamma(data, affine, power):
    if np.min(data) < 0:
        raise UserError(
            f"gamma needs values >= 0, the smallest is {float(np.min(data)):g}; "
            "add 'clip: [0, 1]' before it"
        )
    return np.power(data, np.float32(power)), affine


def _contrast(data, affine, factor):
    mean = np.float32(np.mean(data, dtype=np.float64))
    return (data - mean) * np.float32(factor) + mean, affine


def _threshold(data, affine, level):
    return np.where(data < np.float32(level), np.float32(0), data), affine


def _resize(data, affine, size):
    from skimage.transform import resize

    shape = (size,) * 3 if isinstance(size, int) else tuple(size)
    # scikit-image works in float64 and keeps a smoothed copy of the input
    check_allocation(shape, 8 * 2, "resize to")
    out = resize(data, shape, mode="constant", anti_aliasing=True).astype(np.float32)
    zoom = np.array(data.shape, float) / np.array(shape, float)
    scaled = affine.copy()
    scaled[:3, :3] = affine[:3, :3] * zoom
    # voxel centres move: the new voxel 0 centre sits at old index (zoom - 1) / 2
    scaled[:3, 3] = affine[:3, :3] @ ((zoom - 1) / 2) + affine[:3, 3]
    return out, scaled


def _crop(data, affine, box: model.CropBox):
    slices = []
    for axis in model.AXES:
        bound = getattr(box, axis)
        slices.append(slice(*bound) if bound is not None else slice(None))
    starts = [s.indices(n)[0] for s, n in zip(slices, data.shape)]
    moved = affine.copy()
    moved[:3, 3] = affine[:3, :3] @ np.array(starts, float) + affine[:3, 3]
    return data[tuple(slices)], moved


def _flip(data, affine, axes):
    flipped = affine.copy()
    for axis in dict.fromkeys(axes):
        i = model.AXES.index(axis)
        data = np.flip(data, axis=i)
        # index j now holds old index n-1-j
        flipped[:3, 3] += flipped[:3, i] * (data.shape[i] - 1)
        flipped[:3, i] = -flipped[:3, i]
    return data, flipped


def _cut(data, affine, plane: model.CutPlane):
    a, b, c = (np.float32(v) for v in plane.normal)
    i, j, k = np.ogrid[: data.shape[0], : data.shape[1], : data.shape[2]]
    keep = (a * i + b * j + c * k) < np.float32(plane.offset)
    return np.where(keep, data, np.float32(0)), affine


def _canonical(data, affine, _):
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    to_ras = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))
    out = nib.orientations.apply_orientation(data, to_ras)
    new_affine = affine @ nib.orientations.inv_ornt_aff(to_ras, data.shape)
    return np.ascontiguousarray(out), new_affine


def _replace_nan(data, affine, value):
    value = np.float32(value)
    return np.nan_to_num(data, nan=value, posinf=value, neginf=value), affine


STEPS = {
    "normalize": _normalize,
    "offset": _offset,
    "scale": _scale,
    "clip": _clip,
    "gamma": _gamma,
    "contrast": _contrast,
    "threshold": _threshold,
    "resize": _resize,
    "crop": _crop,
    "flip": _flip,
    "cut": _cut,
    "canonical": _canonical,
    "replace_nan": _replace_nan,
}
assert set(STEPS) == set(model.STEP_MODELS), "every step model needs a function"
