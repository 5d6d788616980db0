"""load_source on real data: nibabel's own small scans, on disk, in zips and over HTTP.

The HTTP server is a real one on 127.0.0.1 (see httpserver.py); VOXSPEC_CACHE points
into the test's tmp folder, so the user's cache is never touched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import zipfile
from importlib.util import find_spec
from pathlib import Path

import nibabel as nib
import numpy as np
import platformdirs
import pytest
from httpserver import LocalServer, Route
from nibabel.testing import data_path
from ziptools import with_declared_size

from voxspec.download import DownloadLimits
from voxspec.errors import UserError
from voxspec.model import Source
from voxspec.sources import Limits, cache_dir, count_nonfinite, load_source
from voxspec.volume import VolumeData

NIBABEL_DATA = Path(data_path)
TUTORIAL_MEMBER = "attention/structural/nsM00587_0002.hdr"
FAST = Limits(download=DownloadLimits(connect_timeout=0.5, read_timeout=0.5))
SMALL = Limits(max_member_bytes=1024**2)  # 1 MiB per archive member


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("VOXSPEC_CACHE", str(folder))
    return folder


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(tmp_path: Path, limits: Limits = FAST, **source) -> VolumeData:
    return load_source(Source(**source), tmp_path, limits=limits)


def error(tmp_path: Path, limits: Limits = FAST, **source) -> str:
    with pytest.raises(UserError) as caught:
        load(tmp_path, limits, **source)
    message = str(caught.value)
    assert "\n" not in message
    return message


def reference(path: Path, frame: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What nibabel.load reads from the files on disk, as float32."""
    image = nib.load(path)
    data = image.get_fdata()
    if frame is not None:
        data = data[..., frame]
    return data.astype(np.float32), image.affine


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    return path


@pytest.fixture
def analyze_pair(tmp_path) -> Path:
    """A real scan (nibabel's anatomical.nii) saved as an Analyze pair, as the tutorial's."""
    scan = nib.load(NIBABEL_DATA / "anatomical.nii")
    header = tmp_path / "disk" / TUTORIAL_MEMBER
    header.parent.mkdir(parents=True)
    nib.save(nib.AnalyzeImage(np.asarray(scan.dataobj), scan.affine), header)
    return header


@pytest.fixture
def tutorial_zip(tmp_path, analyze_pair) -> Path:
    """The tutorial's archive layout: the structural pair among other members."""
    img = analyze_pair.with_suffix(".img")
    members = {
        TUTORIAL_MEMBER: analyze_pair.read_bytes(),
        TUTORIAL_MEMBER[:-4] + ".img": img.read_bytes(),
        "attention/README.txt": b"Attention to visual motion",
        "attention/functional/snffM00587_0030.hdr": analyze_pair.read_bytes(),
        "attention/functional/snffM00587_0030.img": img.read_bytes(),
    }
    return make_zip(tmp_path / "attention.zip", members)


# ------------------------------------------------------------------------- url


def test_url_zip_member_equals_nibabel_on_disk(tmp_path, server, analyze_pair, tutorial_zip):
    archive = tutorial_zip.read_bytes()
    server.routes["/spm/attention.zip"] = Route(archive)
    source = {"url": server.url("/spm/attention.zip"), "member": TUTORIAL_MEMBER}
    volume = load(tmp_path, **source)
    expected, affine = reference(analyze_pair)
    assert volume.data.dtype == np.float32 and volume.data.flags.c_contiguous
    assert volume.data.shape == (33, 41, 25)
    np.testing.assert_allclose(volume.data, expected, rtol=1e-6)
    np.testing.assert_array_equal(volume.affine, affine)
    assert volume.sha256 == sha256(archive)  # the archive's, as the spec pins it

    again = load(tmp_path, **source)
    assert server.hits["/spm/attention.zip"] == 1  # the second load came from the cache
    np.testing.assert_array_equal(again.data, volume.data)


def test_url_nifti_is_cached_under_voxspec_cache(tmp_path, server, cache):
    nifti = (NIBABEL_DATA / "anatomical.nii").read_bytes()
    server.routes["/anatomical.nii"] = Route(nifti)
    volume = load(tmp_path, url=server.url("/anatomical.nii"), sha256=sha256(nifti))
    expected, affine = reference(NIBABEL_DATA / "anatomical.nii")
    np.testing.assert_allclose(volume.data, expected, rtol=1e-6)
    np.testing.assert_array_equal(volume.affine, affine)
    assert volume.sha256 == sha256(nifti)
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert len(cached) == 1 and cached[0].parent == cache / "downloads"
    assert cached[0].name.endswith("-anatomical.nii")


def test_url_4d_frame(tmp_path, server):
    server.routes["/example4d.nii.gz"] = Route((NIBABEL_DATA / "example4d.nii.gz").read_bytes())
    volume = load(tmp_path, url=server.url("/example4d.nii.gz"), frame=1)
    expected, _ = reference(NIBABEL_DATA / "example4d.nii.gz", frame=1)
    np.testing.assert_allclose(volume.data, expected, rtol=1e-6)


def test_url_hash_mismatch_keeps_nothing(tmp_path, server, cache, tutorial_zip):
    archive = tutorial_zip.read_bytes()
    server.routes["/attention.zip"] = Route(archive)
    wrong = "ab" * 32
    message = error(
        tmp_path, url=server.url("/attention.zip"), member=TUTORIAL_MEMBER, sha256=wrong
    )
    assert f"expected {wrong}, got {sha256(archive)}" in message
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_url_http_error_keeps_nothing(tmp_path, server, cache):
    server.routes["/gone.nii"] = Route(b"", status=500)
    assert "HTTP 500" in error(tmp_path, url=server.url("/gone.nii"))
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_url_to_one_file_of_a_pair_is_refused_before_downloading(tmp_path, server):
    message = error(tmp_path, url=server.url("/scan.hdr"))
    assert "multi-file format" in message and "'member'" in message
    assert server.hits["/scan.hdr"] == 0


# ------------------------------------------------------------------------ path


FORMATS = [  # (file, frame, what nibabel calls it)
    ("anatomical.nii", 0, "Nifti1Image"),
    ("example_nifti2.nii.gz", 1, "Nifti2Image"),
    ("test.mgz", 1, "MGHImage"),
    ("tiny.mnc", 0, "Minc1Image"),
    ("phantom_EPI_asc_CLEAR_2_1.PAR", 2, "PARRECImage"),
    ("example4d+orig.HEAD", 2, "AFNIImage"),
]


@pytest.mark.parametrize(("name", "frame", "kind"), FORMATS)
def test_path_reads_nibabel_formats(name, frame, kind):
    image = nib.load(NIBABEL_DATA / name)
    assert type(image).__name__ == kind
    volume = load(NIBABEL_DATA, path=name, frame=frame)
    expected, affine = reference(NIBABEL_DATA / name, frame if image.ndim == 4 else None)
    np.testing.assert_allclose(volume.data, expected, rtol=1e-6)
    np.testing.assert_array_equal(volume.affine, affine)
    assert volume.sha256 == sha256((NIBABEL_DATA / name).read_bytes())


def test_path_minc_4d_frames_are_along_its_time_axis():
    # minc1_4d.mnc stores (time, z, y, x): the frame is the first axis, not the last
    image = nib.load(NIBABEL_DATA / "minc1_4d.mnc")
    volume = load(NIBABEL_DATA, path="minc1_4d.mnc", frame=1)
    np.testing.assert_allclose(volume.data, image.get_fdata()[1], rtol=1e-6)
    assert "has 2 frames" in error(NIBABEL_DATA, path="minc1_4d.mnc", frame=2)


@pytest.mark.skipif(find_spec("h5py") is not None, reason="with h5py, MINC2 reads fine")
def test_missing_optional_reader_is_named():
    message = error(NIBABEL_DATA, path="small.mnc")  # MINC2 is HDF5
    assert "needs the Python package 'h5py'" in message


def test_path_analyze_pair_on_disk(analyze_pair):
    volume = load(analyze_pair.parent, path=analyze_pair.name)
    expected, affine = reference(analyze_pair)
    np.testing.assert_allclose(volume.data, expected, rtol=1e-6)
    np.testing.assert_array_equal(volume.affine, affine)


def test_path_npy(tmp_path):
    array = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    np.save(tmp_path / "v.npy", array)
    volume = load(tmp_path, path="v.npy")
    assert volume.data.dtype == np.float32 and volume.data.flags.owndata
    np.testing.assert_array_equal(volume.data, array)
    np.testing.assert_array_equal(volume.affine, np.eye(4))
    assert volume.sha256 == sha256((tmp_path / "v.npy").read_bytes())


def test_path_relative_to_base_dir(tmp_path):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "v.npy", np.ones((2, 2, 2)))
    assert load(tmp_path, path="data/v.npy").data.shape == (2, 2, 2)


def test_path_sha256_pin(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((2, 2, 2)))
    actual = sha256((tmp_path / "v.npy").read_bytes())
    assert load(tmp_path, path="v.npy", sha256=actual.upper()).sha256 == actual
    wrong = "0" * 64
    message = error(tmp_path, path="v.npy", sha256=wrong)
    assert f"SHA-256 mismatch for v.npy: expected {wrong}, got {actual}" in message


def test_path_errors(tmp_path, analyze_pair):
    assert "path 'nope.nii' does not exist" in error(tmp_path, path="nope.nii")
    assert "is a folder" in error(tmp_path, path=".")
    (tmp_path / "notes.txt").write_text("not a volume")
    assert "not a volume format voxspec reads" in error(tmp_path, path="notes.txt")
    truncated = (NIBABEL_DATA / "anatomical.nii").read_bytes()[:1000]
    (tmp_path / "cut.nii").write_bytes(truncated)
    assert "cut.nii" in error(tmp_path, path="cut.nii")
    analyze_pair.with_suffix(".img").unlink()
    message = error(analyze_pair.parent, path=analyze_pair.name)
    assert "needs the file 'nsM00587_0002.img' beside it, which is missing" in message
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    assert "not a readable .npy file" in error(tmp_path, path="bad.npy")


def test_zip_without_member_lists_its_volumes(tmp_path, tutorial_zip):
    message = error(tmp_path, path="attention.zip")
    assert "name the volume inside with 'member'" in message and TUTORIAL_MEMBER in message


# --------------------------------------------------------------------- shapes


def test_frame_out_of_range_and_on_3d_data():
    message = error(NIBABEL_DATA, path="example4d.nii.gz", frame=2)
    assert "frame 2 is out of range" in message and "has 2 frames (0 to 1)" in message
    message = error(NIBABEL_DATA, path="anatomical.nii", frame=1)
    assert "single 3D volume" in message


@pytest.mark.parametrize("shape", [(5, 6), (7,)])
def test_data_below_3d_is_rejected(tmp_path, shape):
    np.save(tmp_path / "flat.npy", np.zeros(shape))
    message = error(tmp_path, path="flat.npy")
    assert f"{len(shape)}D data of shape {list(shape)}" in message and "needs 3" in message


def test_5d_data(tmp_path):
    np.save(tmp_path / "padded.npy", np.ones((2, 3, 4, 2, 1)))  # NIfTI-style unit padding
    assert load(tmp_path, path="padded.npy", frame=1).data.shape == (2, 3, 4)
    np.save(tmp_path / "vector.npy", np.ones((2, 3, 4, 2, 3)))
    assert "5D data" in error(tmp_path, path="vector.npy")


def test_non_real_data_is_rejected(tmp_path):
    np.save(tmp_path / "complex.npy", np.ones((2, 2, 2), np.complex64))
    assert "complex64 values" in error(tmp_path, path="complex.npy")
    np.save(tmp_path / "objects.npy", np.empty((2, 2, 2), object), allow_pickle=True)
    assert "not a readable .npy file" in error(tmp_path, path="objects.npy")


def test_nonfinite_values_are_kept_and_counted(tmp_path):
    array = np.ones((3, 3, 3))
    array[0, 0, :2] = np.nan
    array[1, 1, 1] = np.inf
    np.save(tmp_path / "holes.npy", array)
    volume = load(tmp_path, path="holes.npy")
    assert count_nonfinite(volume.data) == 3
    assert count_nonfinite(np.ones((2, 2, 2), np.float32)) == 0


def huge_nifti() -> bytes:
    """A valid NIfTI header declaring 30000^3 int16 voxels, with no data behind it."""
    header = nib.Nifti1Header()
    header.set_data_shape((30000, 30000, 30000))
    header.set_data_dtype(np.int16)
    return header.binaryblock + b"\0" * 4


def test_absurd_declared_shape_is_refused_before_reading(tmp_path):
    (tmp_path / "huge.nii").write_bytes(huge_nifti())
    message = error(tmp_path, path="huge.nii")
    assert "30000x30000x30000 grid" in message and "memory" in message
    make_zip(tmp_path / "huge.zip", {"huge.nii": huge_nifti()})
    assert "memory" in error(tmp_path, path="huge.zip", member="huge.nii")


# -------------------------------------------------------------- builtin, array


def test_builtin_phantom(tmp_path):
    volume = load(tmp_path, builtin="head-phantom", shape=(12, 14, 16))
    assert volume.data.shape == (12, 14, 16) and volume.data.dtype == np.float32
    assert volume.sha256 is None
    np.testing.assert_array_equal(volume.affine, np.eye(4))


def test_inline_array(tmp_path):
    nested = [[[1, 0, 1], [0, 0, 1], [0, 1, 0]]] * 3
    volume = load(tmp_path, array=nested)
    np.testing.assert_array_equal(volume.data, np.array(nested, np.float32))
    assert volume.data.dtype == np.float32 and volume.sha256 is None


def test_cache_dir_default_is_the_platform_user_cache(monkeypatch):
    monkeypatch.delenv("VOXSPEC_CACHE")
    assert cache_dir() == Path(platformdirs.user_cache_dir("voxspec"))


# ---------------------------------------------------------------------- archives


ZIPPED_FORMATS = [  # (member, companions stored beside it)
    ("anatomical.nii", ()),
    ("example4d.nii.gz", ()),
    ("test.mgz", ()),
    ("tiny.mnc", ()),
    ("phantom_EPI_asc_CLEAR_2_1.PAR", ("phantom_EPI_asc_CLEAR_2_1.REC",)),
    ("example4d+orig.HEAD", ("example4d+orig.BRIK.gz",)),
]


@pytest.mark.parametrize(("member", "companions"), ZIPPED_FORMATS)
def test_zip_members_equal_the_files_on_disk(tmp_path, member, companions):
    members = {
        f"scans/{name}": (NIBABEL_DATA / name).read_bytes() for name in (member, *companions)
    }
    make_zip(tmp_path / "scans.zip", members)
    from_zip = load(tmp_path, path="scans.zip", member=f"scans/{member}")
    from_disk = load(NIBABEL_DATA, path=member)
    np.testing.assert_array_equal(from_zip.data, from_disk.data)
    np.testing.assert_array_equal(from_zip.affine, from_disk.affine)
    assert from_zip.sha256 == sha256((tmp_path / "scans.zip").read_bytes())


def test_zip_analyze_pair_equals_nibabel_on_disk(tmp_path, analyze_pair, tutorial_zip):
    volume = load(tmp_path, path="attention.zip", member=TUTORIAL_MEMBER)
    expected, affine = reference(analyze_pair)
    np.testing.assert_allclose(volume.data, expected, rtol=1e-6)
    np.testing.assert_array_equal(volume.affine, affine)


def test_zip_is_read_without_extracting(tmp_path, tutorial_zip):
    before = sorted(p for p in tmp_path.rglob("*"))
    load(tmp_path, path="attention.zip", member=TUTORIAL_MEMBER)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_zip_npy_member(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.arange(8.0).reshape(2, 2, 2))
    make_zip(tmp_path / "a.zip", {"arrays/v.npy": buffer.getvalue()})
    volume = load(tmp_path, path="a.zip", member="arrays/v.npy")
    np.testing.assert_array_equal(volume.data, np.arange(8.0).reshape(2, 2, 2))


def test_zip_missing_member_lists_the_candidates(tmp_path, tutorial_zip):
    message = error(tmp_path, path="attention.zip", member="attention/structural/nope.hdr")
    assert "is not in attention.zip" in message
    assert TUTORIAL_MEMBER in message and "attention/functional/snffM00587_0030.hdr" in message
    assert ".img" not in message and "README" not in message  # only what a user can name


def test_zip_pair_without_its_image(tmp_path, analyze_pair):
    make_zip(tmp_path / "half.zip", {TUTORIAL_MEMBER: analyze_pair.read_bytes()})
    message = error(tmp_path, path="half.zip", member=TUTORIAL_MEMBER)
    assert "nsM00587_0002.img" in message and "not in the archive" in message


def test_zip_image_without_its_header(tmp_path, analyze_pair):
    img = TUTORIAL_MEMBER[:-4] + ".img"
    make_zip(tmp_path / "half.zip", {img: analyze_pair.with_suffix(".img").read_bytes()})
    message = error(tmp_path, path="half.zip", member=img)
    assert f"needs its header file {TUTORIAL_MEMBER!r} beside it" in message


def test_zip_member_that_is_no_volume(tmp_path, tutorial_zip):
    message = error(tmp_path, path="attention.zip", member="attention/README.txt")
    assert "not in a volume format" in message and ".nii.gz" in message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/etc/brain.nii", "has an absolute path"),
        ("C:/brain.nii", "has an absolute path"),
        ("scans/../../brain.nii", "has a '..' part"),
    ],
)
def test_hostile_member_names_refuse_the_archive(tmp_path, name, problem):
    nifti = (NIBABEL_DATA / "anatomical.nii").read_bytes()
    make_zip(tmp_path / "evil.zip", {"scans/ok.nii": nifti, name: nifti})
    message = error(tmp_path, path="evil.zip", member="scans/ok.nii")
    assert f"refusing zip archive evil.zip: member {name!r} {problem}" in message


def test_member_named_outside_the_archive(tmp_path):
    make_zip(tmp_path / "a.zip", {"scans/ok.nii": (NIBABEL_DATA / "anatomical.nii").read_bytes()})
    assert "'..' part" in error(tmp_path, path="a.zip", member="../ok.nii")


def test_zip_bomb_with_a_huge_declared_size(tmp_path):
    honest = make_zip(tmp_path / "honest.zip", {"bomb.nii": b"\0" * 4096}).read_bytes()
    (tmp_path / "bomb.zip").write_bytes(with_declared_size(honest, 0xFFFFFFF0))
    message = error(tmp_path, path="bomb.zip", member="bomb.nii", limits=Limits())
    assert "declares 4.0 GiB" in message and "2.0 GiB limit" in message


def test_zip_bomb_that_really_inflates(tmp_path):
    make_zip(tmp_path / "bomb.zip", {"bomb.nii": b"\0" * (20 * 1024**2)})  # ~20 KiB zipped
    message = error(tmp_path, path="bomb.zip", member="bomb.nii", limits=SMALL)
    assert "declares 20.0 MiB" in message and "1.0 MiB limit" in message


def test_gzip_bomb_inside_a_member(tmp_path):
    # The zip's declared size is honest and small; the .nii.gz inside inflates 1000-fold.
    make_zip(tmp_path / "bomb.zip", {"bomb.nii.gz": gzip.compress(b"\0" * (20 * 1024**2))})
    message = error(tmp_path, path="bomb.zip", member="bomb.nii.gz", limits=SMALL)
    assert "decompresses to more than the 1.0 MiB limit" in message


def test_zip_member_larger_than_declared_is_not_trusted(tmp_path):
    honest = make_zip(tmp_path / "honest.zip", {"v.nii": b"\1" * 100_000}).read_bytes()
    (tmp_path / "liar.zip").write_bytes(with_declared_size(honest, 10))
    assert "is corrupt" in error(tmp_path, path="liar.zip", member="v.nii")


def test_corrupt_and_non_zip_archives(tmp_path, tutorial_zip):
    (tmp_path / "cut.zip").write_bytes(tutorial_zip.read_bytes()[:2000])
    assert "not a readable zip archive" in error(tmp_path, path="cut.zip", member=TUTORIAL_MEMBER)
    shutil.copy(NIBABEL_DATA / "anatomical.nii", tmp_path / "anatomical.nii")
    message = error(tmp_path, path="anatomical.nii", member="x.nii")
    assert "anatomical.nii is not a readable zip archive" in message
