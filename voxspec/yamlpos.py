"""YAML loading that remembers where every key and value stands in the file.

PyYAML's composer gives nodes with line/column marks; we build plain Python data from
them ourselves, keeping a map from each path (``("panels", 0, "view")``) to its place,
so that any later error can point at the exact line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from voxspec.errors import Problem, UserError, Where

MAX_NODES = 200_000  # a spec is small; this stops "billion laughs" alias bombs
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Positions:
    """1-based (line, column) of each value and each mapping key, by path."""

    file: str
    values: dict[Where, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Where, tuple[int, int]] = field(default_factory=dict)

    def locate(self, where: Where, *, key: bool = False) -> tuple[str, int, int]:
        """The place of ``where``, else of its nearest enclosing path that exists."""
        where = tuple(where)
        if key and where in self.keys:
            return (self.file, *self.keys[where])
        while where not in self.values and where:
            where = where[:-1]
        return (self.file, *self.values.get(where, (1, 1)))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_yaml(text: str, file: str) -> tuple[object, Positions]:
    """Parse ``text``; return its data and positions. Syntax errors become UserErrors."""
    positions = Positions(file)
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise UserError(
                Problem("the file is empty; a spec starts with 'voxspec: 1'", (), file, 1, 1)
            )
        problems: list[Problem] = []
        budget = [MAX_NODES]
        data = _build(loader, node, (), positions, problems, budget)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(str(p) for p in (error.context, error.problem) if p)
        raise UserError(
            Problem(f"invalid YAML: {message}", ("yaml",), file, mark.line + 1, mark.column + 1)
        ) from None
    except yaml.YAMLError as error:
        raise UserError(Problem(f"invalid YAML: {error}", ("yaml",), file, 1, 1)) from None
    finally:
        loader.dispose()
    if problems:
        raise UserError(problems)
    return data, positions


def _build(loader, node, where, positions, problems, budget):
    budget[0] -= 1
    if budget[0] < 0:
        raise UserError(
            Problem(f"the document has more than {MAX_NODES} nodes", where, positions.file, 1, 1)
        )
    positions.values.setdefault(where, _mark(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve YAML merge keys (<<)
        result = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                line, col = _mark(key_node)
                problems.append(
                    Problem("a key must be a plain value", where, positions.file, line, col)
                )
                continue
            if key in result:
                line, col = _mark(key_node)
                problems.append(
                    Problem(f"duplicate key {key!r}", (*where, key), positions.file, line, col)
                )
                continue
            positions.keys[(*where, key)] = _mark(key_node)
            result[key] = _build(loader, value_node, (*where, key), positions, problems, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*where, i), positions, problems, budget)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
