"""`voxspec build`, `validate` and `schema` end to end: files, sizes, failures, options."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml
from conftest import ROOT
from PIL import Image

from voxspec.steps import STEPS

SMALL = """voxspec: 1
name: {name}
volumes:
  head:
    source: {{builtin: head-phantom, shape: [24, 28, 20]}}
    steps: [normalize]
figure: {{width: {width}, height: 4, dpi: 100, formats: [png, pdf, svg, tiff]}}
panels:
  - {{kind: slice, volume: head}}
  - {{kind: histogram, volume: head}}
"""


def small(name="small", width=8.5):
    return SMALL.format(name=name, width=width)


def test_build_writes_every_format_and_a_manifest(write_spec, run_cli, in_tmp):
    spec = write_spec(small())
    code, _, err = run_cli("build", spec, "-o", "out")
    assert code == 0, err
    names = sorted(p.name for p in (in_tmp / "out").iterdir())
    assert names == [
        "small.manifest.json",
        "small.pdf",
        "small.png",
        "small.svg",
        "small.tiff",
    ]
    assert re.fullmatch(r"voxspec: small: \d+\.\d s -> out/small\.png, .*\n", err)
    assert Image.open(in_tmp / "out" / "small.png").size == (335, 157)  # 8.5 x 4 cm at 100 dpi


def test_physical_size_is_exact(write_spec, run_cli, in_tmp):
    spec = write_spec(small().replace("dpi: 100", "dpi: 300"))
    assert run_cli("build", spec, "-o", "out", "--format", "png", "pdf")[0] == 0
    assert Image.open(in_tmp / "out" / "small.png").size == (1004, 472)
    pdf = (in_tmp / "out" / "small.pdf").read_bytes()
    box = re.search(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+) *\]", pdf)
    width_cm, height_cm = (float(v) / 72 * 2.54 for v in box.groups())
    assert width_cm == pytest.approx(8.5, abs=1e-3) and height_cm == pytest.approx(4, abs=1e-3)


def test_units_and_default_height(write_spec, run_cli, in_tmp):
    spec = write_spec(
        "voxspec: 1\nvolumes: {h: {source: {builtin: head-phantom, shape: [9, 9, 9]}}}\n"
        "figure: {width: 40, unit: mm, dpi: 127, grid: [2, 1]}\n"
        "panels: [{kind: slice, volume: h}, {kind: histogram, volume: h}]\n"
    )
    assert run_cli("build", spec, "-o", "out")[0] == 0
    # 40 mm at 127 dpi = 200 px; two rows of square cells: 400 px high
    assert Image.open(in_tmp / "out" / "fig.png").size == (200, 400)


def test_failed_build_keeps_the_previous_output(write_spec, run_cli, in_tmp):
    spec = write_spec(small())
    assert run_cli("build", spec, "-o", "out")[0] == 0
    before = {p.name: p.read_bytes() for p in (in_tmp / "out").iterdir()}
    spec.write_text(small().replace("steps: [normalize]", "steps: [{threshold: 1.0e9}]"))
    code, _, err = run_cli("build", spec, "-o", "out")
    assert code == 2
    assert "fig.yaml:6:" in err and "all zeros" in err
    after = {p.name: p.read_bytes() for p in (in_tmp / "out").iterdir()}
    assert after == before  # nothing changed, nothing half-written, no temporary file left


def test_a_bad_spec_does_not_stop_the_others(run_cli, in_tmp):
    (in_tmp / "specs").mkdir()
    (in_tmp / "specs" / "good.yaml").write_text(small("good"))
    (in_tmp / "specs" / "bad.yaml").write_text(small("bad").replace("kind: slice", "kind: sliced"))
    code, _, err = run_cli("build", "specs", "-o", "out")
    assert code == 2
    assert "specs/bad.yaml:9:12: panels[0].kind:" in err and "did you mean 'slice'" in err
    assert (in_tmp / "out" / "good.png").exists() and not (in_tmp / "out" / "bad.png").exists()


def test_format_override_and_quiet(write_spec, run_cli, in_tmp):
    spec = write_spec(small())
    code, _, err = run_cli("build", spec, "-o", "out", "--format", "svg", "-q")
    assert code == 0 and err == ""
    assert sorted(p.suffix for p in (in_tmp / "out").iterdir()) == [".json", ".svg"]


def test_parallel_build_gives_the_same_bytes(run_cli, in_tmp):
    (in_tmp / "specs").mkdir()
    for name in ("one", "two", "three"):
        (in_tmp / "specs" / f"{name}.yaml").write_text(small(name))
    assert run_cli("build", "specs", "-o", "serial", "-q")[0] == 0
    assert run_cli("build", "specs", "-o", "parallel", "-j", "2", "-q")[0] == 0
    for file in (in_tmp / "serial").iterdir():
        assert file.read_bytes() == (in_tmp / "parallel" / file.name).read_bytes(), file.name


def test_duplicate_figure_names_are_an_error(run_cli, in_tmp):
    (in_tmp / "specs").mkdir()
    (in_tmp / "specs" / "a.yaml").write_text(small("same"))
    (in_tmp / "specs" / "b.yaml").write_text(small("same"))
    code, _, err = run_cli("build", "specs", "-o", "out")
    assert code == 2 and "two specs are named 'same'" in err


def test_bad_arguments_exit_2_without_traceback(run_cli, in_tmp):
    code, _, err = run_cli("build", "-j", "zero")
    assert code == 2 and "expected a whole number" in err and "Traceback" not in err
    code, _, err = run_cli("build", "--format", "bmp")
    assert code == 2 and "invalid choice" in err


def test_default_specs_come_from_figspecs_not_its_subfolders(run_cli, in_tmp):
    (in_tmp / "figspecs" / "online").mkdir(parents=True)
    (in_tmp / "figspecs" / "top.yaml").write_text(small("top"))
    (in_tmp / "figspecs" / "online" / "deep.yaml").write_text(small("deep").replace("{", "{{"))
    code, _, err = run_cli("build", "-q")
    assert code == 0, err
    assert (in_tmp / "outputs" / "top.png").exists()
    assert not (in_tmp / "outputs" / "deep.png").exists()


def test_schema_validates_every_example_spec(run_cli, in_tmp):
    code, out, _ = run_cli("schema")
    assert code == 0
    schema = json.loads(out)
    examples = sorted((ROOT / "figspecs").rglob("*.yaml"))
    assert examples
    for path in examples:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"voxspec": 1, "volumes": {}, "panels": [{"kind": "nope"}]}, schema)
    assert run_cli("schema", "-o", "schema.json")[0] == 0
    assert json.loads((in_tmp / "schema.json").read_text()) == schema


def test_python_dash_m_works_like_the_command(write_spec, in_tmp):
    spec = write_spec(small())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "voxspec", "validate", str(spec)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stderr


def test_a_bug_is_one_line_and_exit_3(write_spec, run_cli, in_tmp, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    # stands for a bug anywhere below the command line
    monkeypatch.setitem(STEPS, "normalize", broken)
    code, _, err = run_cli("build", write_spec(small()), "-o", "out")
    assert code == 3
    assert err.strip().endswith("ZeroDivisionError: division by zero")
    assert "internal error" in err and "Traceback" not in err
