"""Figure -> file bytes with embedded provenance, and atomic writes.

Every output is rendered to memory first and written only when all formats of the
figure succeeded, each through a temporary file renamed over the target, so a failed
build never leaves a partial file and never touches the previous good output.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

PROVENANCE_KEY = "voxspec:provenance"
RASTER = ("png", "tiff")


def provenance_text(provenance: dict) -> str:
    """Canonical JSON (sorted keys, ASCII only): the same provenance gives the same bytes."""
    return json.dumps(provenance, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def figure_bytes(fig: Figure, fmt: str, dpi: int, provenance: dict) -> bytes:
    """``fig`` as a ``fmt`` file, provenance embedded, no dates or machine details."""
    text = provenance_text(provenance)
    creator = f"voxspec {provenance.get('voxspec', '')}".strip()
    options: dict = {}
    if fmt == "png":
        options["metadata"] = {"Software": creator, PROVENANCE_KEY: text}
    elif fmt == "pdf":
        options["metadata"] = {
            "Creator": creator,
            "Producer": creator,
            "CreationDate": None,
            "ModDate": None,
            "Subject": text,
        }
    elif fmt == "svg":
        options["metadata"] = {"Creator": creator, "Date": None, "Description": text}
    elif fmt == "tiff":
        options["pil_kwargs"] = {"compression": "tiff_deflate", "description": text}
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, **options)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with_suppressed_remove(temporary)
        raise


def with_suppressed_remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
