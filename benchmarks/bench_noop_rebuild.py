"""Benchmark: a no-op rebuild of every spec in figspecs/ (every figure up to date).

First builds the figures once (into a temporary folder, or ``--out``), then times
rebuilds that find nothing to do, as the median of ``--runs`` runs:

- in-process: ``voxspec.build.build`` called again in a warm interpreter;
- subprocess: ``python -m voxspec build`` from scratch, as a user or a Makefile runs it,
  beside the bare start-up of the interpreter (``python -c pass``) for scale.

It also lists the heavy modules a no-op rebuild imported: none is the goal (the
up-to-date check reads manifests before any spec is validated).

    python benchmarks/bench_noop_rebuild.py
    python benchmarks/bench_noop_rebuild.py --runs 15 --out outputs
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEAVY = ("matplotlib", "pydantic", "numpy", "skimage", "nibabel", "yaml")
PROBE = """
import sys
from voxspec.build import build
results = build({specs!r}, {out!r}, quiet=True)
assert all(r.skipped for r in results), "not a no-op: some figure was rebuilt"
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


def median_seconds(run, runs: int) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), max(times)


def run_command(command: list[str]) -> None:
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default=str(ROOT / "figspecs"), help="spec folder")
    parser.add_argument("--out", help="output folder (default: a temporary one)")
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each kind")
    args = parser.parse_args()

    from voxspec.build import build, find_specs

    with tempfile.TemporaryDirectory(prefix="voxspec-bench-") as scratch:
        out = args.out or scratch
        # the folder itself: its *.yaml directly, as `voxspec build` with no argument
        specs = [str(p) for p in find_specs([args.specs]) if Path(p).parent == Path(args.specs)]
        print(f"building {len(specs)} figures of {args.specs} into {out} (once) ...")
        started = time.perf_counter()
        build(specs, out, quiet=True)
        print(f"  first build: {time.perf_counter() - started:.1f} s")

        def in_process():
            results = build(specs, out, quiet=True)
            assert all(r.skipped for r in results), "not a no-op: some figure was rebuilt"

        python = sys.executable
        noop = [python, "-m", "voxspec", "build", *specs, "-o", out, "-q"]
        rows = [
            ("in-process build()", median_seconds(in_process, args.runs)),
            ("python -m voxspec build", median_seconds(lambda: run_command(noop), args.runs)),
            ("python -c pass", median_seconds(lambda: run_command([python, "-c", "pass"]), 5)),
        ]
        probe = PROBE.format(specs=specs, out=out, heavy=HEAVY)
        imported = subprocess.run(
            [python, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()

    print(f"no-op rebuild of {len(specs)} figures, median of {args.runs} runs (min - max):")
    for label, (median, low, high) in rows:
        print(f"  {label:26s} {median * 1000:8.1f} ms  ({low * 1000:.1f} - {high * 1000:.1f})")
    print(f"  heavy modules imported by a no-op rebuild: {', '.join(imported) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
