"""Panel renderers: one module per panel kind, found through ``RENDERERS``.

Every renderer module has ``draw(panel, volumes, fig, slot) -> Axes``: it draws the
panel into ``slot`` (a matplotlib SubplotSpec) of ``fig`` from the transformed volumes.
Adding a panel kind = its model in ``voxspec.model`` + one module here + one line below.
"""

from __future__ import annotations

import importlib

RENDERERS = {
    "slice": "voxspec.render.slice",
    "histogram": "voxspec.render.histogram",
    "voxels": "voxspec.render.voxels",
    "volume": "voxspec.render.volume",
    "montage": "voxspec.render.montage",
    "ortho": "voxspec.render.ortho",
}


def renderer(kind: str):
    """The ``draw`` function of a panel kind (modules are imported on first use)."""
    return importlib.import_module(RENDERERS[kind]).draw
