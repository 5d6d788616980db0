"""Bad specs give the exact located messages kept in tests/golden/bad/*.expected."""

from __future__ import annotations

import pytest
from conftest import ROOT

BAD = sorted((ROOT / "tests" / "golden" / "bad").glob("*.yaml"))


@pytest.mark.parametrize("spec", BAD, ids=[p.stem for p in BAD])
def test_golden_messages(spec, run_cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli("validate", spec.relative_to(ROOT))
    assert code == 2
    assert "Traceback" not in err
    assert err == spec.with_suffix(".expected").read_text()


def test_every_line_is_located(run_cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    for spec in BAD:
        _, _, err = run_cli("validate", spec.relative_to(ROOT))
        for line in err.splitlines():
            file, line_no, column, where, message = line.split(":", 4)
            assert file == str(spec.relative_to(ROOT))
            assert int(line_no) >= 1 and int(column) >= 1
            assert where.strip() and message.strip()


def test_three_mistakes_give_three_lines(run_cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, _, err = run_cli("validate", "tests/golden/bad/three-mistakes.yaml")
    assert code == 2
    assert len(err.splitlines()) == 3


def test_unknown_key_suggests_nearest(write_spec, run_cli):
    spec = write_spec(
        "voxspec: 1\nvolumes: {h: {source: {builtin: head-phantom}}}\n"
        "panels:\n  - {kind: histogram, volume: h, binz: 10}\n"
    )
    code, _, err = run_cli("validate", spec)
    assert code == 2
    assert "unknown key 'binz'; did you mean 'bins'?" in err
    assert ":4:" in err


def test_alias_bomb_is_refused(write_spec, run_cli):
    lines = ["voxspec: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    code, _, err = run_cli("validate", write_spec("\n".join(lines) + "\n"))
    assert code == 2
    assert "more than" in err and "nodes" in err


def test_missing_spec_file(run_cli, in_tmp):
    code, _, err = run_cli("validate", "nope.yaml")
    assert code == 2
    assert err.strip() == "nope.yaml: arguments: no such spec file or folder"


def test_not_utf8(write_spec, run_cli, tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"voxspec: 1\ntitle: caf\xe9\n")
    code, _, err = run_cli("validate", path)
    assert code == 2
    assert "not UTF-8" in err


def test_valid_spec_passes(write_spec, run_cli):
    spec = write_spec(
        "voxspec: 1\nvolumes: {h: {source: {builtin: head-phantom}}}\n"
        "panels: [{kind: slice, volume: h}]\n"
    )
    code, _, err = run_cli("validate", spec)
    assert code == 0, err
