"""Byte-identical figures from two processes that share nothing but the spec and data.

The two builds run in separate Python processes that differ in everything a file
could pick up by accident: the working folder, the time zone, the user (USER,
LOGNAME, HOME, and so a fresh matplotlib font cache), SOURCE_DATE_EPOCH (set in one,
unset in the other), the hash seed of Python's sets and the output folder's path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voxspec import manifest
from voxspec.provenance import PNG_KEY, read_provenance

FORMATS = ("png", "pdf", "svg", "tiff")

# Parentheses, a backslash and non-ASCII text stress the escaping of every format.
TINY_SPEC = """voxspec: 1
name: tiny
title: "Tiny (a) \\\\ b ü"
volumes:
  head:
    source: {builtin: head-phantom, shape: [24, 24, 24]}
    steps: [normalize]
  cube:
    source: {path: data/cube.npy}
figure: {width: 6, height: 3, dpi: 50, formats: [png, pdf, svg, tiff], panel_labels: true}
panels:
  - {kind: slice, volume: head, title: "slice (z)"}
  - {kind: histogram, volume: cube, bins: 8}
"""


def make_project(root: Path) -> Path:
    """A spec folder with one figure using a builtin and a .npy source."""
    specs = root / "specs"
    (specs / "data").mkdir(parents=True)
    cube = np.zeros((12, 12, 12), np.float32)
    cube[3:9, 3:9, 3:9] = np.linspace(0, 1, 216).reshape(6, 6, 6)
    np.save(specs / "data" / "cube.npy", cube)
    (specs / "tiny.yaml").write_text(TINY_SPEC, encoding="utf-8")
    return specs


def build_in_process(spec: Path, out: Path, cwd: Path, env: dict[str, str | None]) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in env}
    environment.update({k: v for k, v in env.items() if v is not None})
    environment.pop("MPLCONFIGDIR", None)  # each user gets matplotlib's config of their HOME
    done = subprocess.run(
        [sys.executable, "-m", "voxspec", "build", str(spec), "-o", str(out), "-q"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    """The same figure built twice, in two processes with different environments."""
    root = tmp_path_factory.mktemp("repro")
    specs = make_project(root)
    homes = [root / "home-alice", root / "home-bob"]
    for home in homes:
        home.mkdir()
    (root / "elsewhere" / "deeper").mkdir(parents=True)
    first, second = root / "out-1", root / "elsewhere" / "out-2"
    build_in_process(
        specs / "tiny.yaml",
        first,  # absolute output path, run from the spec folder
        cwd=specs,
        env={
            "TZ": "UTC",
            "USER": "alice_reprotest",
            "LOGNAME": "alice_reprotest",
            "HOME": str(homes[0]),
            "SOURCE_DATE_EPOCH": None,
            "PYTHONHASHSEED": "1",
        },
    )
    build_in_process(
        Path("../../specs/tiny.yaml"),
        Path("../out-2"),  # relative paths, from another folder
        cwd=root / "elsewhere" / "deeper",
        env={
            "TZ": "Pacific/Chatham",
            "USER": "bob_reprotest",
            "LOGNAME": "bob_reprotest",
            "HOME": str(homes[1]),
            "SOURCE_DATE_EPOCH": "1234567890",
            "PYTHONHASHSEED": "2",
        },
    )
    return root, specs, first, second


def test_every_file_is_byte_identical(two_builds):
    _, _, first, second = two_builds
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert names == ["tiny.manifest.json"] + [f"tiny.{fmt}" for fmt in sorted(FORMATS)]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_no_machine_details_inside_the_files(two_builds):
    root, _, first, _ = two_builds
    for file in first.iterdir():
        data = file.read_bytes()
        # long markers only: a short word could turn up by chance in compressed bytes
        for leak in (str(root), "alice_reprotest", "bob_reprotest", "/root/", "site-packages"):
            assert leak.encode() not in data, (file.name, leak)
    pdf = (first / "tiny.pdf").read_bytes()
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf
    assert b"/ID" not in pdf.split(b"trailer")[-1]
    assert b"Matplotlib" not in pdf
    svg = (first / "tiny.svg").read_text(encoding="utf-8")
    assert "<dc:date>" not in svg
    with Image.open(first / "tiny.png") as png:
        assert set(png.text) == {"Software", PNG_KEY}
        assert png.text["Software"] == "voxspec " + manifest.versions()["voxspec"]
    with Image.open(first / "tiny.tiff") as tiff:
        date_time, software = 306, 305
        assert date_time not in tiff.tag_v2 and software not in tiff.tag_v2


def test_pdf_fonts_are_embedded_truetype(two_builds):
    pdf = (two_builds[2] / "tiny.pdf").read_bytes()
    assert b"/Type3" not in pdf
    assert b"/CIDFontType2" in pdf and b"/FontFile2" in pdf  # TrueType, embedded


def test_every_format_carries_the_provenance(two_builds, run_cli):
    _, specs, first, _ = two_builds
    record = json.loads((first / "tiny.manifest.json").read_bytes())
    expected = manifest.provenance(record)
    for fmt in FORMATS:
        assert read_provenance(first / f"tiny.{fmt}") == expected, fmt
        code, out, err = run_cli("inspect", first / f"tiny.{fmt}")
        assert (code, err) == (0, "")
        assert json.loads(out) == expected
    assert expected["spec"]["title"] == "Tiny (a) \\ b ü"
    assert expected["sources"]["cube"]["sha256"] == manifest.sha256_file(
        specs / "data" / "cube.npy"
    )


def test_verify_passes_on_both_builds(two_builds, run_cli):
    _, specs, first, second = two_builds
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    for out in (first, second):
        code, stdout, err = run_cli("verify", specs / "tiny.yaml", "-o", out)
        assert code == 0, stdout + err
        assert stdout == "tiny: reproduces (tiny.pdf, tiny.png, tiny.svg, tiny.tiff)\n"
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
