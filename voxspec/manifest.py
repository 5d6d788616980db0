"""Manifests: what a figure was made from, written as ``<out>/<name>.manifest.json``.

A manifest records the spec (its SHA-256 and resolved form), each source's SHA-256,
the versions of the rendering stack, the spec's git state and each output's SHA-256.
It holds no time, user or absolute path, and is written with sorted keys, so the
same inputs give the same manifest bytes.

The manifest also decides incremental builds: a figure whose spec, sources and
versions equal its manifest's, and whose outputs still have the recorded hashes, is
up to date. That check runs for every figure of every ``voxspec build``, so it must
stay cheap: no git, no matplotlib, versions read once per process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
import zlib
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from voxspec import __version__
from voxspec.output import write_atomic

if TYPE_CHECKING:  # the up-to-date check before validation must not import pydantic
    from voxspec.spec import SpecDocument

MANIFEST_VERSION = 1
# Every distribution whose version can change a figure's bytes: drawing (matplotlib and
# what it draws with: layout solver, contours, fonts, mathtext), the data path (reading,
# resampling) and file writing (Pillow, zlib for PDF streams).
PACKAGES = (
    "numpy",
    "matplotlib",
    "contourpy",
    "kiwisolver",
    "fonttools",
    "pyparsing",
    "cycler",
    "pillow",
    "nibabel",
    "scikit-image",
    "scipy",
    "pydantic",
    "pydantic-core",
    "pyyaml",
)
# The inputs that decide a figure's bytes; the git state and outputs do not.
INPUT_KEYS = ("spec", "sources", "versions")
MADE_FROM_SPEC = "nothing: made from the spec alone, which spec.sha256 covers"


@functools.cache
def versions() -> dict[str, str]:
    """voxspec, Python, zlib and every package of ``PACKAGES`` (read once per process)."""
    found = {
        "voxspec": __version__,
        "python": platform.python_version(),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_state(path: Path) -> dict | None:
    """The last commit that touched the spec ``path``, and whether the file has changes
    not committed (or is not tracked at all). None outside a git work tree or without git.

    Runs only when a figure is built, never for the up-to-date check: three git processes
    per figure would be most of a no-op rebuild's time.
    """
    folder = path.resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                # --no-optional-locks: a status never takes the index lock, so a build
                # cannot make a concurrent commit in the same repository fail
                ["git", "--no-optional-locks", *args],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top:
        return None
    commit = git("log", "-1", "--format=%H", "--", path.name) or None
    status = git("status", "--porcelain", "--untracked-files=all", "--", path.name)
    try:
        relative = path.resolve().relative_to(Path(top).resolve()).as_posix()
    except ValueError:
        relative = path.name
    return {"commit": commit, "dirty": bool(status) or commit is None, "path": relative}


# ---------------------------------------------------------------------- sources


def hash_of(source) -> str:
    """What a source's SHA-256 is taken of, said in the manifest beside the hash."""
    if source.kind in ("builtin", "array"):
        return MADE_FROM_SPEC
    if source.member is not None:
        return "the zip archive that holds the member"
    return "the file's bytes" if source.kind == "path" else "the downloaded file's bytes"


def known_source_hash(source, base_dir: Path) -> str | None:
    """A source's SHA-256 without loading it (None when it cannot be known cheaply).

    The same bytes ``voxspec.sources`` hashes: the local file (the archive when a
    ``member`` is read), a pinned hash, or an unpinned URL's copy in the download cache.
    None for embedded data (builtin, array), which is made from the spec alone.
    A local file is hashed even when pinned: changed since, it must fail the build
    (a pin mismatch), not pass as up to date.
    """
    if source.path is not None:
        path = base_dir / Path(source.path).expanduser()
        return sha256_file(path) if path.is_file() else None
    if source.sha256:
        return source.sha256
    if source.url is not None:
        return _cached_download_hash(source.url)
    return None


def _cached_download_hash(url: str) -> str | None:
    # imported here: only unpinned URL sources need the download machinery
    from voxspec.download import cache_name
    from voxspec.sources import cache_dir

    cached = cache_dir() / "downloads" / cache_name(url)
    return sha256_file(cached) if cached.is_file() else None


# --------------------------------------------------------------------- records


def describe(doc: SpecDocument, source_hashes: dict[str, str | None], with_git: bool = False):
    """Everything that decides the figure's bytes (outputs aside), plus, with
    ``with_git``, the spec's git state (recorded, never compared)."""
    volumes = doc.spec.volumes
    record = {
        "manifest": MANIFEST_VERSION,
        "name": doc.name,
        "spec": {
            "file": doc.path.name,
            "sha256": doc.sha256,
            "resolved": doc.spec.model_dump(mode="json"),
        },
        "sources": {
            vid: {
                "kind": volumes[vid].source.kind,
                "sha256": sha,
                "hash_of": hash_of(volumes[vid].source),
            }
            for vid, sha in sorted(source_hashes.items())
        },
        "versions": versions(),
    }
    if with_git:
        record["git"] = git_state(doc.path)
    return record


def provenance(record: dict) -> dict:
    """What each figure file carries inside itself: the resolved spec and source hashes.

    Package versions stay out of the files on purpose: they are in the manifest, and
    a figure file should not change when a package that draws nothing (pydantic, say)
    is updated.
    """
    return {
        "voxspec": record["versions"]["voxspec"],
        "name": record["name"],
        "spec_file": record["spec"]["file"],
        "spec_sha256": record["spec"]["sha256"],
        "spec": record["spec"]["resolved"],
        "sources": record["sources"],
    }


def manifest_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f"{name}.manifest.json"


def dumps(record: dict) -> bytes:
    return (json.dumps(record, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def read(out_dir: Path, name: str) -> dict | None:
    """The manifest of ``name`` in ``out_dir``; None when missing or unreadable."""
    try:
        record = json.loads(manifest_path(out_dir, name).read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write(out_dir: Path, name: str, record: dict, files: dict[str, bytes]) -> Path:
    """Write the manifest, keeping entries of earlier builds' other formats that still match."""
    outputs = {}
    previous = read(out_dir, name)
    if previous and same_inputs(previous, record):
        for file, sha in previous.get("outputs", {}).items():
            if (out_dir / file).is_file() and sha256_file(out_dir / file) == sha:
                outputs[file] = sha
    for fmt, data in files.items():
        outputs[f"{name}.{fmt}"] = sha256_bytes(data)
    path = manifest_path(out_dir, name)
    write_atomic(path, dumps({**record, "outputs": dict(sorted(outputs.items()))}))
    return path


def same_inputs(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in INPUT_KEYS)


def up_to_date(out_dir: Path, name: str, record: dict, formats: list[str]) -> bool:
    """True when the manifest says these inputs made these formats, and the files are intact."""
    previous = read(out_dir, name)
    if not previous or not same_inputs(previous, record):
        return False
    if any(
        s["sha256"] is None and s["kind"] in ("path", "url") for s in record["sources"].values()
    ):
        return False  # a file we could not hash without loading it: rebuild to be sure
    return _outputs_intact(out_dir, name, previous, formats)


def _outputs_intact(out_dir: Path, name: str, previous: dict, formats: list[str]) -> bool:
    outputs = previous.get("outputs", {})
    for fmt in formats:
        file = f"{name}.{fmt}"
        path = out_dir / file
        if file not in outputs or not path.is_file() or sha256_file(path) != outputs[file]:
            return False
    return True


# ------------------------------------------------- up to date, before validation


def unchanged_specs(
    spec_paths: list[Path], out_dir: Path, formats: list[str] | None = None
) -> dict[Path, str]:
    """The spec files whose figure is up to date, with the figure's name, found without
    validating the specs (validation imports pydantic and matplotlib: most of the time a
    no-op rebuild would take).

    A manifest vouches for a spec file holding the same bytes under the same file name:
    with the same versions of voxspec and every package, that spec validated to the
    manifest's resolved form. Its sources and outputs are then checked as in
    ``up_to_date``. A spec that no manifest vouches for, or two specs one manifest
    vouches for, go through the full path (which reports duplicate names).
    """
    by_spec: dict[tuple[str, str], list[dict]] = {}
    for file in sorted(Path(out_dir).glob("*.manifest.json")):
        try:
            record = json.loads(file.read_bytes())
            key = (record["spec"]["sha256"], record["spec"]["file"])
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if (
            record.get("manifest") == MANIFEST_VERSION
            and file.name == f"{record.get('name')}.manifest.json"
        ):
            by_spec.setdefault(key, []).append(record)
    found: dict[Path, str] = {}
    for path in spec_paths:
        try:
            key = (sha256_bytes(Path(path).read_bytes()), Path(path).name)
        except OSError:
            continue
        records = by_spec.get(key, [])
        if len(records) == 1 and _still_made_from(records[0], Path(path), out_dir, formats):
            found[Path(path)] = records[0]["name"]
    names = list(found.values())
    return {path: name for path, name in found.items() if names.count(name) == 1}


def _still_made_from(record: dict, spec_path: Path, out_dir: Path, formats) -> bool:
    if record.get("versions") != versions():
        return False
    try:
        if record["spec"]["resolved"]["figure"].get("preflight"):
            return False  # a spec asking for print checks is rendered on every build
        volumes = record["spec"]["resolved"]["volumes"]
        for vid, recorded in record["sources"].items():
            source = SimpleNamespace(**volumes[vid]["source"])
            if recorded["sha256"] is None:
                if source.builtin is None and source.array is None:
                    return False
            elif known_source_hash(source, spec_path.parent) != recorded["sha256"]:
                return False
        formats = formats or record["spec"]["resolved"]["figure"]["formats"]
    except (KeyError, TypeError, AttributeError):
        return False  # a manifest of another shape: let the full check decide
    return _outputs_intact(out_dir, record["name"], record, list(formats))
