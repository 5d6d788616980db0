"""slice and histogram panels, checked against matplotlib's own drawing of the same thing."""

from __future__ import annotations

import io

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from voxspec.model import Spec
from voxspec.output import figure_bytes
from voxspec.render.figure import fit_raster, render_figure, styled
from voxspec.volume import VolumeData

DATA = np.fromfunction(lambda x, y, z: np.sin(x / 3) + np.cos(y / 4) + z / 5, (12, 14, 8))
DATA = DATA.astype(np.float32)


def spec_of(panel: dict, **figure) -> Spec:
    return Spec.model_validate(
        {
            "voxspec": 1,
            "volumes": {"v": {"source": {"builtin": "head-phantom"}}},
            "figure": {"width": 10, "height": 8, "dpi": 80, **figure},
            "panels": [{"volume": "v", **panel}],
        }
    )


def pixels_of(spec: Spec) -> np.ndarray:
    with styled(spec):
        fig = render_figure(spec, {"v": VolumeData(DATA)})
        fit_raster(fig, spec)
        data = figure_bytes(fig, "png", spec.figure.dpi, {})
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def pixels_of_reference(spec: Spec, draw) -> np.ndarray:
    """The same figure made with plain matplotlib calls, as the tutorial makes it."""
    with styled(spec):
        fig = Figure(figsize=(10 / 2.54, 8 / 2.54), dpi=80, layout="constrained")
        fit_raster(fig, spec)
        draw(fig, fig.add_subplot())
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_slice_is_matplotlibs_imshow_with_colorbar():
    def tutorial(fig, ax):
        image = ax.imshow(DATA[:, :, 5], interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8)

    got = pixels_of(spec_of({"kind": "slice", "index": 5}))
    expected = pixels_of_reference(spec_of({"kind": "slice"}), tutorial)
    assert got.shape == expected.shape
    assert np.mean(np.any(got != expected, axis=-1)) < 0.001


def test_slice_axis_index_and_range_pick_the_pixels():
    spec = spec_of({"kind": "slice", "axis": "x", "index": -1, "range": [0, 1], "colorbar": False})

    def reference(fig, ax):
        ax.imshow(DATA[-1, :, :], vmin=0, vmax=1, interpolation="nearest")

    np.testing.assert_array_equal(pixels_of(spec), pixels_of_reference(spec, reference))


def test_default_slice_is_the_middle():
    spec = spec_of({"kind": "slice", "colorbar": False})

    def reference(fig, ax):
        ax.imshow(DATA[:, :, 4], interpolation="nearest")

    np.testing.assert_array_equal(pixels_of(spec), pixels_of_reference(spec, reference))


def tutorial_histogram(colormap: str, ylabel: str, *args, **kwargs):
    """The tutorial's show_histogram: bins coloured by the colormap at their centres."""

    def draw(fig, ax):
        _, bins, patches = ax.hist(DATA.reshape(-1), *args, **kwargs)
        centres = 0.5 * (bins[:-1] + bins[1:])
        shades = (centres - centres.min()) / (centres.max() - centres.min())
        for shade, patch in zip(shades, patches):
            patch.set_facecolor(mpl.colormaps[colormap](shade))
        ax.set_xlabel("value")
        ax.set_ylabel(ylabel)

    return draw


def test_histogram_bins_are_coloured_by_the_colormap_at_their_centres():
    spec = spec_of({"kind": "histogram", "colormap": "magma"})
    tutorial = tutorial_histogram("magma", "density", 50, density=True)
    np.testing.assert_array_equal(pixels_of(spec), pixels_of_reference(spec, tutorial))


def test_histogram_bins_range_log_and_counts():
    spec = spec_of({"kind": "histogram", "bins": 7, "range": [0, 2], "log": True, "density": False})
    reference = tutorial_histogram("viridis", "count", 7, range=(0, 2), log=True)
    np.testing.assert_array_equal(pixels_of(spec), pixels_of_reference(spec, reference))


def test_slice_index_outside_the_volume_is_located(write_spec, run_cli, in_tmp):
    spec = write_spec(
        "voxspec: 1\nvolumes: {h: {source: {builtin: head-phantom, shape: [8, 8, 8]}}}\n"
        "panels:\n  - {kind: slice, volume: h, index: 8}\n"
    )
    code, _, err = run_cli("build", spec, "-o", in_tmp / "out")
    assert code == 2
    assert err.strip().endswith("panels[0].index: index 8 is outside the z axis (size 8)")
    assert ":4:" in err
    assert not (in_tmp / "out" / "fig.png").exists()
