"""Time and memory of one full-resolution `volume` panel figure, stage by stage.

    python benchmarks/bench_volume.py [VOLUME_FILE] [--mode composite|mip] [--size-cm 12]
                                      [--dpi 300] [--out figure.png]

VOLUME_FILE is anything nibabel reads (or a .npy); without it the volume is the
``head-phantom`` builtin at 197 x 233 x 189 (the MNI152 1 mm grid). The figure is one volume
panel, ``size-cm`` square at ``dpi`` (12 cm at 300 dpi = 1417 px), saved as PNG.

Stages: ``load`` (read the file or make the phantom, as float32), ``panel`` (the panel's
set-up: value range, lookup codes, axes), ``render`` (the first draw of the figure: the
volume image and the axes around it), ``savefig`` (draw again and encode the PNG; the
volume image is reused, the geometry is the same). Each stage reports wall and CPU seconds
and the peak resident memory of the process during that stage (Linux: the kernel's
high-water mark, reset between stages; elsewhere the running maximum).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.gridspec import GridSpec  # noqa: E402

from voxspec.model import VolumePanel  # noqa: E402
from voxspec.render import volume as volume_panel  # noqa: E402
from voxspec.volume import VolumeData  # noqa: E402

MNI_SHAPE = (197, 233, 189)
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak() -> bool:
    """Restart the kernel's peak-RSS count for this process (Linux); False if we can't."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


class Stages:
    def __init__(self):
        self.rows: list[tuple[str, float, float, float]] = []
        self.per_stage_peak = reset_peak()

    @contextmanager
    def stage(self, name: str):
        if self.per_stage_peak:
            reset_peak()
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.rows.append((name, time.perf_counter() - wall, time.process_time() - cpu, peak_mb()))

    def report(self) -> str:
        lines = [f"{'stage':<10}{'wall s':>9}{'cpu s':>9}{'peak MB':>10}"]
        for name, wall, cpu, peak in self.rows:
            lines.append(f"{name:<10}{wall:>9.2f}{cpu:>9.2f}{peak:>10.0f}")
        total_wall = sum(r[1] for r in self.rows)
        total_cpu = sum(r[2] for r in self.rows)
        lines.append(
            f"{'total':<10}{total_wall:>9.2f}{total_cpu:>9.2f}{max(r[3] for r in self.rows):>10.0f}"
        )
        if not self.per_stage_peak:
            lines.append("(peak memory is the running maximum of the process)")
        return "\n".join(lines)


def load(path: str | None) -> np.ndarray:
    if path is None:
        return phantom(MNI_SHAPE)
    if path.endswith(".npy"):
        return np.load(path).astype(np.float32)
    import nibabel

    return np.asarray(nibabel.load(path).dataobj, dtype=np.float32)


def phantom(shape: tuple[int, int, int]) -> np.ndarray:
    try:
        from voxspec.phantom import head_phantom
    except ImportError:  # a stand-in: an ellipsoid shell around a dimmer core
        i, j, k = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
        r = np.sqrt(i[:, None, None] ** 2 + j[None, :, None] ** 2 + k[None, None, :] ** 2)
        return np.where(r < 0.8, 0.4, 0) + np.where(abs(r - 0.85) < 0.04, 1.0, 0)
    return head_phantom(shape).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("volume", nargs="?", help="NIfTI (or any nibabel format) or .npy file")
    parser.add_argument("--mode", choices=["composite", "mip"], default="composite")
    parser.add_argument("--size-cm", type=float, default=12.0)
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--out", default=None, help="also write the PNG here")
    args = parser.parse_args(argv)

    stages = Stages()
    with stages.stage("load"):
        data = load(args.volume)
    with stages.stage("panel"):
        inches = args.size_cm / 2.54
        fig = Figure(figsize=(inches, inches), dpi=args.dpi)
        FigureCanvasAgg(fig)
        panel = VolumePanel(kind="volume", volume="v", mode=args.mode)
        slot = GridSpec(1, 1, figure=fig)[0]
        volume_panel.draw(panel, {"v": VolumeData(data)}, fig, slot)
    with stages.stage("render"):
        fig.canvas.draw()
    with stages.stage("savefig"):
        target = args.out or os.devnull
        fig.savefig(target, format="png", dpi=args.dpi)

    width, height = fig.canvas.get_width_height()
    print(
        f"{args.volume or 'head-phantom'} {data.shape} -> {width} x {height} px, {args.mode}, "
        f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}"
    )
    print(stages.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
