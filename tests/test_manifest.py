"""Manifests: what they record, and the incremental builds they decide."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voxspec import manifest
from voxspec.provenance import read_provenance

SPEC = """voxspec: 1
name: fig
volumes:
  head:
    source: {builtin: head-phantom, shape: [24, 24, 24]}
  cube:
    source: {path: cube.npy}
figure: {width: 5, height: 2.5, dpi: 50, formats: [png, svg]}
panels:
  - {kind: slice, volume: head}
  - {kind: histogram, volume: cube, bins: 6}
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A spec with a builtin and a .npy source, in the current (temporary) folder."""
    monkeypatch.chdir(tmp_path)
    cube = np.arange(8**3, dtype=np.float32).reshape(8, 8, 8)
    np.save(tmp_path / "cube.npy", cube)
    (tmp_path / "fig.yaml").write_text(SPEC)
    return tmp_path


def build(run_cli, *extra):
    code, out, err = run_cli("build", "fig.yaml", "-o", "out", *extra)
    assert code == 0, err
    return err


def read_manifest(project: Path) -> dict:
    return json.loads((project / "out" / "fig.manifest.json").read_bytes())


# ------------------------------------------------------------------ contents


def test_manifest_records_spec_sources_versions_and_outputs(project, run_cli):
    build(run_cli)
    text = (project / "out" / "fig.manifest.json").read_text()
    record = json.loads(text)
    assert text == json.dumps(record, sort_keys=True, indent=2) + "\n"  # sorted, stable
    assert str(project) not in text  # no absolute paths

    assert record["spec"]["file"] == "fig.yaml"
    assert record["spec"]["sha256"] == sha256(project / "fig.yaml")
    resolved = record["spec"]["resolved"]
    assert resolved["figure"]["unit"] == "cm"  # defaults filled in
    assert resolved["panels"][0]["colormap"] == "viridis"

    assert record["sources"]["cube"] == {
        "kind": "path",
        "sha256": sha256(project / "cube.npy"),  # the bytes actually read
        "hash_of": "the file's bytes",
    }
    head = record["sources"]["head"]
    assert head["kind"] == "builtin" and head["sha256"] is None
    assert "made from the spec alone" in head["hash_of"]

    versions = record["versions"]
    for package in ("voxspec", "python", *manifest.PACKAGES):
        assert versions[package] != "not installed", package
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))

    assert record["outputs"] == {
        "fig.png": sha256(project / "out" / "fig.png"),
        "fig.svg": sha256(project / "out" / "fig.svg"),
    }
    assert record["git"] is None  # a temporary folder is no git work tree


def test_manifest_is_the_same_for_the_same_inputs(project, run_cli):
    build(run_cli)
    first = (project / "out" / "fig.manifest.json").read_bytes()
    build(run_cli, "--force")
    assert (project / "out" / "fig.manifest.json").read_bytes() == first


def test_files_carry_what_the_manifest_says(project, run_cli):
    build(run_cli)
    record = read_manifest(project)
    for name in ("fig.png", "fig.svg"):
        carried = read_provenance(project / "out" / name)
        assert carried["spec_sha256"] == record["spec"]["sha256"]
        assert carried["spec"] == record["spec"]["resolved"]
        assert carried["sources"] == record["sources"]
        assert "git" not in carried and "versions" not in carried


def test_git_state_of_the_spec(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    spec = tmp_path / "fig.yaml"
    spec.write_text(SPEC)

    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    assert manifest.git_state(spec) == {"commit": None, "dirty": True, "path": "fig.yaml"}
    git("add", "fig.yaml")
    git("commit", "-q", "-m", "spec")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert manifest.git_state(spec) == {"commit": head, "dirty": False, "path": "fig.yaml"}
    spec.write_text(SPEC + "# edited\n")
    assert manifest.git_state(spec) == {"commit": head, "dirty": True, "path": "fig.yaml"}


# --------------------------------------------------------- incremental builds


def test_a_second_build_skips_and_says_so(project, run_cli):
    build(run_cli)
    png = project / "out" / "fig.png"
    stamp = png.stat().st_mtime_ns, png.stat().st_ino
    assert build(run_cli) == "voxspec: fig: up to date\n"
    assert (png.stat().st_mtime_ns, png.stat().st_ino) == stamp  # not written again
    assert "fig: up to date" not in build(run_cli, "--force")
    assert png.stat().st_ino != stamp[1]  # --force wrote a new file


@pytest.mark.parametrize(
    "change",
    ["spec value", "spec comment", "source voxel", "output deleted", "output edited", "version"],
)
def test_a_change_rebuilds(project, run_cli, change):
    build(run_cli)
    out = project / "out"
    if change == "spec value":
        (project / "fig.yaml").write_text(SPEC.replace("bins: 6", "bins: 7"))
    elif change == "spec comment":
        (project / "fig.yaml").write_text(SPEC + "# a comment\n")
    elif change == "source voxel":
        cube = np.load(project / "cube.npy")
        cube[4, 4, 4] += 1
        np.save(project / "cube.npy", cube)
    elif change == "output deleted":
        (out / "fig.svg").unlink()
    elif change == "output edited":
        with Image.open(out / "fig.png") as image:
            image.convert("RGB").save(out / "fig.png")
    elif change == "version":
        record = read_manifest(project)
        record["versions"]["numpy"] = "0.0.1"
        (out / "fig.manifest.json").write_bytes(manifest.dumps(record))
    assert "up to date" not in build(run_cli)
    assert build(run_cli) == "voxspec: fig: up to date\n"
    record = read_manifest(project)
    assert record["spec"]["sha256"] == sha256(project / "fig.yaml")
    assert record["sources"]["cube"]["sha256"] == sha256(project / "cube.npy")
    assert record["versions"] == manifest.versions()
    assert record["outputs"] == {f"fig.{f}": sha256(out / f"fig.{f}") for f in ("png", "svg")}


def test_another_format_keeps_the_earlier_ones_in_the_manifest(project, run_cli):
    build(run_cli)
    build(run_cli, "--format", "tiff")
    assert sorted(read_manifest(project)["outputs"]) == ["fig.png", "fig.svg", "fig.tiff"]
    assert build(run_cli, "--format", "png", "tiff") == "voxspec: fig: up to date\n"


def test_a_no_op_rebuild_imports_neither_matplotlib_nor_pydantic(project, run_cli):
    build(run_cli)
    probe = (
        "import sys\n"
        "from voxspec.cli import main\n"
        "code = main(['build', 'fig.yaml', '-o', 'out', '-q'])\n"
        "heavy = sorted(m for m in ('matplotlib', 'pydantic', 'numpy') if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.stdout == "0 []\n", done.stderr


def test_a_new_spec_cannot_take_the_name_of_an_up_to_date_one(project, run_cli):
    build(run_cli)
    before = (project / "out" / "fig.png").read_bytes()
    (project / "other.yaml").write_text(SPEC.replace("bins: 6", "bins: 9"))
    code, _, err = run_cli("build", "fig.yaml", "other.yaml", "-o", "out")
    assert code == 2
    assert "other.yaml:2:7: name: two specs are named 'fig'; the other is fig.yaml" in err
    assert (project / "out" / "fig.png").read_bytes() == before


def test_the_check_before_validation_vouches_only_for_the_same_file(project, run_cli):
    build(run_cli)
    out = project / "out"
    assert manifest.unchanged_specs([Path("fig.yaml")], out) == {Path("fig.yaml"): "fig"}
    shutil.copy(project / "fig.yaml", project / "renamed.yaml")  # same bytes, other file
    assert manifest.unchanged_specs([Path("renamed.yaml")], out) == {}
    assert manifest.unchanged_specs([Path("fig.yaml")], out, ["tiff"]) == {}  # not built


def test_a_spec_asking_for_print_checks_is_never_skipped_unvalidated(project, run_cli):
    (project / "fig.yaml").write_text(SPEC.replace("formats:", "preflight: true, formats:"))
    run_cli("build", "fig.yaml", "-o", "out")
    assert (project / "out" / "fig.manifest.json").is_file()
    assert manifest.unchanged_specs([Path("fig.yaml")], project / "out") == {}
