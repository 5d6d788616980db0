"""voxspec: declarative, reproducible publication figures of 3D volumetric data."""

__version__ = "1.0.0"
