"""The spec language, version 1, as pydantic models.

This module is the whole vocabulary of a figure spec and nothing else: it knows no
YAML, no files and no rendering (it never imports matplotlib). Every model forbids
unknown keys, so a typo is an error instead of a silent default.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

Axis = Literal["x", "y", "z"]
AXES: tuple[Axis, ...] = ("x", "y", "z")
FORMATS = ("png", "pdf", "svg", "tiff")
MAX_PIXELS_PER_SIDE = 20_000  # a 1.7 m print at 300 dpi: anything larger is a typo
MAX_VOXELS = 1024**3  # steps may not ask for grids beyond a gigavoxel


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Number = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Range = tuple[Number, Number]


def _ordered(value: tuple[float, float] | None, what: str = "range") -> Any:
    if value is not None and value[0] >= value[1]:
        raise ValueError(f"{what} must be [low, high] with low < high, got {list(value)}")
    return value


# --------------------------------------------------------------------------- sources


class Source(Strict):
    """Where a volume's voxels come from: exactly one of path, url, builtin, array."""

    path: str | None = Field(None, description="local file, relative to the spec file")
    url: str | None = Field(None, pattern=r"^https?://", description="http(s) address")
    builtin: Literal["head-phantom"] | None = Field(None, description="embedded data")
    array: list[list[list[float]]] | None = Field(None, description="small inline 3D list")
    member: str | None = Field(None, description="member of a zip archive to read")
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$", description="pinned hash")
    shape: tuple[int, int, int] | None = Field(None, description="grid of a builtin")
    frame: int = Field(0, ge=0, description="volume to take from 4D data")

    @field_validator("shape")
    @classmethod
    def _shape_positive(cls, shape):
        if shape is not None:
            if min(shape) < 2:
                raise ValueError(f"every side must be at least 2, got {list(shape)}")
            if math.prod(shape) > MAX_VOXELS:
                raise ValueError(f"{list(shape)} is more than {MAX_VOXELS} voxels")
        return shape

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value):
        return value.lower() if value else value

    @model_validator(mode="after")
    def _one_kind(self):
        given = [k for k in ("path", "url", "builtin", "array") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a source needs exactly one of 'path', 'url', 'builtin', 'array'"
                + (f", got {', '.join(map(repr, given))}" if given else "")
            )
        if (self.member or self.sha256) and not (self.path or self.url):
            raise ValueError("'member' and 'sha256' go with 'path' or 'url'")
        if self.shape is not None and not self.builtin:
            raise ValueError("'shape' goes with 'builtin'")
        if self.array is not None:
            rows = {len(r) for plane in self.array for r in plane}
            planes = {len(plane) for plane in self.array}
            if len(rows) != 1 or len(planes) != 1 or 0 in rows | planes:
                raise ValueError("'array' must be a non-empty 3D list with equal-length rows")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("path", "url", "builtin", "array") if getattr(self, k) is not None)


# ----------------------------------------------------------------------------- steps


class Normalize(Strict):
    normalize: None = Field(None, description="min-max rescale to [0, 1]")


class Offset(Strict):
    offset: Number = Field(description="add this value")


class Scale(Strict):
    scale: Number = Field(description="multiply by this value")


class Clip(Strict):
    clip: Range = Field(description="[low, high]")

    @field_validator("clip")
    @classmethod
    def _ordered(cls, v):
        if v[0] > v[1]:
            raise ValueError(f"clip must be [low, high] with low <= high, got {list(v)}")
        return v


class Gamma(Strict):
    gamma: Positive = Field(description="raise to this power (> 0)")


class Contrast(Strict):
    contrast: Number = Field(description="(v - mean) * f + mean")


class Threshold(Strict):
    threshold: Number = Field(description="values below it become 0")


class Resize(Strict):
    resize: (
        Annotated[int, Field(ge=1)]
        | tuple[
            Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]
        ]
    ) = Field(description="n or [nx, ny, nz]: resample to that grid (anti-aliased)")

    @property
    def shape(self) -> tuple[int, int, int]:
        r = self.resize
        return (r, r, r) if isinstance(r, int) else tuple(r)

    @field_validator("resize")
    @classmethod
    def _not_absurd(cls, v):
        shape = (v, v, v) if isinstance(v, int) else v
        if math.prod(shape) > MAX_VOXELS:
            raise ValueError(f"{v} is more than {MAX_VOXELS} voxels")
        return v


Bound = tuple[int | None, int | None]


class CropBox(Strict):
    x: Bound | None = None
    y: Bound | None = None
    z: Bound | None = None


class Crop(Strict):
    crop: CropBox = Field(description="{x: [start, stop], ...}, Python slice semantics")


class Flip(Strict):
    flip: list[Axis] = Field(min_length=1, description="axes to reverse")


class CutPlane(Strict):
    normal: tuple[Number, Number, Number]
    offset: Number

    @field_validator("normal")
    @classmethod
    def _nonzero(cls, v):
        if not any(v):
            raise ValueError("the normal must not be [0, 0, 0]")
        return v


class Cut(Strict):
    cut: CutPlane = Field(description="zero every voxel with a*i + b*j + c*k >= offset")


class Canonical(Strict):
    canonical: None = Field(None, description="reorient to RAS+ with the file's affine")


class ReplaceNan(Strict):
    replace_nan: Number = Field(description="replace NaN and infinite values by this value")


STEP_MODELS: dict[str, type[Strict]] = {
    next(iter(m.model_fields)): m
    for m in (
        Normalize,
        Offset,
        Scale,
        Clip,
        Gamma,
        Contrast,
        Threshold,
        Resize,
        Crop,
        Flip,
        Cut,
        Canonical,
        ReplaceNan,
    )
}
BARE_STEPS = tuple(
    name for name, m in STEP_MODELS.items() if not m.model_fields[name].is_required()
)


def _step_name(value: Any) -> str | None:
    if isinstance(value, BaseModel):  # when serialising a validated step
        return next(iter(type(value).model_fields))
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    return None


def _bare_to_mapping(value: Any) -> Any:
    # `- normalize` is shorthand for `- normalize: null`
    return {value: None} if isinstance(value, str) else value


Step = Annotated[
    Union[tuple(Annotated[m, Tag(name)] for name, m in STEP_MODELS.items())],  # noqa: UP007
    Discriminator(_step_name),
    BeforeValidator(_bare_to_mapping),
]


class Volume(Strict):
    source: Source
    steps: list[Step] = Field(default_factory=list)


# ---------------------------------------------------------------------------- panels

Colormap = str


class View(Strict):
    elevation: Number = 30.0
    azimuth: Number = 320.0
    roll: Number = 0.0


class Overlay(Strict):
    volume: str
    colormap: Colormap = "hot"
    threshold: Number | None = None
    range: Range | None = None
    opacity: Annotated[float, Field(gt=0, le=1)] = 1.0
    colorbar: bool = True
    interpolation: Literal["linear", "nearest"] = Field(
        "linear",
        description="how an overlay on another grid is resampled: linear (maps) or "
        "nearest (labels)",
    )

    _check_range = field_validator("range")(lambda cls, v: _ordered(v))


class PanelBase(Strict):
    volume: str
    title: str | None = None
    colormap: Colormap = "viridis"


class SlicePanel(PanelBase):
    kind: Literal["slice"]
    axis: Axis = "z"
    index: int | None = Field(None, description="voxel index, negative from the end")
    range: Range | None = None
    colorbar: bool = True
    overlay: Overlay | None = None

    _check_range = field_validator("range")(lambda cls, v: _ordered(v))


class HistogramPanel(PanelBase):
    kind: Literal["histogram"]
    bins: int = Field(50, ge=1, le=10_000)
    density: bool = True
    range: Range | None = None
    log: bool = False

    _check_range = field_validator("range")(lambda cls, v: _ordered(v))


class Scene3D(PanelBase):
    """Keys shared by the 3D panels, which draw into matplotlib's 3D axes."""

    view: View = Field(default_factory=View)
    limits: tuple[Positive, Positive, Positive] | None = Field(
        None, description="upper x, y, z axis limits (the tutorial fixes 2 * its grid size)"
    )
    cube: Positive = Field(2.0, description="edge length of one voxel in axis units")
    axes: bool = True
    grid: bool = True
    range: Range | None = Field(None, description="values mapped to the colormap's ends")
    colorbar: bool = False
    colorbar_label: str | None = None

    _check_range = field_validator("range")(lambda cls, v: _ordered(v))


class VoxelsPanel(Scene3D):
    kind: Literal["voxels"]
    opacity: Literal["value"] | Annotated[float, Field(gt=0, le=1)] = Field(
        "value",
        description="'value': alpha = the voxel's value (as the tutorial), or a number; "
        "with one `color` its alpha is multiplied by this, a {value: colour} table keeps "
        "each colour's own alpha",
    )
    color: str | dict[float, str] | None = Field(
        None, description="one colour for every voxel, or a {value: colour} table for labels"
    )
    edgecolor: str | None = None
    shade: bool = False
    gaps: bool = Field(False, description="true: leave a gap of one voxel between voxels")
    faces: Literal["all", "outer"] = Field(
        "all",
        description="all: every face of every voxel (the tutorial's explode trick); "
        "outer: only faces between a drawn and an empty voxel (matplotlib's default); "
        "with gaps every face is outer",
    )


class VolumePanel(Scene3D):
    kind: Literal["volume"]
    opacity: Positive = Field(1.0, description="scale on the per-voxel opacity")
    mode: Literal["composite", "mip"] = Field(
        "composite", description="emission-absorption compositing, or maximum intensity"
    )


class MontagePanel(PanelBase):
    kind: Literal["montage"]
    axis: Axis = "z"
    count: int = Field(9, ge=1, le=400)
    indices: list[int] | None = Field(None, min_length=1, max_length=400)
    columns: int | None = Field(None, ge=1)
    range: Range | None = None
    colorbar: bool = True
    labels: bool = Field(True, description="print each slice's index")
    overlay: Overlay | None = None

    _check_range = field_validator("range")(lambda cls, v: _ordered(v))


class OrthoPanel(PanelBase):
    kind: Literal["ortho"]
    at: tuple[int, int, int] | None = Field(None, description="voxel indices; default centre")
    at_world: tuple[Number, Number, Number] | None = Field(
        None, description="world (scanner, mm) coordinates, through the affine"
    )
    crosshair: bool = True
    range: Range | None = None
    colorbar: bool = True
    labels: bool = Field(True, description="print each view's slice index")
    overlay: Overlay | None = None

    _check_range = field_validator("range")(lambda cls, v: _ordered(v))

    @model_validator(mode="after")
    def _one_point(self):
        if self.at is not None and self.at_world is not None:
            raise ValueError("give 'at' or 'at_world', not both")
        return self


Panel = Annotated[
    Union[  # noqa: UP007
        SlicePanel,
        HistogramPanel,
        VoxelsPanel,
        VolumePanel,
        MontagePanel,
        OrthoPanel,
    ],
    Field(discriminator="kind"),
]
PANEL_KINDS = ("slice", "histogram", "voxels", "volume", "montage", "ortho")


# ---------------------------------------------------------------------------- figure

UNIT_CM = {"cm": 1.0, "mm": 0.1, "in": 2.54}

# Journal column widths (cm) and the font size (pt) that prints well at that width.
PRESETS: dict[str, tuple[float, float]] = {
    "single-column": (8.5, 7.0),
    "one-and-half-column": (11.4, 7.0),
    "double-column": (17.8, 8.0),
}


class Figure(Strict):
    width: Positive | None = Field(None, description="default 12 cm, or the preset's width")
    height: Positive | None = Field(None, description="default: square panels")
    unit: Literal["cm", "mm", "in"] = "cm"
    dpi: int = Field(300, ge=50, le=2400)
    formats: list[Literal["png", "pdf", "svg", "tiff"]] = Field(["png"], min_length=1)
    grid: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = None
    panel_labels: bool = False
    font_size: Positive | None = Field(None, description="points; default 8 or the preset's")
    preset: Literal["single-column", "one-and-half-column", "double-column"] | None = None
    preflight: bool = False

    @field_validator("formats")
    @classmethod
    def _unique(cls, v):
        return list(dict.fromkeys(v))


NAME_PATTERN = r"^[A-Za-z0-9._-]+$"


class Spec(Strict):
    voxspec: Literal[1] = Field(description="spec language version")
    name: str | None = Field(None, pattern=NAME_PATTERN, description="default: the file stem")
    title: str | None = None
    volumes: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")], Volume] = Field(min_length=1)
    figure: Figure = Field(default_factory=Figure)
    panels: list[Panel] = Field(min_length=1)
