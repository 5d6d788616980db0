"""Benchmark: the tutorial's ``ax.voxels`` figure against voxspec's ``voxels`` renderer.

Both draw the same head-like volume (``voxspec.phantom.head_phantom``, or a synthetic
ellipsoid head when that module is missing), transformed as the tutorial transforms its
scan and shown as its full view (y flipped, limits 2 * grid size, azimuth 320), in a
30 x 30 cm figure. Time is the whole figure: drawing plus ``savefig`` to PNG (voxspec:
best of 3 runs). Memory is the tracemalloc peak of a second, separate run (tracemalloc
slows Python-heavy code, so it never runs during a timed run): Python objects and numpy
arrays; matplotlib's Agg canvas, allocated in C++, is not in it (4 bytes a pixel: 5.6 MB
at 100 dpi, 50 MB at 300 dpi, the same for both methods).

    python benchmarks/bench_voxels.py                     # 16, 24, 32, 50; baseline to 32
    python benchmarks/bench_voxels.py --baseline-max 50   # ax.voxels at 50^3 too (minutes)
    python benchmarks/bench_voxels.py --scaling           # voxspec alone at 64, 80, 100
    python benchmarks/bench_voxels.py --profile 50        # cProfile of voxspec at 50^3
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import time
import tracemalloc
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voxspec.model import VoxelsPanel  # noqa: E402
from voxspec.render import voxels  # noqa: E402
from voxspec.volume import VolumeData  # noqa: E402

FIGURE_INCHES = 30 / 2.54
TUTORIAL_DPI = 100  # plt.figure()'s default, what the tutorial ran at
PRINT_DPI = 300
REPEAT = 3  # voxspec runs take seconds: best of 3; ax.voxels runs take minutes: once


# --------------------------------------------------------------------------- the data


def head_volume(n: int) -> np.ndarray:
    """An n^3 head, transformed like the tutorial's scan, y flipped as its full view."""
    try:
        from voxspec.phantom import head_phantom

        raw = head_phantom((n, n, n)).astype(np.float64)
    except ImportError:
        raw = _ellipsoid_head(n)
    return tutorial_transform(raw)[:, ::-1, :].astype(np.float32)


def _ellipsoid_head(n: int) -> np.ndarray:
    """Stand-in head: a bright skull shell around a dimmer brain, eye holes in front."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n)] * 3, indexing="ij")
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.95) ** 2 + (z / 0.9) ** 2)
    vol = np.where(r < 0.85, 600.0, 0.0) + np.where((r >= 0.85) & (r < 1.0), 1200.0, 0.0)
    for side in (-0.35, 0.35):
        eye = (x - side) ** 2 + (y - 0.8) ** 2 + (z + 0.1) ** 2 < 0.15**2
        vol[eye] = 150.0
    return vol


def tutorial_transform(arr: np.ndarray) -> np.ndarray:
    """clip(contrast(clip(normalize - 0.1, 0, 1) ** 0.4, 2) - 0.1, 0, 1), as the tutorial."""
    t = np.clip((arr - arr.min()) / (arr.max() - arr.min()) - 0.1, 0, 1) ** 0.4
    t = (t - t.mean()) * 2 + t.mean()
    return np.clip(t - 0.1, 0, 1)


# ------------------------------------------------------------------------- the methods


def tutorial_figure(cube: np.ndarray, dpi: int) -> None:
    """The tutorial's plot_cube: explode, expanded coordinates, one ax.voxels call."""
    n = cube.shape[0]
    norm = (cube - cube.min()) / (cube.max() - cube.min())
    colors = matplotlib.colormaps["viridis"](norm)
    colors[..., 3] = norm
    exploded = np.zeros((*(np.array(cube.shape) * 2 - 1), 4))
    exploded[::2, ::2, ::2] = colors
    filled = exploded[..., 3] != 0
    x, y, z = np.indices(np.array(filled.shape) + 1).astype(float)
    x[1::2, :, :] += 1
    y[:, 1::2, :] += 1
    z[:, :, 1::2] += 1
    fig = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    ax.view_init(30, 320)
    ax.set_xlim(right=n * 2)
    ax.set_ylim(top=n * 2)
    ax.set_zlim(top=n * 2)
    ax.voxels(x, y, z, filled, facecolors=exploded, shade=False)
    fig.savefig(io.BytesIO(), format="png", dpi=dpi)


def voxspec_figure(cube: np.ndarray, dpi: int) -> None:
    n = cube.shape[0]
    panel = VoxelsPanel(kind="voxels", volume="head", limits=(2 * n, 2 * n, 2 * n))
    fig = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=dpi)
    FigureCanvasAgg(fig)
    slot = fig.add_gridspec(1, 1)[0, 0]
    voxels.draw(panel, {"head": VolumeData(cube)}, fig, slot)
    fig.savefig(io.BytesIO(), format="png", dpi=dpi)


# ------------------------------------------------------------------------ measurement


def seconds(run, *args, repeat: int = 1) -> float:
    """Best wall time of ``repeat`` runs (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run(*args)
        best = min(best, time.perf_counter() - start)
    return best


def peak_mb(run, *args) -> float:
    """Peak of traced allocations (Python objects and numpy buffers) during ``run``."""
    gc.collect()
    tracemalloc.start()
    try:
        run(*args)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def drawn_voxels(cube: np.ndarray) -> int:
    return int(np.count_nonzero(cube))  # normalized value != 0 <=> value above the minimum


def compare(sizes: list[int], baseline_max: int) -> None:
    print(
        "figure 30 x 30 cm; time = draw + savefig PNG (wall s; voxspec best of 3); "
        "memory = tracemalloc peak (MB)\n"
    )
    head = (
        f"{'size':>5} {'voxels':>7} | {'ax.voxels s':>11} {'voxspec s':>9} {'ratio':>7} | "
        f"{'ax.voxels MB':>12} {'voxspec MB':>10} | {'voxspec 300dpi s':>16} {'MB':>6}"
    )
    print(head)
    print("-" * len(head))
    for n in sizes:
        cube = head_volume(n)
        ours = seconds(voxspec_figure, cube, TUTORIAL_DPI, repeat=REPEAT)
        ours_mb = peak_mb(voxspec_figure, cube, TUTORIAL_DPI)
        hi = seconds(voxspec_figure, cube, PRINT_DPI, repeat=REPEAT)
        hi_mb = peak_mb(voxspec_figure, cube, PRINT_DPI)
        if n <= baseline_max:
            base = seconds(tutorial_figure, cube, TUTORIAL_DPI)
            base_mb = peak_mb(tutorial_figure, cube, TUTORIAL_DPI)
            cols = f"{base:11.2f} {ours:9.3f} {base / ours:6.0f}x | {base_mb:12.0f} {ours_mb:10.0f}"
        else:
            cols = f"{'-':>11} {ours:9.3f} {'-':>7} | {'-':>12} {ours_mb:10.0f}"
        print(f"{n:>4}^3 {drawn_voxels(cube):7d} | {cols} | {hi:16.3f} {hi_mb:6.0f}", flush=True)


def scaling(sizes: list[int]) -> None:
    print("voxspec alone, 30 x 30 cm; time = draw + savefig PNG; memory = tracemalloc peak\n")
    print(f"{'size':>5} {'voxels':>8} {'faces':>8} | {'100 dpi s':>9} {'MB':>6} | {'300 dpi s':>9}")
    for n in sizes:
        cube = head_volume(n)
        count = drawn_voxels(cube)
        low = seconds(voxspec_figure, cube, TUTORIAL_DPI, repeat=REPEAT)
        mb = peak_mb(voxspec_figure, cube, TUTORIAL_DPI)
        high = seconds(voxspec_figure, cube, PRINT_DPI, repeat=REPEAT)
        print(
            f"{n:>4}^3 {count:8d} {6 * count:8d} | {low:9.2f} {mb:6.0f} | {high:9.2f}", flush=True
        )


def profile(n: int, dpi: int) -> None:
    cube = head_volume(n)
    profiler = cProfile.Profile()
    profiler.runcall(voxspec_figure, cube, dpi)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 24, 32, 50])
    parser.add_argument(
        "--baseline-max", type=int, default=32, help="largest size ax.voxels is run at"
    )
    parser.add_argument("--scaling", action="store_true", help="voxspec alone at 64, 80, 100")
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile voxspec at N^3")
    parser.add_argument("--dpi", type=int, default=TUTORIAL_DPI, help="dpi for --profile")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.dpi)
    elif args.scaling:
        scaling([64, 80, 100])
    else:
        compare(args.sizes, args.baseline_max)


if __name__ == "__main__":
    main()
