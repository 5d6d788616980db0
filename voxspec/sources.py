"""Turn a spec's ``source`` into a :class:`~voxspec.volume.VolumeData`.

Every kind of source ends the same way: a 3D, C-contiguous float32 array (one frame of
4D data), a float64 4x4 affine, and the SHA-256 of the bytes read (the archive's when a
``member`` is used; None for ``builtin`` and ``array``, which read no file).

- ``path``: any 3D/4D format nibabel reads (found by ``nibabel.load``), or NumPy ``.npy``.
- ``url``: downloaded once into the cache (see :mod:`voxspec.download`), then as ``path``.
- ``member``: with either, the volume inside a zip, read in memory (see :mod:`voxspec.archive`).
- ``builtin``: the procedural head phantom; ``array``: the inline nested list.

NaN and infinite values are kept: a ``replace_nan`` step deals with them, and
:func:`count_nonfinite` lets later stages report them.
"""

from __future__ import annotations

import contextlib
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import nibabel as nib
import numpy as np
import platformdirs
from nibabel.spatialimages import SpatialImage

from voxspec.archive import (
    MULTI_FILE_EXTENSIONS,
    VOLUME_EXTENSIONS,
    load_member,
    missing_package,
    open_zip,
    volume_members,
)
from voxspec.download import (
    DownloadLimits,
    GiB,
    cached_download,
    hash_mismatch,
    human_size,
    reason,
    sha256_of_file,
)
from voxspec.errors import UserError
from voxspec.model import Source
from voxspec.volume import VolumeData

DEFAULT_PHANTOM_SHAPE = (96, 96, 96)


@dataclass(frozen=True)
class Limits:
    """Bounds on what loading may cost; tests shrink them to run fast."""

    download: DownloadLimits = field(default_factory=DownloadLimits)
    max_member_bytes: int = 2 * GiB  # one file decompressed out of an archive


def cache_dir() -> Path:
    """Where downloads are kept: ``$VOXSPEC_CACHE``, else the platform's user cache folder."""
    configured = os.environ.get("VOXSPEC_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("voxspec"))


DEFAULT_LIMITS = Limits()
_default_cache_dir = cache_dir  # load_source's keyword argument hides the name


def count_nonfinite(data: np.ndarray) -> int:
    """How many values are NaN or infinite."""
    return int(data.size - np.count_nonzero(np.isfinite(data)))


def load_source(
    source: Source,
    base_dir: Path,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> VolumeData:
    """Read ``source`` (relative paths from ``base_dir``) as a 3D float32 volume."""
    if source.builtin is not None:
        shape = tuple(source.shape or DEFAULT_PHANTOM_SHAPE)
        check_fits_in_memory(shape, f"builtin {source.builtin!r}")
        from voxspec.phantom import head_phantom  # heavy to build; only when asked for

        return _volume(head_phantom(shape), np.eye(4), source.frame, "the head phantom", None)
    if source.array is not None:
        array = np.asarray(source.array, dtype=np.float32)
        return _volume(array, np.eye(4), source.frame, "the inline array", None)

    if source.url is not None:
        label = source.url
        if source.member is None and _is_multi_file(source.url):
            raise UserError(
                f"{source.url} is one file of a multi-file format "
                f"({', '.join(MULTI_FILE_EXTENSIONS)}), but a url fetches a single file: "
                "put the files in a zip and name the header with 'member', "
                "or use a single-file format such as .nii.gz"
            )
        file, digest = cached_download(
            source.url,
            Path(cache_dir or _default_cache_dir()) / "downloads",
            expected_sha256=source.sha256,
            limits=limits.download,
            progress=progress,
        )
    else:
        label = source.path
        file = _existing_file(base_dir, source.path)
        digest = sha256_of_file(file)
        if source.sha256 is not None and digest != source.sha256:
            raise hash_mismatch(source.path, source.sha256, digest)

    if source.member is not None:
        with _DropUnreadable(file, source.url) as guard, open_zip(file, label) as archive:
            guard.keep |= source.member not in archive.namelist()  # the spec's mistake
            image = load_member(archive, source.member, limits.max_member_bytes, label)
        where = f"member {source.member!r} of {label}"
        return _volume_from_image(image, source.frame, where, digest)
    with _DropUnreadable(file, source.url) as guard:
        guard.keep |= file.suffix.lower() == ".zip"  # only lacks a 'member' in the spec
        image = _read_file(file, label)
    return _volume_from_image(image, source.frame, label, digest)


class _DropUnreadable:
    """Remove a downloaded file from the cache when reading it fails (a corrupt or
    hostile archive, a zip bomb, a damaged volume): it could serve no build, and kept
    it would shadow the same address forever, even once the server's copy is fixed.
    Local files, and downloads the spec only misnames a member of, are kept."""

    def __init__(self, file: Path, url: str | None) -> None:
        self.file, self.keep = file, url is None

    def __enter__(self) -> _DropUnreadable:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, UserError) and not self.keep:
            with contextlib.suppress(OSError):
                self.file.unlink()


# ------------------------------------------------------------------------ files


def _is_multi_file(url: str) -> bool:
    try:
        name = urlparse(url).path.lower()
    except ValueError:  # malformed: the download will say so
        return False
    for compressed in (".gz", ".bz2"):
        name = name.removesuffix(compressed)
    return name.endswith(MULTI_FILE_EXTENSIONS)


def _existing_file(base_dir: Path, given: str) -> Path:
    file = Path(base_dir) / Path(given).expanduser()
    if file.is_dir():
        raise UserError(f"path {given!r} is a folder ({file}); name a volume file")
    if not file.is_file():
        raise UserError(f"path {given!r} does not exist (looked for {file})")
    return file


def _read_file(file: Path, label: str):
    """The file's volume: a nibabel image, or an array for ``.npy``."""
    if file.name.lower().endswith(".npy"):
        try:
            # mmap: the header's shape is checked before the data is read into memory
            return np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(f"{label} is not a readable .npy file ({reason(exc)})") from None
    if file.suffix.lower() == ".zip" or (file.suffix == "" and zipfile.is_zipfile(file)):
        with open_zip(file, label) as archive:
            members = ", ".join(volume_members(archive)[:8]) or "none"
        raise UserError(
            f"{label} is a zip archive: name the volume inside with 'member' "
            f"(volume members: {members})"
        )
    try:
        return nib.load(file)
    except ImportError as exc:  # an optional reader, such as h5py for MINC2
        raise missing_package(label, exc) from None
    except FileNotFoundError as exc:  # the companion of a pair (.hdr without its .img)
        raise UserError(f"{label} needs a companion file that is missing ({reason(exc)})") from None
    except nib.filebasedimages.ImageFileError as exc:
        raise UserError(
            f"{label} is not a volume format voxspec reads ({reason(exc)}); allowed: "
            f"{', '.join(VOLUME_EXTENSIONS)}"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel parsers raise many types on bad bytes
        raise UserError(f"{label} is corrupt or unreadable ({reason(exc)})") from None


# ----------------------------------------------------------------------- arrays


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(shape: tuple[int, ...], label: str) -> None:
    """Refuse a grid whose float32 copy would not fit in half the machine's memory.

    Checked against the header's declared shape before any data is read, so a corrupt
    or hostile header fails with a message instead of exhausting the machine (the
    steps and renderers need a few more copies, hence half).
    """
    memory = physical_memory()
    needed = math.prod(shape) * 4
    if memory is not None and needed > memory // 2:
        raise UserError(
            f"{label} declares a {'x'.join(map(str, shape))} grid, {human_size(needed)} as "
            f"float32: more than half of this machine's {human_size(memory)} memory"
        )


def _volume_from_image(image, frame: int, label: str, digest: str | None) -> VolumeData:
    if isinstance(image, np.ndarray):
        return _volume(image, np.eye(4), frame, label, digest)
    if not isinstance(image, SpatialImage):
        raise UserError(f"{label} is a {type(image).__name__}, not a volume")
    affine = image.affine if image.affine is not None else np.eye(4)
    return _volume(image.dataobj, affine, frame, label, digest, _frame_axis(image))


def _frame_axis(image) -> int:
    """The axis of 4D data that counts frames: the last one, except in MINC.

    MINC stores its dimensions in file order, often time first; nibabel keeps that
    order and only the dimension names tell which one is not spatial.
    """
    names = getattr(getattr(image.dataobj, "minc_file", None), "_dim_names", None)
    if names and len(names) == 4:
        for axis, name in enumerate(names):
            if not str(name).endswith("space"):
                return axis
    return 3


def _volume(
    dataobj, affine, frame: int, label: str, digest: str | None, frame_axis: int = 3
) -> VolumeData:
    """Pick the frame out of array-like ``dataobj`` and make it a float32 volume."""
    shape = tuple(int(n) for n in dataobj.shape)
    padding: tuple[int, ...] = ()
    if len(shape) > 4 and all(n == 1 for n in shape[4:]):
        # NIfTI may pad a 4D series with unit dimensions (x, y, z, t, 1, ...)
        padding, shape = (0,) * (len(shape) - 4), shape[:4]
    if len(shape) < 3:
        raise UserError(
            f"{label} holds {len(shape)}D data of shape {list(shape)}; a volume needs 3 "
            "dimensions (or 4, choosing one with 'frame')"
        )
    if len(shape) > 4:
        raise UserError(
            f"{label} holds {len(shape)}D data of shape {list(shape)}; only 3D volumes and "
            "4D series (with 'frame') are supported"
        )
    if len(shape) == 3:
        if frame != 0:
            raise UserError(
                f"frame {frame} is out of range: {label} is a single 3D volume (frame 0 only)"
            )
        index, spatial = (slice(None),) * 3, shape
    else:
        frames = shape[frame_axis]
        if frame >= frames:
            raise UserError(
                f"frame {frame} is out of range: {label} has {frames} frame"
                f"{'s' if frames != 1 else ''} (0 to {frames - 1})"
            )
        index = tuple(frame if axis == frame_axis else slice(None) for axis in range(4))
        spatial = tuple(n for axis, n in enumerate(shape) if axis != frame_axis)
    check_fits_in_memory(spatial, label)
    try:
        raw = np.asanyarray(dataobj[index + padding])
    except FileNotFoundError as exc:  # nibabel opens a pair's data file only now
        missing = Path(exc.filename or "").name or "its data file"
        raise UserError(f"{label} needs the file {missing!r} beside it, which is missing") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - reading data of a damaged file fails variously
        raise UserError(f"{label} has unreadable voxel data ({reason(exc)})") from None
    if raw.dtype.kind not in "biuf":
        raise UserError(
            f"{label} holds {raw.dtype} values; only real numbers (bool, int, float) make a "
            "volume (complex or RGB data need converting first)"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # too large for float32 -> inf, counted
        data = np.ascontiguousarray(raw, dtype=np.float32)
    if type(data) is not np.ndarray or not data.flags.owndata:
        data = np.array(data)  # own memory: never a view into a file or a cached image
    return VolumeData(data=data, affine=np.array(affine, dtype=np.float64), sha256=digest)
