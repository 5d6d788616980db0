"""voxspec: declarative, reproducible publication figures of 3D volumetric data.

The flat public API for Python users::

    import voxspec
    doc = voxspec.load_spec("figspecs/brain-full.yaml")   # validated, located errors
    voxspec.build(["figspecs/brain-full.yaml"], out="outputs")
    voxspec.head_phantom((96, 96, 96))                     # the embedded test data

Names are imported on first use, so ``voxspec build`` on up-to-date figures stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "1.0.0"

_EXPORTS = {
    "load_spec": "voxspec.spec",
    "json_schema": "voxspec.spec",
    "SpecDocument": "voxspec.spec",
    "Spec": "voxspec.model",
    "build_figure": "voxspec.build",
    "read_provenance": "voxspec.provenance",
    "load_source": "voxspec.sources",
    "apply_steps": "voxspec.steps",
    "head_phantom": "voxspec.phantom",
    "VolumeData": "voxspec.volume",
    "VoxspecError": "voxspec.errors",
    "UserError": "voxspec.errors",
    "InternalError": "voxspec.errors",
    "Problem": "voxspec.errors",
}
__all__ = ["__version__", "build", "verify", *_EXPORTS]

# `build` and `verify` share their names with their modules: bind the functions now (both
# modules are light), or importing the module later would leave the module in their place.
from voxspec.build import build  # noqa: E402
from voxspec.verify import verify  # noqa: E402


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'voxspec' has no attribute {name!r}")
