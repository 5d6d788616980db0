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
from dataclasses import dataclass, replace
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
        message = f"cannot read the spec: {error.strerror}"
        raise UserError(Problem(message, ("spec",), shown, 1, 1)) from None
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
    """The spec model of ``data``; every problem found is raised in one ``UserError``."""
    if not isinstance(data, dict):
        raise UserError(
            Problem(
                "a spec is a mapping of keys (voxspec, volumes, figure, panels)",
                (),
                *positions.locate(()),
            )
        )
    spec, problems = None, []
    try:
        spec = model.Spec.model_validate(data)
    except ValidationError as error:
        problems = _merge([_problem(e, data, positions) for e in error.errors()])
    cross = UserError(_cross_check(data)).located(positions.locate).problems if data else []
    problems = sorted(problems + cross, key=lambda p: (p.line or 0, p.column or 0))
    if problems:
        raise UserError(problems)
    return spec


def _merge(problems: list[Problem]) -> list[Problem]:
    """One line per place: the alternatives of a union ("'value' or a number") joined."""
    merged: dict[Where, Problem] = {}
    for problem in problems:
        before = merged.get(problem.where)
        if before is None:
            merged[problem.where] = problem
        elif problem.message not in before.message:
            merged[problem.where] = replace(
                before, message=f"{before.message}; or {problem.message}"
            )
    return list(merged.values())


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# --------------------------------------------------------------- pydantic errors


def _data_path(loc: tuple, data: Any) -> Where:
    """Pydantic's error location, less the union tags it inserts (``'voxels'``...)."""
    path, node = [], data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
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
    if kind == "missing" and isinstance(loc[-1], int):
        message = f"too few values: item {loc[-1]} is missing"
    elif kind == "missing":
        where = (*_data_path(loc[:-1], data), loc[-1])
        message = f"missing required key {loc[-1]!r}"
    elif isinstance(_raw(data, where), str) and _raw(data, where) in model.STEP_MODELS:
        name = _raw(data, where)  # a bare step name that needs a value
        message = f"step {name!r} needs a value, like '- {name}: ...'"
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


def _raw(data: Any, where: Where) -> Any:
    for part in where:
        data = data[part]
    return data


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
    members = _members(annotation)
    if len(members) > 1:  # a tagged union: pydantic puts the chosen tag in the location
        for member in members:
            if (
                isinstance(member, type)
                and issubclass(member, BaseModel)
                and _tag_of(member) == part
            ):
                return member
    for member in members:
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            if part in member.model_fields:
                return member.model_fields[part].annotation
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


def _cross_check(data: dict) -> list[Problem]:
    """Checks across keys (volume ids, colormap and colour names, grid and size) made on
    the raw data, so that they are reported together with the model's own problems."""
    import matplotlib  # only its names: the spec layer never draws
    from matplotlib.colors import is_color_like

    volumes = data.get("volumes")
    volume_ids = list(volumes) if isinstance(volumes, dict) else None
    panels = data.get("panels") if isinstance(data.get("panels"), list) else []
    problems = []

    def check_volume(where, vid):
        if isinstance(vid, str) and volume_ids is not None and vid not in volume_ids:
            problems.append(Problem(f"no volume {vid!r}{_suggest(vid, volume_ids)}", where))

    def check_colormap(where, name):
        if isinstance(name, str) and name not in matplotlib.colormaps:
            names = sorted(matplotlib.colormaps)
            problems.append(Problem(f"unknown colormap {name!r}{_suggest(name, names)}", where))

    def check_colour(where, colour):
        if isinstance(colour, str) and not is_color_like(colour):
            problems.append(
                Problem(f"{colour!r} is not a colour (a name like 'gray' or '#1f77b430')", where)
            )

    for i, panel in enumerate(panels):
        if not isinstance(panel, dict):
            continue
        parts = [(("panels", i), panel)]
        if isinstance(panel.get("overlay"), dict):
            parts.append((("panels", i, "overlay"), panel["overlay"]))
        for at, part in parts:
            check_volume((*at, "volume"), part.get("volume"))
            check_colormap((*at, "colormap"), part.get("colormap"))
            for key in ("edgecolor", "color"):
                colour = part.get(key)
                table = colour.items() if isinstance(colour, dict) else [(None, colour)]
                for value, c in table:
                    check_colour((*at, key) if value is None else (*at, key, value), c)
    problems += _check_figure(data.get("figure", {}), len(panels))
    return problems


def _check_figure(raw: Any, panel_count: int) -> list[Problem]:
    from voxspec.layout import figure_size_px, grid_shape

    if panel_count == 0:
        return []
    try:
        figure = model.Figure.model_validate(raw)
    except ValidationError:
        return []  # the model's own errors say what is wrong
    problems = []
    rows, cols = grid_shape(figure, panel_count)
    if rows * cols < panel_count:
        message = f"a {rows}x{cols} grid has {rows * cols} places for {panel_count} panels"
        problems.append(Problem(message, ("figure", "grid")))
    width_px, height_px = figure_size_px(figure, panel_count)
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
