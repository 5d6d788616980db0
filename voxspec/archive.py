"""Read one volume out of a zip archive, in memory, without extracting anything.

The archive is opened where it lies (zipfile reads members lazily), only the member
asked for and its companions are read, and nothing is written to disk. A multi-file
format finds its companions beside the member, as nibabel would on disk: an Analyze or
NIfTI-pair ``.hdr`` its ``.img`` (and SPM's optional ``.mat``), an AFNI ``.HEAD`` its
``.BRIK``, a PAR its REC.

Archives come from the internet, so they are treated as hostile: an archive holding a
member with an absolute path or a ``..`` part is refused outright, and no member is
decompressed beyond ``max_bytes``, whatever size it declares (zip bombs).
"""

from __future__ import annotations

import bz2
import difflib
import gzip
import io
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import nibabel as nib
import numpy as np
from nibabel.filename_parser import splitext_addext, types_filenames
from nibabel.imageclasses import all_image_classes
from nibabel.spatialimages import SpatialImage

from voxspec.download import human_size, reason
from voxspec.errors import UserError

# Spatial formats nibabel reads, in the order nibabel.load tries them (the order decides
# between formats sharing an extension, such as NIfTI pairs and Analyze for .hdr).
VOLUME_CLASSES = [k for k in all_image_classes if issubclass(k, SpatialImage)]
DECOMPRESSORS = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw),
    ".mgz": lambda raw: gzip.GzipFile(fileobj=raw),
    ".bz2": bz2.BZ2File,
}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".z")
OPTIONAL_COMPANIONS = {"mat"}  # SPM's orientation file: absent is fine, as on disk


def _entry_extensions() -> tuple[str, ...]:
    """Extensions of the file a user names for a volume: the header of a pair, never its data."""
    extensions = {".npy"}
    for klass in VOLUME_CLASSES:
        files = dict(klass.files_types)
        named = {files["header"]} if "header" in files else set(klass.valid_exts)
        for ext in named:
            extensions.add(ext.lower())
            extensions.update((ext + suffix).lower() for suffix in klass._compressed_suffixes)
    return tuple(sorted(extensions))


VOLUME_EXTENSIONS = _entry_extensions()
# Formats spread over several files (.hdr + .img, .HEAD + .BRIK, .PAR + .REC)
MULTI_FILE_EXTENSIONS = tuple(
    sorted(
        {
            ext.lower()
            for klass in VOLUME_CLASSES
            if len({kind for kind, _ in klass.files_types} - OPTIONAL_COMPANIONS) > 1
            for ext in klass.valid_exts
        }
    )
)


def open_zip(path: Path, label: str) -> zipfile.ZipFile:
    """Open the archive at ``path`` (called ``label`` in messages), refusing hostile ones."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise UserError(f"{label} is not a readable zip archive ({reason(exc)})") from None
    for name in archive.namelist():
        problem = unsafe_name_problem(name)
        if problem:
            archive.close()
            raise UserError(f"refusing zip archive {label}: member {name!r} {problem}")
    return archive


def unsafe_name_problem(name: str) -> str | None:
    """Why a member name could escape an extraction folder, or None when it cannot."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "has a '..' part that points outside the archive"
    return None


def volume_members(archive: zipfile.ZipFile) -> list[str]:
    """Members a user could name as a volume (headers of pairs, not their data files)."""
    return [
        name
        for name in archive.namelist()
        if not name.endswith("/") and name.lower().endswith(VOLUME_EXTENSIONS)
    ]


def missing_member(archive: zipfile.ZipFile, member: str, label: str) -> UserError:
    candidates = volume_members(archive)
    if not candidates:
        return UserError(f"member {member!r} is not in {label}, which holds no volume files")
    shown = difflib.get_close_matches(member, candidates, n=8, cutoff=0)
    more = f" (and {len(candidates) - len(shown)} more)" if len(candidates) > len(shown) else ""
    return UserError(
        f"member {member!r} is not in {label}; its volume members are: {', '.join(shown)}{more}"
    )


def read_member(archive: zipfile.ZipFile, name: str, max_bytes: int, label: str) -> bytes:
    """The uncompressed bytes of member ``name``, never more than ``max_bytes`` of them."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise missing_member(archive, name, label) from None
    if info.file_size > max_bytes:
        raise _too_big(name, label, f"declares {human_size(info.file_size)}, more", max_bytes)
    try:
        with archive.open(info) as stream:
            # Read one byte past the limit to notice a member that decompresses to
            # more than it declared, without ever holding much more than the limit.
            data = stream.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise UserError(f"member {name!r} of {label} is corrupt ({reason(exc)})") from None
    except (NotImplementedError, RuntimeError) as exc:  # unknown compression, encryption
        raise UserError(f"member {name!r} of {label} cannot be read ({reason(exc)})") from None
    if len(data) > max_bytes:
        raise _too_big(name, label, "decompresses to more", max_bytes)
    return _decompressed(data, name, max_bytes, label)


def _decompressed(data: bytes, name: str, max_bytes: int, label: str) -> bytes:
    """Undo the file's own compression (``.nii.gz``, ``.mgz``, ...) within ``max_bytes``.

    nibabel decompresses by file name on disk, but not a file object it is handed.
    """
    suffix = PurePosixPath(name).suffix.lower()
    opener = DECOMPRESSORS.get(suffix)
    if opener is None:
        if suffix in (".zst", ".z"):
            raise UserError(
                f"member {name!r} of {label} is {suffix}-compressed, which voxspec cannot read "
                "from an archive; use .gz or .bz2"
            )
        return data
    try:
        with opener(io.BytesIO(data)) as stream:
            plain = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise UserError(
            f"member {name!r} of {label} is not valid {suffix} data ({reason(exc)})"
        ) from None
    if len(plain) > max_bytes:
        raise _too_big(name, label, "decompresses to more", max_bytes)
    return plain


def _too_big(name: str, label: str, what: str, max_bytes: int) -> UserError:
    return UserError(
        f"refusing member {name!r} of {label}: it {what} than the "
        f"{human_size(max_bytes)} limit for one file (a zip bomb?)"
    )


def load_member(
    archive: zipfile.ZipFile, member: str, max_bytes: int, label: str
) -> SpatialImage | np.ndarray:
    """The volume stored as ``member``: a nibabel image, or an array for ``.npy``."""
    problem = unsafe_name_problem(member)
    if problem:
        raise UserError(f"member {member!r} {problem}; name a member inside the archive")
    if member not in archive.namelist():
        raise missing_member(archive, member, label)
    contents: dict[str, bytes] = {}

    def read(name: str) -> bytes:
        if name not in contents:
            contents[name] = read_member(archive, name, max_bytes, label)
        return contents[name]

    where = f"member {member!r} of {label}"
    if member.lower().endswith(".npy"):
        try:
            return np.load(io.BytesIO(read(member)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(f"{where} is not a readable .npy file ({reason(exc)})") from None
    image_class, names_by_kind = _image_class(archive, member, read, where)
    file_map = {}
    for kind, wanted in names_by_kind.items():
        name = _stored_name(archive, wanted)
        if name is not None:
            data = read(name)
            if _text_header(image_class, kind):
                fileobj = io.StringIO(data.decode("latin-1"))
            else:
                fileobj = io.BytesIO(data)
        elif kind in OPTIONAL_COMPANIONS:
            fileobj = io.BytesIO(b"")  # nibabel reads an empty companion as absent
        else:
            raise UserError(
                f"{where} needs its {kind} file {wanted!r} beside it, which is not in the archive"
            )
        # fileobj without filename: nibabel must never open a same-named local file.
        file_map[kind] = nib.FileHolder(fileobj=fileobj)
    try:
        return image_class.from_file_map(file_map)
    except ImportError as exc:  # an optional reader, such as h5py for MINC2
        raise missing_package(where, exc) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel parsers raise many types on bad bytes
        raise UserError(
            f"{where} is not a readable {image_class.__name__} ({reason(exc)})"
        ) from None


def missing_package(where: str, exc: ImportError) -> UserError:
    package = exc.name or reason(exc)
    return UserError(f"{where} needs the Python package {package!r} to be read; install it")


def _text_header(image_class: type, kind: str) -> bool:
    # These formats keep their header as text, which nibabel opens in text mode by name
    # but reads as given from a file object.
    from nibabel.brikhead import AFNIImage
    from nibabel.parrec import PARRECImage

    return kind == "header" and issubclass(image_class, (AFNIImage, PARRECImage))


def _names_by_kind(klass: type[SpatialImage], member: str) -> dict[str, str]:
    """File kind ('header', 'image', ...) -> the name nibabel would give it beside ``member``."""
    if len(klass.files_types) == 1:  # one file, whatever its extension (.mgh or .mgz)
        return {klass.files_types[0][0]: member}
    return types_filenames(member, klass.files_types, trailing_suffixes=klass._compressed_suffixes)


def _stored_name(archive: zipfile.ZipFile, wanted: str) -> str | None:
    """``wanted`` as the archive stores it, maybe compressed otherwise (AFNI: .HEAD + .BRIK.gz)."""
    names = set(archive.namelist())
    stem = wanted
    for suffix in COMPRESSION_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for candidate in (wanted, stem, *(stem + suffix for suffix in (".gz", ".bz2"))):
        if candidate in names:
            return candidate
    return None


def _image_class(archive, member, read, where) -> tuple[type[SpatialImage], dict[str, str]]:
    """The nibabel class that reads ``member``, chosen as nibabel.load chooses on disk."""
    known = False
    missing_header = None
    for klass in VOLUME_CLASSES:
        _, ext, _ = splitext_addext(member, klass._compressed_suffixes)
        if ext.lower() not in klass.valid_exts:
            continue
        known = True
        names_by_kind = _names_by_kind(klass, member)
        header = names_by_kind.get("header", member)
        stored = _stored_name(archive, header)
        if stored is None:
            missing_header = header
            continue
        sniff = read(stored)
        # A sniff shorter than the class wants, or named otherwise than nibabel names the
        # header, would make nibabel reopen the header by name from the working directory.
        if len(sniff) < max(klass._meta_sniff_len, 1):
            continue
        maybe, _ = klass.path_maybe_image(member, sniff=(sniff, header))
        if maybe:
            return klass, names_by_kind
    if not known:
        raise UserError(
            f"{where} is not in a volume format voxspec reads; "
            f"allowed extensions: {', '.join(VOLUME_EXTENSIONS)}"
        )
    if missing_header is not None:
        raise UserError(
            f"{where} needs its header file {missing_header!r} beside it, "
            "which is not in the archive"
        )
    raise UserError(f"{where} has a volume extension but no valid header for that format")
