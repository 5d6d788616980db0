"""The one in-memory form of a volume that every stage after loading works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class VolumeData:
    """A 3D float32 array with its voxel-to-world affine (mm), and where it came from."""

    data: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    sha256: str | None = None  # of the bytes actually read; None for builtin/array data

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape
