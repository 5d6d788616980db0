"""Figure -> file bytes with embedded provenance, and atomic writes.

Every output is rendered to memory first and written only when all formats of the
figure succeeded, each through a temporary file renamed over the target, so a failed
build never leaves a partial file and never touches the previous good output.

The bytes depend on the figure and the provenance alone: no dates, no user, no
absolute path, no random ids (see :mod:`voxspec.provenance` for what each format
carries, and ``render.figure.style`` for the fixed SVG hash salt and TrueType fonts).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from voxspec.provenance import PDF_KEY, provenance_text, save_options

if TYPE_CHECKING:  # matplotlib is slow to import; a no-op rebuild never needs it
    from matplotlib.figure import Figure

RASTER = ("png", "tiff")
__all__ = ["RASTER", "figure_bytes", "provenance_text", "write_atomic"]


def figure_bytes(fig: Figure, fmt: str, dpi: int, provenance: dict) -> bytes:
    """``fig`` as a ``fmt`` file, provenance embedded, no dates or machine details."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # a custom key in the PDF information dictionary is valid PDF; matplotlib
        # only knows the standard ones and warns about the others
        warnings.filterwarnings("ignore", message=f".*infodict keyword: '{PDF_KEY}'")
        fig.savefig(buffer, format=fmt, dpi=dpi, **save_options(fmt, provenance))
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
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
