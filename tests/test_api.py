"""The flat Python API: the pipeline without the command line."""

from __future__ import annotations

import pytest

import voxspec


def test_load_spec_and_build_from_python(write_spec, tmp_path):
    spec = write_spec(
        "voxspec: 1\nname: api\n"
        "volumes: {h: {source: {builtin: head-phantom, shape: [16, 16, 16]}}}\n"
        "figure: {width: 4, dpi: 60}\npanels: [{kind: slice, volume: h}]\n"
    )
    doc = voxspec.load_spec(spec)
    assert doc.name == "api" and doc.spec.panels[0].axis == "z"
    results = voxspec.build([spec], out=tmp_path / "out", quiet=True)
    assert [r.name for r in results] == ["api"]
    assert (tmp_path / "out" / "api.png").read_bytes().startswith(b"\x89PNG")
    assert voxspec.read_provenance(tmp_path / "out" / "api.png")["name"] == "api"


def test_errors_are_one_family(write_spec):
    spec = write_spec("voxspec: 1\nvolumes: {}\npanels: []\n")
    with pytest.raises(voxspec.VoxspecError) as caught:
        voxspec.load_spec(spec)
    assert isinstance(caught.value, voxspec.UserError)
    assert all(p.line for p in caught.value.problems)


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        voxspec.no_such_name  # noqa: B018


def test_build_and_verify_stay_functions_after_their_modules_are_imported():
    import voxspec.build  # noqa: F401
    import voxspec.verify  # noqa: F401

    assert callable(voxspec.build) and callable(voxspec.verify)
