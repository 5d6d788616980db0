"""The one small error family of voxspec.

``UserError`` is everything the user can fix (spec, data, arguments): it is printed as
one located line per problem and gives exit code 2. ``InternalError`` is a bug in voxspec.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

Where = tuple[str | int, ...]


def format_where(where: Sequence[str | int]) -> str:
    """('panels', 0, 'view') -> 'panels[0].view'."""
    text = ""
    for part in where:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with where it is: a path inside the spec and, once known, its place."""

    message: str
    where: Where = ()
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def format(self) -> str:
        place = self.file or "<spec>"
        if self.line is not None:
            place += f":{self.line}:{self.column or 1}"
        return f"{place}: {format_where(self.where) or '<root>'}: {self.message}"


class VoxspecError(Exception):
    """Base of every error voxspec raises on purpose."""


class UserError(VoxspecError):
    """The user's input is wrong. Carries one or more located problems; exit code 2."""

    exit_code = 2

    def __init__(self, problems: str | Problem | Iterable[Problem], where: Where = ()):
        if isinstance(problems, str):
            problems = [Problem(problems, tuple(where))]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))

    def at(self, where: Where) -> UserError:
        """Give problems that do not know where they are the location ``where``."""
        return UserError([p if p.where else replace(p, where=tuple(where)) for p in self.problems])

    def within(self, prefix: Where) -> UserError:
        """Place problems that are relative to a part of the spec (a panel) inside it."""
        return UserError(
            [
                p if p.line is not None else replace(p, where=(*prefix, *p.where))
                for p in self.problems
            ]
        )

    def located(self, locate) -> UserError:
        """Fill file/line/column with ``locate(where) -> (file, line, column)``."""
        out = []
        for p in self.problems:
            if p.line is None:
                file, line, column = locate(p.where)
                p = replace(p, file=p.file or file, line=line, column=column)
            out.append(p)
        return UserError(out)


class InternalError(VoxspecError):
    """A bug in voxspec, not in the user's input."""
