"""Manifests: what a figure was made from, written as ``<out>/<name>.manifest.json``.

A manifest records the spec (its SHA-256 and resolved form), each source's SHA-256,
the versions of the rendering stack, the spec's git commit and each output's SHA-256.
It holds no time, user or absolute path, and is written with sorted keys, so the
same inputs give the same manifest bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from voxspec import __version__
from voxspec.output import write_atomic
from voxspec.spec import SpecDocument

MANIFEST_VERSION = 1
PACKAGES = ("numpy", "matplotlib", "nibabel", "scikit-image", "pydantic", "pillow", "pyyaml")


def versions() -> dict[str, str]:
    found = {"voxspec": __version__, "python": platform.python_version()}
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


def git_state(path: Path) -> dict | None:
    """The commit that holds ``path`` and whether the file has uncommitted changes."""
    folder = path.resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("log", "-1", "--format=%H", "--", path.name)
    if not commit:
        return None
    status = git("status", "--porcelain", "--", path.name)
    top = git("rev-parse", "--show-toplevel")
    relative = str(path.resolve().relative_to(Path(top).resolve())) if top else path.name
    return {"commit": commit, "dirty": bool(status), "path": relative}


def known_source_hash(source, base_dir: Path) -> str | None:
    """A source's SHA-256 without loading it: a local file's hash or a pinned one.
    None for embedded data (made by voxspec from the spec alone) and unpinned URLs."""
    if source.sha256:
        return source.sha256
    if source.path is not None:
        path = base_dir / source.path
        return sha256_file(path) if path.is_file() else None
    return None


def describe(doc: SpecDocument, source_hashes: dict[str, str | None]) -> dict:
    """Everything that decides the figure's bytes, outputs aside."""
    return {
        "manifest": MANIFEST_VERSION,
        "name": doc.name,
        "spec": {
            "file": doc.path.name,
            "sha256": doc.sha256,
            "resolved": doc.spec.model_dump(mode="json"),
        },
        "sources": {
            vid: {
                "kind": doc.spec.volumes[vid].source.kind,
                "sha256": sha,
            }
            for vid, sha in sorted(source_hashes.items())
        },
        "versions": versions(),
        "git": git_state(doc.path),
    }


def provenance(record: dict) -> dict:
    """What each figure file carries inside itself: the resolved spec and source hashes."""
    return {
        "voxspec": record["versions"]["voxspec"],
        "name": record["name"],
        "spec_sha256": record["spec"]["sha256"],
        "spec": record["spec"]["resolved"],
        "sources": {vid: s["sha256"] for vid, s in record["sources"].items()},
    }


def manifest_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.manifest.json"


def dumps(record: dict) -> bytes:
    return (json.dumps(record, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def read(out_dir: Path, name: str) -> dict | None:
    try:
        return json.loads(manifest_path(out_dir, name).read_text())
    except (OSError, ValueError):
        return None


def write(out_dir: Path, name: str, record: dict, files: dict[str, bytes]) -> Path:
    """Write the manifest, keeping entries of earlier builds' other formats that still match."""
    outputs = {}
    previous = read(out_dir, name)
    if previous and _same_inputs(previous, record):
        for file, sha in previous.get("outputs", {}).items():
            if (out_dir / file).is_file() and sha256_file(out_dir / file) == sha:
                outputs[file] = sha
    for fmt, data in files.items():
        outputs[f"{name}.{fmt}"] = hashlib.sha256(data).hexdigest()
    path = manifest_path(out_dir, name)
    write_atomic(path, dumps({**record, "outputs": dict(sorted(outputs.items()))}))
    return path


def _same_inputs(a: dict, b: dict) -> bool:
    keys = ("spec", "sources", "versions")
    return all(a.get(k) == b.get(k) for k in keys)


def up_to_date(out_dir: Path, name: str, record: dict, formats: list[str]) -> bool:
    """True when the manifest says these inputs made these formats, and the files are intact."""
    previous = read(out_dir, name)
    if not previous or not _same_inputs(previous, record):
        return False
    if any(s["sha256"] is None and s["kind"] in ("path", "url") for s in record["sources"].values()):
        return False
    outputs = previous.get("outputs", {})
    for fmt in formats:
        file = f"{name}.{fmt}"
        path = out_dir / file
        if file not in outputs or not path.is_file() or sha256_file(path) != outputs[file]:
            return False
    return True
