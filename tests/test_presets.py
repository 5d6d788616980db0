"""Journal presets: the printed width (PNG pixels, PDF points) and the font sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rendering import image_axes, make_spec, render, volume

from voxspec.model import PRESETS

VOLUMES = {"head": volume(np.random.default_rng(0).random((6, 6, 6)))}
PANEL = {"kind": "slice", "volume": "head", "title": "a slice"}


def png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")  # the IHDR chunk's width


def pdf_width_pt(pdf: bytes) -> float:
    return float(re.search(rb"/MediaBox \[\s*0 0 ([\d.]+)", pdf).group(1))


@pytest.mark.parametrize("preset", PRESETS)
def test_a_preset_sets_the_width_and_the_font_size(preset):
    width_cm, font_pt = PRESETS[preset]
    spec = make_spec([PANEL], {"preset": preset, "height": 3, "dpi": 100})
    fig, files = render(spec, VOLUMES, formats=("png", "pdf"))
    assert png_width(files["png"]) == round(width_cm / 2.54 * 100)
    assert pdf_width_pt(files["pdf"]) == pytest.approx(width_cm / 2.54 * 72, abs=0.01)
    (ax,) = image_axes(fig)
    assert ax.title.get_fontsize() == font_pt
    assert ax.xaxis.get_ticklabels()[0].get_fontsize() == pytest.approx(font_pt * 0.85)


def test_explicit_width_and_font_size_win_over_the_preset():
    figure = {"preset": "double-column", "width": 40, "unit": "mm", "font_size": 6}
    spec = make_spec([PANEL], {**figure, "height": 30, "dpi": 100})
    fig, files = render(spec, VOLUMES)
    assert png_width(files["png"]) == round(4.0 / 2.54 * 100)
    assert image_axes(fig)[0].title.get_fontsize() == 6


def test_without_a_preset_the_defaults_hold():
    spec = make_spec([PANEL], {"height": 3, "dpi": 100})
    fig, files = render(spec, VOLUMES)
    assert png_width(files["png"]) == round(12 / 2.54 * 100)
    assert image_axes(fig)[0].title.get_fontsize() == 8
