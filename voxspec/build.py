"""The pipeline: spec files -> validated specs -> volumes -> figures -> files + manifest.

``build`` is what ``voxspec build`` runs. Each figure is built all or nothing: its
outputs are rendered to memory and written only when every format succeeded. A spec
that fails is reported (every problem, located) and the others are still built.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voxspec.errors import Problem, UserError

if TYPE_CHECKING:  # spec validation imports pydantic and matplotlib: only when needed
    from voxspec.spec import SpecDocument
    from voxspec.volume import VolumeData

DEFAULT_SPEC_DIR = Path("figspecs")
DEFAULT_OUT_DIR = Path("outputs")
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class FigureResult:
    name: str
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # preflight's, located


# ------------------------------------------------------------------ spec files


def find_specs(paths: Iterable[str | Path] | None = None) -> list[Path]:
    """Spec files named by ``paths``: files as given, folders searched recursively.
    With no paths, the ``*.yaml``/``*.yml`` directly in ``figspecs/``."""
    paths = list(paths or [])
    if not paths:
        if not DEFAULT_SPEC_DIR.is_dir():
            raise UserError(
                Problem("no spec given and no figspecs/ folder here", ("arguments",), "voxspec")
            )
        return sorted(p for p in DEFAULT_SPEC_DIR.iterdir() if p.suffix in SPEC_SUFFIXES)
    found, problems = [], []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Problem("no such spec file or folder", ("arguments",), str(path)))
    if problems:
        raise UserError(problems)
    return list(dict.fromkeys(found))


def load_specs(paths: list[Path]) -> tuple[list[SpecDocument], list[Problem]]:
    """Validate every spec; return the good ones and all problems of the bad ones."""
    from voxspec.spec import display_path, load_spec

    docs, problems = [], []
    for path in paths:
        try:
            docs.append(load_spec(path))
        except UserError as error:
            problems += error.problems
    by_name: dict[str, SpecDocument] = {}
    for doc in docs:
        if doc.name in by_name:
            other = display_path(by_name[doc.name].path)
            problems.append(
                Problem(f"two specs are named {doc.name!r}; the other is {other}", ("name",))
            )
            problems[-1] = _place(problems[-1], doc)
        by_name.setdefault(doc.name, doc)
    return [d for d in docs if by_name[d.name] is d], problems


def _names_taken(docs: list[SpecDocument], unchanged: dict[Path, str]) -> list[Problem]:
    """Two specs named alike, one of them up to date (and so not validated again)."""
    if not docs:
        return []
    from voxspec.spec import display_path

    taken = {name: path for path, name in unchanged.items()}
    return [
        _place(
            Problem(
                f"two specs are named {doc.name!r}; the other is {display_path(taken[doc.name])}",
                ("name",),
            ),
            doc,
        )
        for doc in docs
        if doc.name in taken
    ]


def _place(problem: Problem, doc: SpecDocument) -> Problem:
    return UserError(problem).located(doc.locate).problems[0]


# --------------------------------------------------------------------- volumes


class VolumeStore:
    """Loads each source once and runs each (source, steps) pipeline once per build."""

    def __init__(self, progress: bool = True):
        self.progress = progress
        self._sources: dict[str, VolumeData] = {}
        self._volumes: dict[str, VolumeData] = {}

    def get(self, doc: SpecDocument, volume_id: str) -> VolumeData:
        from voxspec.sources import load_source
        from voxspec.steps import apply_steps

        volume = doc.spec.volumes[volume_id]
        where = ("volumes", volume_id)
        source_key = json.dumps(
            [str(doc.base_dir.resolve()), volume.source.model_dump(mode="json")], sort_keys=True
        )
        steps_key = json.dumps(
            [source_key, [s.model_dump(mode="json") for s in volume.steps]], sort_keys=True
        )
        if steps_key not in self._volumes:
            if source_key not in self._sources:
                try:
                    self._sources[source_key] = load_source(
                        volume.source, doc.base_dir, progress=self.progress
                    )
                except UserError as error:
                    raise error.at((*where, "source")) from None
            loaded = self._sources[source_key]
            self._volumes[steps_key] = apply_steps(loaded, volume.steps, volume_id, where)
        return self._volumes[steps_key]


# ---------------------------------------------------------------------- figures


def build_figure(
    doc: SpecDocument,
    out_dir: Path,
    formats: list[str] | None = None,
    store: VolumeStore | None = None,
    force: bool = False,
    preflight: bool = False,
    strict: bool = False,
) -> FigureResult:
    """Build one figure into ``out_dir``. Raises ``UserError`` located in the spec.

    With ``preflight`` (or the spec's ``figure.preflight``) the figure is checked for
    print problems, returned as warnings; with ``strict`` they are errors and nothing
    is written. With either flag the figure is rendered even when up to date: the
    check needs it.
    """
    from voxspec import manifest
    from voxspec.output import figure_bytes, write_atomic

    started = time.perf_counter()
    store = store or VolumeStore()
    spec = doc.spec
    formats = list(dict.fromkeys(formats or spec.figure.formats))
    checking = preflight or strict or spec.figure.preflight
    warnings: list[Problem] = []
    try:
        used = sorted({p.volume for p in spec.panels} | _overlay_ids(spec))
        # a spec's own `preflight: true` was checked when its outputs were built
        if not force and not (preflight or strict):
            known = {
                v: manifest.known_source_hash(spec.volumes[v].source, doc.base_dir) for v in used
            }
            if manifest.up_to_date(out_dir, doc.name, manifest.describe(doc, known), formats):
                return FigureResult(doc.name, skipped=True, seconds=time.perf_counter() - started)
        # matplotlib only now: an up-to-date figure must not pay for importing it
        from voxspec.render.figure import fit_print, fit_raster, render_figure, styled

        volumes = {vid: store.get(doc, vid) for vid in used}
        record = manifest.describe(
            doc, {vid: v.sha256 for vid, v in volumes.items()}, with_git=True
        )
        provenance = manifest.provenance(record)
        with styled(spec):
            fig = render_figure(spec, volumes)
            files = {}
            for fmt in formats:
                (fit_raster if fmt in ("png", "tiff") else fit_print)(fig, spec)
                files[fmt] = figure_bytes(fig, fmt, spec.figure.dpi, provenance)
        if checking:
            from voxspec import preflight as print_checks

            warnings = print_checks.check(doc, fig, files)
            if strict and warnings:
                raise UserError([print_checks.as_error(w) for w in warnings])
    except UserError as error:
        raise doc.error(error) from None
    outputs = []
    for fmt, data in files.items():
        path = out_dir / f"{doc.name}.{fmt}"
        write_atomic(path, data)
        outputs.append(path)
    manifest.write(out_dir, doc.name, record, files)
    return FigureResult(doc.name, outputs, time.perf_counter() - started, warnings=warnings)


def _overlay_ids(spec) -> set[str]:
    return {p.overlay.volume for p in spec.panels if getattr(p, "overlay", None) is not None}


def _build_one(args) -> FigureResult:
    """Worker for parallel builds: problems come back as data (they pickle; errors don't)."""
    from voxspec.spec import load_spec

    path, out_dir, formats, force, progress, preflight, strict = args
    doc = load_spec(path)
    try:
        return build_figure(doc, out_dir, formats, VolumeStore(progress), force, preflight, strict)
    except UserError as error:
        return FigureResult(doc.name, problems=error.problems)


def build(
    paths: Iterable[str | Path] | None = None,
    out: str | Path = DEFAULT_OUT_DIR,
    formats: list[str] | None = None,
    jobs: int = 1,
    force: bool = False,
    quiet: bool = False,
    preflight: bool = False,
    strict: bool = False,
) -> list[FigureResult]:
    """Build every figure of ``paths`` (default: ``figspecs/``) into ``out``.

    ``preflight`` checks every figure for print problems and prints each as a located
    warning; ``strict`` makes them errors (the figure is not written).

    Returns the results; raises ``UserError`` with every problem of every figure
    that failed, after building all the others.
    """
    from voxspec import manifest

    out_dir = Path(out)
    spec_paths = find_specs(paths)
    # up-to-date figures are found before validation, which is most of a no-op's time
    checking = preflight or strict  # a check needs the figure: up-to-date ones too
    unchanged = {} if force or checking else manifest.unchanged_specs(spec_paths, out_dir, formats)
    changed = [p for p in spec_paths if p not in unchanged]
    docs, problems = load_specs(changed) if changed else ([], [])
    problems += _names_taken(docs, unchanged)
    progress = not quiet and sys.stderr.isatty()
    results: list[FigureResult] = []

    def report(result: FigureResult) -> None:
        results.append(result)
        for warning in result.warnings:
            print(warning.format(), file=sys.stderr)
        if quiet or result.problems:
            return
        if result.skipped:
            print(f"voxspec: {result.name}: up to date", file=sys.stderr)
        else:
            from voxspec.spec import display_path

            names = ", ".join(display_path(p) for p in result.outputs)
            print(f"voxspec: {result.name}: {result.seconds:.1f} s -> {names}", file=sys.stderr)

    for name in unchanged.values():
        report(FigureResult(name, skipped=True))
    docs = [d for d in docs if d.name not in unchanged.values()]
    if jobs > 1 and len(docs) > 1:
        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        )
        tasks = [(d.path, out_dir, formats, force, progress, preflight, strict) for d in docs]
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            for result in pool.map(_build_one, tasks):
                report(result)
                problems += result.problems
    else:
        store = VolumeStore(progress)
        for doc in docs:
            try:
                report(build_figure(doc, out_dir, formats, store, force, preflight, strict))
            except UserError as error:
                problems += error.problems
    if problems:
        raise UserError(problems)
    return results
