"""The data issue end to end, through the real ``voxspec`` command.

- The tutorial's three head views (figspecs/online/) build from a local copy of the
  tutorial's archive served on 127.0.0.1, downloading it once for the three figures.
- Every hostile archive and every bad piece of data fails the same way: exit 2, one
  located line on stderr, no traceback, no output written, the previous good output of
  the figure untouched, and the download cache holding exactly what it held before
  (no partial file, no bad download).
- ``voxspec validate`` warns about unpinned files.

The HTTP server is a real one (see httpserver.py) and VOXSPEC_CACHE points into the
test's tmp folder, so the user's own cache is never touched.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import ROOT
from httpserver import LocalServer, Route, refused_url
from nibabel.testing import data_path
from PIL import Image
from ziptools import with_declared_size

from voxspec.download import DownloadLimits

ONLINE = ROOT / "figspecs" / "online"
TUTORIAL_URL = "http://www.fil.ion.ucl.ac.uk/spm/download/data/attention/attention.zip"
TUTORIAL_MEMBER = "attention/structural/nsM00587_0002.hdr"
TUTORIAL_IMG = TUTORIAL_MEMBER[:-4] + ".img"
FUNCTIONAL_MEMBER = "attention/functional/snffM00587_0030.hdr"
SMALL_FIGURE = "figure: {width: 8, height: 8, dpi: 60}"
SMALL_FIGURE_PX = (189, 189)  # 8 cm at 60 dpi, rounded


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def analyze_pair(tmp_path_factory) -> tuple[bytes, bytes]:
    """nibabel's real anatomical.nii saved as an Analyze pair, as the tutorial's scan is."""
    scan = nib.load(Path(data_path) / "anatomical.nii")
    header = tmp_path_factory.mktemp("analyze") / "nsM00587_0002.hdr"
    nib.save(nib.AnalyzeImage(np.asarray(scan.dataobj), scan.affine), header)
    return header.read_bytes(), header.with_suffix(".img").read_bytes()


def tutorial_members(pair: tuple[bytes, bytes]) -> dict[str, bytes]:
    """The tutorial archive's layout: the structural pair among other members."""
    hdr, img = pair
    return {
        TUTORIAL_MEMBER: hdr,
        TUTORIAL_IMG: img,
        "attention/README.txt": b"Attention to visual motion",
        FUNCTIONAL_MEMBER: hdr,
        FUNCTIONAL_MEMBER[:-4] + ".img": img,
    }


@pytest.fixture(scope="module")
def tutorial_zip(analyze_pair) -> bytes:
    return make_zip(tutorial_members(analyze_pair))


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VOXSPEC_CACHE", str(folder))
    return folder


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden and partial ones too) with its bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------- the tutorial's views


def test_tutorial_head_views_build_from_the_archive_downloaded_once(
    in_tmp, cache, server, run_cli, tutorial_zip
):
    server.routes["/spm/attention.zip"] = Route(tutorial_zip)
    specs = in_tmp / "online"
    specs.mkdir()
    names = {}
    for name in ("brain-cut", "brain-diagonal", "brain-full"):
        text = (ONLINE / f"{name}.yaml").read_text()
        assert text.count(TUTORIAL_URL) == 1 and f"member: {TUTORIAL_MEMBER}" in text
        text = text.replace(TUTORIAL_URL, server.url("/spm/attention.zip"))
        # smaller and coarser than printed, to stay fast; steps and panels as written
        text, count = re.subn(r"(?m)^figure: .*$", SMALL_FIGURE, text)
        assert count == 1
        (specs / f"{name}.yaml").write_text(text)
        names[name] = re.search(r"(?m)^name: (\S+)$", text).group(1)

    code, out, err = run_cli("build", "online", "-o", "out")
    assert code == 0, err
    assert "Traceback" not in err
    assert server.hits["/spm/attention.zip"] == 1  # one download for the three figures

    for figure in names.values():
        png = in_tmp / "out" / f"{figure}.png"
        with Image.open(png) as image:
            assert image.size == SMALL_FIGURE_PX
            pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
        non_white = np.mean(np.any(pixels < 245, axis=-1))
        coloured = np.mean(np.ptp(pixels, axis=-1) > 60)  # viridis voxels, not grey axes
        assert non_white > 0.15, f"{figure}: only {non_white:.0%} non-white pixels"
        assert coloured > 0.05, f"{figure}: only {coloured:.0%} coloured pixels"
        record = json.loads((in_tmp / "out" / f"{figure}.manifest.json").read_bytes())
        assert record["sources"]["head"]["sha256"] == sha256(tutorial_zip)
        assert record["outputs"][f"{figure}.png"] == sha256(png.read_bytes())

    # the archive sits in the cache, whole, and nothing else does
    assert list(files(cache).values()) == [tutorial_zip]
    # a second build is a no-op that needs no network
    code, _, err = run_cli("build", "online", "-o", "out")
    assert code == 0 and err.count("up to date") == 3, err
    assert server.hits["/spm/attention.zip"] == 1


# ----------------------------------------------------------------- failing builds

FIGURE = """voxspec: 1
name: fig
volumes:
  head:
    source: {source}
    steps:
{steps}
figure: {{width: 4, height: 4, dpi: 50}}
panels:
  - {{kind: slice, volume: head}}
"""


def spec_text(source: str, steps: list[str]) -> str:
    return FIGURE.format(source=source, steps="".join(f"      - {s}\n" for s in steps))


class Project:
    """One figure, ``fig``, built into ``out/`` from ``fig.yaml`` in the working folder."""

    def __init__(self, root: Path, cache: Path, server: LocalServer, run_cli) -> None:
        self.root, self.cache, self.server, self.run_cli = root, cache, server, run_cli
        self.spec = root / "fig.yaml"
        self.out = root / "out"

    def build(self, text: str) -> tuple[int, str, str]:
        self.spec.write_text(text)
        return self.run_cli("build", "fig.yaml", "-o", "out")

    def good(self, text: str) -> None:
        code, out, err = self.build(text)
        assert code == 0, err
        assert (self.out / "fig.png").is_file()
        self.outputs, self.cached = files(self.out), files(self.cache)

    def fails(self, text: str, where: str) -> str:
        """Build ``text`` after a good build; it must fail at ``where`` and change nothing."""
        code, out, err = self.build(text)
        assert code == 2, err
        assert "Traceback" not in err and out == ""
        lines = err.splitlines()
        assert len(lines) == 1, err
        match = re.fullmatch(r"fig\.yaml:(\d+):(\d+): (\S+): (.+)", lines[0])
        assert match, lines[0]
        line, _, location, message = match.groups()
        assert location == where
        assert int(line) == self.line_of(text, where)
        assert files(self.out) == self.outputs, "the previous good output changed"
        assert files(self.cache) == self.cached, "the download cache changed"
        return message

    @staticmethod
    def line_of(text: str, where: str) -> int:
        """The spec line an error at ``where`` should point to."""
        lines = text.splitlines()
        if where.endswith(".source"):
            return next(i for i, s in enumerate(lines, 1) if s.startswith("    source:"))
        steps = next(i for i, s in enumerate(lines, 1) if s.startswith("    steps:"))
        index = re.fullmatch(r"volumes\.head\.steps(?:\[(\d+)\])?", where)
        assert index, where
        return steps + 1 + int(index.group(1) or 0)  # a block list is located at its first item


@pytest.fixture
def project(in_tmp, cache, server, run_cli) -> Project:
    return Project(in_tmp, cache, server, run_cli)


def url_source(server: LocalServer, path: str, member: str | None = TUTORIAL_MEMBER, pin=None):
    parts = [f"url: {server.url(path)}"]
    if member is not None:
        parts.append(f"member: {member!r}")
    if pin is not None:
        parts.append(f"sha256: {pin}")
    return "{" + ", ".join(parts) + "}"


@pytest.fixture
def tutorial_project(project, tutorial_zip) -> Project:
    """A good figure of the tutorial archive's scan, downloaded from /attention.zip."""
    project.server.routes["/attention.zip"] = Route(tutorial_zip)
    project.good(spec_text(url_source(project.server, "/attention.zip"), ["normalize"]))
    assert list(project.cached.values()) == [tutorial_zip]
    return project


# Hostile archives, each served at its own address (the spec's url changes, as it would
# when a user points it elsewhere): (archive maker, member named, expected text).
HOSTILE = {
    "absolute member in the archive": (
        lambda pair: make_zip({**tutorial_members(pair), "/etc/evil.hdr": b"x"}),
        TUTORIAL_MEMBER,
        "member '/etc/evil.hdr' has an absolute path",
    ),
    "'..' member in the archive": (
        lambda pair: make_zip({**tutorial_members(pair), "attention/../../evil.hdr": b"x"}),
        TUTORIAL_MEMBER,
        "member 'attention/../../evil.hdr' has a '..' part",
    ),
    "zip bomb (declared size)": (
        lambda pair: with_declared_size(make_zip(tutorial_members(pair)), 0xFFFFFFF0),
        TUTORIAL_MEMBER,
        "declares 4.0 GiB, more than the 2.0 GiB limit for one file (a zip bomb?)",
    ),
    "corrupt zip": (
        lambda pair: make_zip(tutorial_members(pair))[:2000],
        TUTORIAL_MEMBER,
        "is not a readable zip archive",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archive(tutorial_project, analyze_pair, case):
    make, member, expected = HOSTILE[case]
    server = tutorial_project.server
    server.routes["/evil/attention.zip"] = Route(make(analyze_pair))
    source = url_source(server, "/evil/attention.zip", member)
    message = tutorial_project.fails(spec_text(source, ["normalize"]), "volumes.head.source")
    assert expected in message
    assert server.url("/evil/attention.zip") in message


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("/attention/structural/nsM00587_0002.hdr", "has an absolute path"),
        ("attention/../attention/structural/nsM00587_0002.hdr", "has a '..' part"),
    ],
)
def test_member_named_outside_the_archive(tutorial_project, member, expected):
    source = url_source(tutorial_project.server, "/attention.zip", member)
    message = tutorial_project.fails(spec_text(source, ["normalize"]), "volumes.head.source")
    assert f"member {member!r} {expected}" in message


def test_missing_member_lists_the_candidates(tutorial_project):
    source = url_source(tutorial_project.server, "/attention.zip", "attention/structural/x.hdr")
    message = tutorial_project.fails(spec_text(source, ["normalize"]), "volumes.head.source")
    assert "member 'attention/structural/x.hdr' is not in" in message
    assert TUTORIAL_MEMBER in message and FUNCTIONAL_MEMBER in message
    assert ".img" not in message and "README" not in message


def test_url_sha256_mismatch(tutorial_project, tutorial_zip):
    # the pinned archive's address now serves other bytes
    changed = tutorial_zip + b"\0"
    tutorial_project.server.routes["/v2/attention.zip"] = Route(changed)
    source = url_source(tutorial_project.server, "/v2/attention.zip", pin=sha256(tutorial_zip))
    message = tutorial_project.fails(spec_text(source, ["normalize"]), "volumes.head.source")
    assert f"expected {sha256(tutorial_zip)}, got {sha256(changed)}" in message


# How a server can fail: (route, or None for nothing listening, expected text).
SERVER_FAILURES = {
    "HTTP 404": (None, "HTTP 404 Not Found"),
    "HTTP 500": (Route(b"oops", status=500), "HTTP 500 Internal Server Error"),
    "short body": (Route(b"PK" * 5000, announce=20_000), "broke off after 10000 bytes"),
    "stalled before headers": (Route(stall_before_headers=10), "read timeout"),
    "stalled mid-body": (
        Route(b"PK" * 20_000, stall_after=8192, stall_seconds=10),
        "read timeout",
    ),
}


@pytest.fixture
def fast_downloads(monkeypatch):
    """Downloads give up after 0.5 s of silence, not a minute. The CLI has no option for
    it, so this replaces the limits load_source uses by default. (Patching
    voxspec.sources.DEFAULT_LIMITS would not do: the default was bound at definition.)"""
    from voxspec import sources

    fast = DownloadLimits(connect_timeout=0.5, read_timeout=0.5, progress_delay=0)
    monkeypatch.setitem(sources.load_source.__kwdefaults__, "limits", sources.Limits(fast))


@pytest.mark.parametrize("case", list(SERVER_FAILURES))
def test_server_failure(tutorial_project, fast_downloads, case):
    route, expected = SERVER_FAILURES[case]
    server = tutorial_project.server
    if route is not None:
        server.routes["/broken/attention.zip"] = route
    source = url_source(server, "/broken/attention.zip")
    message = tutorial_project.fails(spec_text(source, ["normalize"]), "volumes.head.source")
    assert expected in message and server.url("/broken/attention.zip") in message
    assert server.hits["/broken/attention.zip"] == 1


def test_unreadable_download_is_not_kept(tutorial_project, tutorial_zip):
    # A body cut short without a Content-Length looks complete to the client; the zip
    # it makes is unreadable and must not stay in the cache, or the address would fail
    # forever, even after the server sends the whole file again.
    server = tutorial_project.server
    server.routes["/cut/attention.zip"] = Route(tutorial_zip[:3000], send_length=False)
    text = spec_text(url_source(server, "/cut/attention.zip"), ["normalize"])
    message = tutorial_project.fails(text, "volumes.head.source")
    assert "is not a readable zip archive" in message
    server.routes["/cut/attention.zip"] = Route(tutorial_zip)
    code, _, err = tutorial_project.build(text)
    assert code == 0, err
    assert server.hits["/cut/attention.zip"] == 2
    assert sorted(files(tutorial_project.cache).values()) == [tutorial_zip, tutorial_zip]


def test_refused_connection(tutorial_project, fast_downloads):
    url = refused_url().replace("/volume.nii", "/attention.zip")
    source = f"{{url: {url}, member: {TUTORIAL_MEMBER}}}"
    message = tutorial_project.fails(spec_text(source, ["normalize"]), "volumes.head.source")
    assert f"cannot connect to {url}" in message and "refused" in message.lower()


# ------------------------------------------------------------- bad local data


def ramp(shape=(12, 14, 10)) -> np.ndarray:
    return np.linspace(0, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)


@pytest.fixture
def npy_project(project) -> Project:
    np.save(project.root / "head.npy", ramp())
    return project


def data_case(project: Project, steps: list[str], bad: np.ndarray | None, where: str) -> str:
    """Build from head.npy, then replace (None: delete) the file, rebuild: the failure."""
    text = spec_text("{path: head.npy}", steps)
    project.good(text)
    if bad is None:
        (project.root / "head.npy").unlink()
    else:
        np.save(project.root / "head.npy", bad)
    return project.fails(text, where)


def test_path_sha256_mismatch(npy_project):
    good = (npy_project.root / "head.npy").read_bytes()
    text = spec_text(f"{{path: head.npy, sha256: {sha256(good)}}}", ["normalize"])
    npy_project.good(text)
    np.save(npy_project.root / "head.npy", ramp() * 2)  # the pinned file changed
    message = npy_project.fails(text, "volumes.head.source")
    changed = sha256((npy_project.root / "head.npy").read_bytes())
    assert message == f"SHA-256 mismatch for head.npy: expected {sha256(good)}, got {changed}"


def test_missing_path_file(npy_project):
    message = data_case(npy_project, ["normalize"], None, "volumes.head.source")
    assert message.startswith("path 'head.npy' does not exist")


def test_constant_volume_under_normalize(npy_project):
    constant = np.full((12, 14, 10), 3.0)
    message = data_case(npy_project, ["normalize"], constant, "volumes.head.steps[0]")
    assert "cannot normalize a constant volume (every voxel is 3)" in message


def test_nan_data_is_counted_and_replace_nan_fixes_it(npy_project):
    holes = ramp()
    holes[0, 0, :4] = np.nan
    holes[5, 5, 5] = np.inf
    message = data_case(npy_project, ["offset: 1", "normalize"], holes, "volumes.head.steps[0]")
    assert "volume 'head' has 5 NaN or infinite values" in message
    assert "replace_nan: 0" in message

    text = spec_text("{path: head.npy}", ["replace_nan: 0", "offset: 1", "normalize"])
    code, _, err = npy_project.build(text)
    assert code == 0, err
    assert files(npy_project.out)["fig.png"] != npy_project.outputs["fig.png"]


def test_2d_npy_data(npy_project):
    message = data_case(npy_project, ["normalize"], np.ones((12, 14)), "volumes.head.source")
    assert "holds 2D data of shape [12, 14]" in message and "needs 3" in message


def test_empty_after_crop(npy_project):
    # the crop keeps x from 8 on; the new file is only 6 voxels wide
    steps = ["crop: {x: [8, null]}", "normalize"]
    message = data_case(npy_project, steps, ramp((6, 14, 10)), "volumes.head.steps[0]")
    assert "volume 'head' is empty after this step" in message


def test_all_zeros_after_threshold(npy_project):
    message = data_case(npy_project, ["threshold: 0.5"], ramp() * 0.4, "volumes.head.steps")
    assert "volume 'head' is all zeros after its steps: nothing to draw" in message


def test_resize_beyond_the_machines_memory(npy_project, monkeypatch):
    import voxspec.steps

    # a 1 GiB machine: nothing here is allocated, the check refuses before resizing
    monkeypatch.setattr(voxspec.steps, "available_memory", lambda: 1024**3)
    npy_project.good(spec_text("{path: head.npy}", ["normalize", "resize: 16"]))
    text = spec_text("{path: head.npy}", ["normalize", "resize: 512"])
    message = npy_project.fails(text, "volumes.head.steps[1]")
    assert message == "resize to [512, 512, 512] needs 2.0 GiB; this machine allows about 0.5 GiB"


# ------------------------------------------------------------------------ validate


def test_validate_warns_about_unpinned_files(in_tmp, run_cli, tutorial_zip):
    (in_tmp / "head.npy").write_bytes(b"")  # validate reads no data
    text = """voxspec: 1
name: fig
volumes:
  web:
    source: {url: "http://127.0.0.1:9/attention.zip", member: a.hdr}
  disk:
    source:
      path: head.npy
  pinned_web:
    source: {url: "http://127.0.0.1:9/v.nii.gz", sha256: PIN_WEB}
  pinned_disk:
    source: {path: head.npy, sha256: PIN_DISK}
  phantom:
    source: {builtin: head-phantom}
figure: {width: 4, height: 4}
panels:
  - {kind: slice, volume: web}
"""
    text = text.replace("PIN_WEB", sha256(tutorial_zip)).replace("PIN_DISK", "AB" * 32)
    (in_tmp / "fig.yaml").write_text(text)
    code, out, err = run_cli("validate", "fig.yaml")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        "fig.yaml:5:13: volumes.web.source: warning: not pinned; "
        "add 'sha256:' so the figure always uses the same bytes",
        "fig.yaml:8:7: volumes.disk.source: warning: not pinned; "
        "add 'sha256:' so the figure always uses the same bytes",
    ]
    assert "voxspec: fig.yaml: valid" in err and "Traceback" not in err
