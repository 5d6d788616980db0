"""Preflight: the print problems a journal's production desk would send a figure back for.

``check`` looks at a rendered figure and its file bytes and returns each problem as a
warning located in the spec, at the key that fixes it. Call it after the figure was
saved (saving draws it, which lays out and formats every text).
"""

from __future__ import annotations

import re
from dataclasses import replace

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, FigureImage
from matplotlib.text import Text

from voxspec.errors import Problem, UserError
from voxspec.layout import figure_size_cm
from voxspec.model import PRESETS
from voxspec.spec import SpecDocument

MIN_TEXT_PT = 5.0
MIN_DPI = 300
RASTER_FORMATS = ("png", "tiff")

# Colormaps whose lightness is not monotonic or uniform: they draw edges that are not in
# the data, hide ones that are, and fail in greyscale and for colour-blind readers.
NOT_UNIFORM = frozenset(
    {
        "jet",
        "rainbow",
        "gist_rainbow",
        "hsv",
        "nipy_spectral",
        "gist_ncar",
        "turbo",
        "prism",
        "flag",
        "gist_stern",
        "brg",
        "cmrmap",
        "terrain",
        "ocean",
        "gist_earth",
        "gnuplot",
        "gnuplot2",
    }
)


def check(doc: SpecDocument, fig: Figure, files: dict[str, bytes]) -> list[Problem]:
    """Every print problem of ``fig`` (built from ``doc``; ``files`` maps each format to
    its bytes), as warnings located in the spec file."""
    spec = doc.spec
    scale = print_scale(spec)
    problems = [
        *small_text(fig, scale),
        *low_resolution(fig, spec.figure.dpi / scale, files),
        *type3_fonts(files),
        *too_wide(spec),
        *colormaps(spec),
    ]
    return UserError(problems).located(doc.locate).problems if problems else []


def as_error(warning: Problem) -> Problem:
    """``warning`` as an error (``--strict``): the same located line, without the prefix."""
    return replace(warning, message=warning.message.removeprefix("warning: "))


def print_scale(spec) -> float:
    """How much the figure shrinks on the page: a figure wider than its preset's column
    is scaled down to fit it; otherwise it prints at its own size."""
    if spec.figure.preset is None:
        return 1.0
    width, _ = figure_size_cm(spec.figure, len(spec.panels))
    return min(1.0, PRESETS[spec.figure.preset][0] / width)


def visible_artists(artist: Artist):
    """Every artist under ``artist`` that is drawn: a hidden artist hides its children,
    and an Axes turned off hides its axes (whose tick labels stay "visible")."""
    hidden = hidden_axis_parts(artist) if isinstance(artist, Axes) else ()
    for child in artist.get_children():
        if child.get_visible() and child not in hidden:
            yield child
            yield from visible_artists(child)


def hidden_axis_parts(ax: Axes) -> tuple:
    # 3D axes turn their axes off with their own flag (matplotlib has no public getter)
    if ax.axison and getattr(ax, "_axis3don", True):
        return ()
    return tuple(getattr(ax, name) for name in ("xaxis", "yaxis", "zaxis") if hasattr(ax, name))


def small_text(fig: Figure, scale: float) -> list[Problem]:
    texts = [
        (t.get_fontsize() * scale, t.get_text().strip())
        for t in visible_artists(fig)
        if isinstance(t, Text) and t.get_text().strip()
    ]
    if not texts:
        return []
    size, text = min(texts)
    if size >= MIN_TEXT_PT - 1e-9:
        return []
    shown = text if len(text) <= 30 else text[:27] + "..."
    return [
        Problem(
            f"warning: text is below {MIN_TEXT_PT:g} pt at print size (smallest: {shown!r}, "
            f"{size:.1f} pt); raise figure.font_size",
            ("figure", "font_size"),
        )
    ]


def low_resolution(fig: Figure, dpi: float, files: dict[str, bytes]) -> list[Problem]:
    """Raster outputs, and vector outputs holding images, below ``MIN_DPI`` on the page."""
    if dpi >= MIN_DPI:
        return []
    has_images = any(
        isinstance(a, (AxesImage, FigureImage)) or a.get_rasterized() for a in visible_artists(fig)
    )
    affected = [f for f in files if f in RASTER_FORMATS or has_images]
    if not affected:
        return []
    return [
        Problem(
            f"warning: raster content ({', '.join(affected)}) is {dpi:.0f} dpi at print size, "
            f"below the {MIN_DPI} dpi print needs; set figure.dpi: {MIN_DPI}",
            ("figure", "dpi"),
        )
    ]


def type3_fonts(files: dict[str, bytes]) -> list[Problem]:
    pdf = files.get("pdf")
    if pdf is None or not re.search(rb"/Subtype\s*/Type3", pdf):
        return []
    return [
        Problem(
            "warning: the PDF embeds Type 3 fonts, which many journals refuse",
            ("figure", "formats"),
        )
    ]


def too_wide(spec) -> list[Problem]:
    preset = spec.figure.preset
    if preset is None:
        return []
    width, _ = figure_size_cm(spec.figure, len(spec.panels))
    column = PRESETS[preset][0]
    if width <= column + 1e-6:
        return []
    return [
        Problem(
            f"warning: the figure is {width:g} cm wide, wider than the {preset} width "
            f"({column:g} cm): the page will shrink it to {column / width:.0%}",
            ("figure", "width"),
        )
    ]


def colormaps(spec) -> list[Problem]:
    used = []
    for i, panel in enumerate(spec.panels):
        if getattr(panel, "color", None) is None:  # a fixed colour replaces the colormap
            used.append((("panels", i, "colormap"), panel.colormap))
        overlay = getattr(panel, "overlay", None)
        if overlay is not None:
            used.append((("panels", i, "overlay", "colormap"), overlay.colormap))
    return [
        Problem(
            f"warning: colormap {name!r} is not perceptually uniform: it shows edges that "
            "are not in the data and fails in greyscale; use viridis, cividis, magma or gray",
            where,
        )
        for where, name in used
        if name.removesuffix("_r").lower() in NOT_UNIFORM
    ]
