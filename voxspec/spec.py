"""Spec file -> validated model, with every problem located in the YAML file.

All problems of a spec are collected and raised together as one ``UserError``:
YAML syntax, then the model's own validation, then cross-references (volume ids,
colormap and colour names) that a single field cannot check by itself.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from voxspec import model
from voxspec.errors import Problem, UserError, Where
from voxspec.yamlpos import Positions, load_yaml


@dataclass(frozen=True)
class SpecDocument:
    """A validated spec and what it was made from."""

    path: Path
    spec: model.Spec
    raw: bytes
    positions: Positions

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def locate(self, where: Where):
        return self.positions.locate(where)

    def error(self, error: UserError) -> UserError:
        """``error`` with its problems placed in this spec file."""
        return error.located(self.locate)


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_spec(path: str | Path) -> SpecDocument:
    """Read, parse and validate one spec file. Raises ``UserError`` listing every problem."""
    path = Path(path)
    shown = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UserError(Problem(f"cannot read the spec: {error.strerror}", ("spec",), shown, 1, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            Problem(f"the spec is not UTF-8 text ({error.reason})", ("spec",), shown, 1, 1)
        ) from None
    data, positions = load_yaml(text, shown)
    spec = validate_data(data, positions)
    return SpecDocument(path, spec, raw, positions)


def validate_data(data: Any, positions: Positions) -> model.Spec:
    if not isinstance(data, dict):
        raise UserError(
            Problem(
                "a spec is a mapping of keys (voxspec, volumes, figure, panels)",
                (),
                *positions.locate(()),
            )
        )
    try:
        spec = model.Spec.model_validate(data)
    except ValidationError as error:
        problems = [_problem(e, data, positions) for e in error.errors()]
        raise UserError(_unique(problems)) from None
    problems = _cross_check(spec)
    if problems:
        raise UserError(problems).located(positions.locate)
    return spec


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# --------------------------------------------------------------- pydantic errors


def _data_path(loc: tuple, data: Any) -> Where:
    """Pydantic's error location, less the union tags it inserts (``'voxels'``...)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
    return tuple(path)


def _suggest(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(str(word), allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; allowed: {', '.join(allowed)}" if allowed else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(error: dict, data: Any, positions: Positions) -> Problem:
    kind, loc, message = error["type"], error["loc"], error["msg"]
    where = _data_path(loc, data)
    value = error.get("input")
    if kind == "extra_forbidden":
        key = loc[-1]
        where = (*_data_path(loc[:-1], data), key)
        allowed = _fields_at(loc[:-1])
        message = f"unknown key {key!r}{_suggest(key, allowed)}"
        return Problem(message, where, *positions.locate(where, key=True))
    if kind == "missing":
        where = (*_data_path(loc[:-1], data), loc[-1])
        message = f"missing required key {loc[-1]!r}"
    elif kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        expected = [t.strip(" '") for t in error["ctx"]["expected_tags"].split(",")]
        if "kind" in error["ctx"]["discriminator"]:
            message = f"unknown panel kind {tag!r}{_suggest(tag, expected)}"
            where = (*where, "kind")
        else:
            message = f"unknown step {tag!r}{_suggest(tag, expected)}"
    elif kind == "union_tag_not_found":
        if "kind" in error["ctx"]["discriminator"]:
            message = f"missing required key 'kind' (one of {', '.join(model.PANEL_KINDS)})"
        else:
            message = (
                "a step is a name or a mapping with one key, like '- normalize' or "
                f"'- gamma: 0.4'; got {_short(value)}"
            )
    else:
        message = message.removeprefix("Value error, ")
        if not isinstance(value, (dict, list)) and kind != "value_error":
            message += f", got {_short(value)}"
    return Problem(message, where, *positions.locate(where))


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _fields_at(loc: tuple) -> list[str]:
    """The keys allowed at ``loc`` (a pydantic location), for 'did you mean' hints."""
    node: Any = model.Spec
    for part in loc:
        node = _child(_unwrap(node), part)
        if node is None:
            return []
    node = _unwrap(node)
    for candidate in _members(node):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def _members(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _child(annotation: Any, part: Any) -> Any:
    for member in _members(annotation):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            if part in member.model_fields:
                return member.model_fields[part].annotation
            if _tag_of(member) == part:
                return member
        elif origin in (list, tuple) and isinstance(part, int):
            return typing.get_args(member)[0]
        elif origin is dict and isinstance(part, str):
            return typing.get_args(member)[1]
    return None


def _tag_of(member: type[BaseModel]) -> str | None:
    kind = member.model_fields.get("kind")
    if kind is not None:
        return typing.get_args(kind.annotation)[0]
    names = list(member.model_fields)
    return names[0] if len(names) == 1 else None


# --------------------------------------------------------------- cross-checks


def _cross_check(spec: model.Spec) -> list[Problem]:
    import matplotlib  # the spec layer needs only matplotlib's names, never its drawing
    from matplotlib.colors import is_color_like

    colormaps = sorted(matplotlib.colormaps)
    volume_ids = list(spec.volumes)
    problems = []

    def check_volume(where, vid):
        if vid not in spec.volumes:
            problems.append(Problem(f"no volume {vid!r}{_suggest(vid, volume_ids)}", where))

    def check_colormap(where, name):
        if name not in matplotlib.colormaps:
            problems.append(Problem(f"unknown colormap {name!r}{_suggest(name, colormaps)}", where))

    def check_colour(where, colour):
        if not is_color_like(colour):
            problems.append(
                Problem(f"{colour!r} is not a colour (a name like 'gray' or '#1f77b430')", where)
            )

    for i, panel in enumerate(spec.panels):
        at = ("panels", i)
        check_volume((*at, "volume"), panel.volume)
        check_colormap((*at, "colormap"), panel.colormap)
        overlay = getattr(panel, "overlay", None)
        if overlay is not None:
            check_volume((*at, "overlay", "volume"), overlay.volume)
            check_colormap((*at, "overlay", "colormap"), overlay.colormap)
        for key in ("edgecolor", "color"):
            colour = getattr(panel, key, None)
            if isinstance(colour, str):
                check_colour((*at, key), colour)
            elif isinstance(colour, dict):
                for value, c in colour.items():
                    check_colour((*at, key, value), c)
    figure = spec.figure
    rows, cols = figure.grid or (1, len(spec.panels))
    if rows * cols < len(spec.panels):
        problems.append(
            Problem(
                f"a {rows}x{cols} grid has {rows * cols} places for {len(spec.panels)} panels",
                ("figure", "grid"),
            )
        )
    from voxspec.layout import figure_size_px

    width_px, height_px = figure_size_px(spec)
    if max(width_px, height_px) > model.MAX_PIXELS_PER_SIDE:
        problems.append(
            Problem(
                f"the figure would be {width_px}x{height_px} px; at most "
                f"{model.MAX_PIXELS_PER_SIDE} px a side (check width, height, unit and dpi)",
                ("figure",),
            )
        )
    return problems


def json_schema() -> dict:
    """The JSON Schema of the spec language as users write it (bare step names included)."""
    schema = model.Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "voxspec figure spec, version 1"
    steps = schema["$defs"]["Volume"]["properties"]["steps"]["items"]
    union = steps.get("oneOf") or steps.get("anyOf")
    union.append({"type": "string", "enum": list(model.BARE_STEPS)})
    return schema


