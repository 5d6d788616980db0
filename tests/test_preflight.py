"""Preflight: each print problem is found, located at the key that fixes it, and
reported as a warning; a clean figure has none."""

from __future__ import annotations

import io

import matplotlib as mpl
import numpy as np
import pytest
from rendering import image_axes, make_spec, render, volume

from voxspec import preflight
from voxspec.build import build
from voxspec.errors import UserError
from voxspec.render.figure import styled
from voxspec.spec import load_spec

VOLUMES = {
    "head": volume(np.random.default_rng(0).random((6, 6, 6))),
    "stat": volume(np.random.default_rng(1).random((6, 6, 6))),
}


def spec_text(figure: str = "", panels: str | None = None) -> str:
    panels = panels or "  - {kind: slice, volume: head}\n"
    return (
        "voxspec: 1\n"
        "volumes:\n"
        "  head: {source: {builtin: head-phantom}}\n"
        "  stat: {source: {builtin: head-phantom}}\n"
        "figure:\n"
        "  height: 4\n"
        f"{figure}"
        "panels:\n"
        f"{panels}"
    )


def check(write_spec, figure: str = "", panels: str | None = None, formats=("png",)):
    doc = load_spec(write_spec(spec_text(figure, panels)))
    fig, files = render(doc.spec, VOLUMES, formats)
    return preflight.check(doc, fig, files)


def test_a_print_ready_figure_passes(write_spec):
    figure = "  preset: single-column\n  dpi: 300\n"
    assert check(write_spec, figure, formats=("png", "pdf")) == []


def test_small_text_is_located_at_the_font_size(write_spec):
    (problem,) = check(write_spec, "  font_size: 4\n  dpi: 300\n")
    assert problem.where == ("figure", "font_size")
    assert (problem.line, problem.column) == (7, 14)
    assert problem.message.startswith("warning: text is below 5 pt")
    assert "3.4 pt" in problem.message  # tick labels: 0.85 of the font size
    assert problem.format().startswith(f"{problem.file}:7:14: figure.font_size: warning: ")


def test_text_hidden_with_its_axis_is_not_checked():
    spec = make_spec([{"kind": "montage", "volume": "head", "count": 2, "colorbar": False}])
    fig, _ = render(spec, VOLUMES)
    tile = image_axes(fig)[0]
    shown = set(preflight.visible_artists(fig))
    assert tile.texts[0] in shown  # the slice label
    assert not set(tile.xaxis.get_ticklabels()) & shown


def test_a_figure_wider_than_its_preset_prints_smaller(write_spec):
    problems = check(write_spec, "  preset: single-column\n  width: 17\n  dpi: 300\n")
    where = {p.where: p.message for p in problems}
    assert "wider than the single-column width (8.5 cm)" in where[("figure", "width")]
    # 7 pt text shrunk to half the size on the page
    assert "3.0 pt" in where[("figure", "font_size")]


def test_low_resolution_raster_content(write_spec):
    (problem,) = check(write_spec, "  dpi: 150\n  font_size: 8\n")
    assert problem.where == ("figure", "dpi")
    assert "(png) is 150 dpi" in problem.message
    # a vector file holding an image has raster content too; one without has none
    (problem,) = check(write_spec, "  dpi: 150\n", formats=("svg",))
    assert "(svg)" in problem.message
    histogram = "  - {kind: histogram, volume: head}\n"
    assert check(write_spec, "  dpi: 150\n", histogram, formats=("svg",)) == []


def test_type3_fonts_in_the_pdf_are_found(write_spec):
    doc = load_spec(write_spec(spec_text("  dpi: 300\n")))
    fig, files = render(doc.spec, VOLUMES, formats=("pdf",))
    assert preflight.type3_fonts(files) == []  # voxspec's own style embeds TrueType
    with styled(doc.spec), mpl.rc_context({"pdf.fonttype": 3}):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
    (problem,) = preflight.check(doc, fig, {"pdf": buffer.getvalue()})
    assert problem.where == ("figure", "formats")
    assert "Type 3" in problem.message


def test_rainbow_colormaps_are_located_on_panels_and_overlays(write_spec):
    panels = (
        "  - {kind: slice, volume: head, colormap: jet,\n"
        "     overlay: {volume: stat, colormap: nipy_spectral_r}}\n"
        "  - {kind: histogram, volume: head, colormap: gray}\n"
        "  - {kind: voxels, volume: head, colormap: hsv, color: red}\n"
    )
    doc = load_spec(write_spec(spec_text("", panels)))
    problems = preflight.colormaps(doc.spec)
    assert [p.where for p in problems] == [
        ("panels", 0, "colormap"),
        ("panels", 0, "overlay", "colormap"),
    ]
    assert all(p.message.startswith("warning: colormap") for p in problems)


# ------------------------------------------------------------- wired into build

WARNED = """voxspec: 1
volumes:
  head: {source: {builtin: head-phantom, shape: [8, 8, 8]}}
figure: {dpi: 60, height: 3}
panels:
  - {kind: slice, volume: head, colormap: jet}
"""


def test_build_prints_located_warnings_and_writes_the_figure(write_spec, tmp_path, capsys):
    spec = write_spec(WARNED)
    (result,) = build([spec], tmp_path / "out", preflight=True, quiet=True)
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in err] == ["figure.dpi", "panels[0].colormap"]
    assert all(": warning: " in line for line in err)
    assert [w.where for w in result.warnings] == [("figure", "dpi"), ("panels", 0, "colormap")]
    assert (tmp_path / "out" / "fig.png").exists()


def test_strict_makes_them_errors_and_writes_nothing(write_spec, tmp_path):
    spec = write_spec(WARNED)
    with pytest.raises(UserError) as caught:
        build([spec], tmp_path / "out", strict=True, quiet=True)
    assert [p.where for p in caught.value.problems] == [
        ("figure", "dpi"),
        ("panels", 0, "colormap"),
    ]
    assert not caught.value.problems[0].message.startswith("warning")
    assert not (tmp_path / "out").exists()


def test_the_spec_can_ask_for_the_check_itself(write_spec, tmp_path, capsys):
    spec = write_spec(WARNED.replace("height: 3}", "height: 3, preflight: true}"))
    (result,) = build([spec], tmp_path / "out", quiet=True)
    assert len(result.warnings) == 2
    assert len(capsys.readouterr().err.splitlines()) == 2
