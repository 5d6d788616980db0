"""`voxspec verify` and `voxspec inspect`: a mutation corpus and the error cases.

One figure is built once; every test gets its own copy and changes one thing: a voxel
of the .npy source, a value of the spec, a version recorded in the manifest, pixels of
an output. Each must give exit 1 naming that cause, with pixel statistics and a
difference image, and never touch the outputs.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voxspec import manifest
from voxspec.provenance import _pdf_literal_string, sniff_format

SPEC = """voxspec: 1
name: cube
volumes:
  cube:
    source: {path: cube.npy}
figure: {width: 6, height: 3, dpi: 50, formats: [png, pdf]}
panels:
  - {kind: slice, volume: cube, index: 5}
  - {kind: histogram, volume: cube, bins: 8}
"""
LINE = re.compile(
    r"cube: changed: (?P<causes>.+) \| pixels of cube\.png: (?P<share>[\d.]+)% of pixels "
    r"changed, largest difference (?P<largest>\d+)/255, SSIM (?P<ssim>[\d.]+) \| "
    r"difference image out/cube\.diff\.png\n"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A project folder with the figure built into out/ (copied by each test)."""
    from voxspec.build import build

    root = tmp_path_factory.mktemp("built")
    cube = np.zeros((12, 12, 12), np.float32)
    cube[3:9, 3:9, 3:9] = np.linspace(0, 1, 216).reshape(6, 6, 6)
    np.save(root / "cube.npy", cube)
    (root / "cube.yaml").write_text(SPEC)
    build([root / "cube.yaml"], root / "out", quiet=True)
    return root


@pytest.fixture
def project(built, tmp_path, monkeypatch):
    copy = tmp_path / "project"
    shutil.copytree(built, copy)
    monkeypatch.chdir(copy)
    return copy


def snapshot(project: Path) -> dict[str, bytes]:
    """Every output and manifest, to check that verify changed none of them."""
    return {p.name: p.read_bytes() for p in (project / "out").iterdir() if ".diff." not in p.name}


def verify_changed(run_cli, project: Path) -> re.Match:
    before = snapshot(project)
    code, out, err = run_cli("verify", "cube.yaml", "-o", "out")
    assert (code, err) == (1, ""), out + err
    assert snapshot(project) == before  # verify never writes outputs or manifests
    found = LINE.fullmatch(out)
    assert found, out
    assert (project / "out" / "cube.diff.png").is_file()
    return found


def red_pixels(path: Path) -> int:
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    return int(np.count_nonzero((rgb[..., 0] > 150) & (rgb[..., 1] < 120)))


# ------------------------------------------------------------------ mutations


def test_an_untouched_figure_reproduces(project, run_cli):
    (project / "out" / "cube.diff.png").write_bytes(b"stale")
    code, out, err = run_cli("verify", "cube.yaml", "-o", "out")
    assert (code, out, err) == (0, "cube: reproduces (cube.pdf, cube.png)\n", "")
    assert not (project / "out" / "cube.diff.png").exists()  # a stale difference is gone


def test_one_voxel_of_a_source(project, run_cli):
    old_sha = manifest.sha256_file(project / "cube.npy")
    cube = np.load(project / "cube.npy")
    cube[5, 5, 5] = 0.0  # inside slice z = 5
    np.save(project / "cube.npy", cube)
    new_sha = manifest.sha256_file(project / "cube.npy")
    found = verify_changed(run_cli, project)
    assert found["causes"] == f"source 'cube' changed (sha256 {old_sha[:12]} -> {new_sha[:12]})"
    assert 0 < float(found["share"]) < 5 and int(found["largest"]) > 0
    assert float(found["ssim"]) < 1
    assert red_pixels(project / "out" / "cube.diff.png") > 0


def test_one_spec_value(project, run_cli):
    (project / "cube.yaml").write_text(SPEC.replace("index: 5", "index: 6"))
    found = verify_changed(run_cli, project)
    assert found["causes"] == "spec changed: panels[0].index 5 -> 6"
    assert float(found["share"]) > 0
    assert red_pixels(project / "out" / "cube.diff.png") > 0


def test_a_comment_in_the_spec(project, run_cli):
    (project / "cube.yaml").write_text(SPEC + "# only a comment\n")
    found = verify_changed(run_cli, project)
    # the files carry the spec's hash, so their bytes change, but not one pixel
    assert found["causes"] == "spec file changed (comments or layout only: same resolved spec)"
    assert (found["share"], found["largest"], found["ssim"]) == ("0.00", "0", "1.0000")


def test_a_recorded_package_version(project, run_cli):
    path = project / "out" / "cube.manifest.json"
    record = json.loads(path.read_bytes())
    record["versions"]["numpy"] = "0.0.1"
    path.write_bytes(manifest.dumps(record))
    found = verify_changed(run_cli, project)
    now = manifest.versions()["numpy"]
    assert found["causes"] == (
        f"package versions changed: numpy 0.0.1 -> {now}; the outputs are still byte-identical"
    )
    assert float(found["ssim"]) == 1
    assert red_pixels(project / "out" / "cube.diff.png") == 0


def test_pixels_of_an_output(project, run_cli):
    png = project / "out" / "cube.png"
    with Image.open(png) as image:
        pixels = np.array(image)
        text = dict(image.text)
    pixels[10:14, 10:14, :3] = [0, 200, 0]  # a small green square
    buffer = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():  # same provenance: only the pixels differ
        info.add_text(key, value)
    Image.fromarray(pixels).save(buffer, format="png", pnginfo=info)
    png.write_bytes(buffer.getvalue())
    found = verify_changed(run_cli, project)
    assert found["causes"] == (
        "nothing but the pixels (same spec, sources and versions): "
        "cube.png was changed after it was built"
    )
    assert int(found["largest"]) > 100
    with Image.open(project / "out" / "cube.diff.png") as diff:
        assert diff.size == (pixels.shape[1], pixels.shape[0])
        changed = np.asarray(diff.convert("RGB"))[10:14, 10:14]
    assert (changed[..., 0] > 150).all() and (changed[..., 1] < 120).all()  # red where moved


def test_a_figure_without_manifest(project, run_cli):
    (project / "out" / "cube.manifest.json").unlink()
    code, out, err = run_cli("verify", "cube.yaml", "-o", "out")
    assert (code, out, err) == (1, "cube: no manifest out/cube.manifest.json: build it first\n", "")


def test_a_bad_spec_is_a_user_error(project, run_cli):
    (project / "bad.yaml").write_text("voxspec: 1\nvolumes: {}\npanels: []\n")
    code, out, err = run_cli("verify", "cube.yaml", "bad.yaml", "-o", "out")
    assert code == 2
    assert out == "cube: reproduces (cube.pdf, cube.png)\n"  # the good one is still verified
    assert err.startswith("bad.yaml:2:")


def test_a_missing_source_is_a_user_error(project, run_cli):
    (project / "cube.npy").unlink()
    code, out, err = run_cli("verify", "cube.yaml", "-o", "out")
    assert (code, out) == (2, "")
    assert err.startswith("cube.yaml:5:") and "cube.npy" in err and err.count("\n") == 1


# ------------------------------------------------------------------- inspect


def test_inspect_errors_are_one_line(project, run_cli):
    (project / "plain.png").write_bytes(_plain_png())
    (project / "notes.txt").write_text("hello")
    cases = {
        "missing.png": "missing.png: inspect: no such file\n",
        "notes.txt": "notes.txt: inspect: not a figure file voxspec writes (png, pdf, svg, tiff)\n",
        "plain.png": "plain.png: inspect: no voxspec provenance in this PNG file\n",
        "out": "out: inspect: is a folder, not a figure file\n",
    }
    for name, message in cases.items():
        assert run_cli("inspect", name) == (2, "", message)


def test_inspect_prints_pretty_json(project, run_cli):
    code, out, err = run_cli("inspect", "out/cube.pdf")
    assert (code, err) == (0, "")
    assert out == json.dumps(json.loads(out), indent=2, sort_keys=True) + "\n"
    assert json.loads(out)["spec"]["panels"][0]["index"] == 5


def test_pdf_literal_strings_are_unescaped():
    data = b"(a\\(b\\) \\\\ (c) \\101\\n\\\nd) tail"
    assert _pdf_literal_string(data, 1) == b"a(b) \\ (c) A\nd"


def test_formats_are_sniffed_from_content():
    assert sniff_format(b"\x89PNG\r\n\x1a\n...") == "png"
    assert sniff_format(b"%PDF-1.4") == "pdf"
    assert sniff_format(b"II*\x00") == "tiff"
    assert sniff_format(b'<?xml version="1.0"?>\n<svg ...') == "svg"
    assert sniff_format(b"voxspec: 1") is None


def _plain_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="png")
    return buffer.getvalue()
