"""Typed readers over located YAML values that record problems instead of raising.

The loader reads a whole dialplan with one :class:`Reader`, so every mistake in every
file is reported at once; each reader returns None where the value was unusable.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeVar

from ivr.dialplan._yaml import Mark, YList, YMap, YNode, YScalar
from ivr.dialplan.errors import Problem, Severity

E = TypeVar("E", bound=enum.Enum)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


@dataclass(frozen=True, slots=True)
class Reference:
    """A use of one configured object by another, checked once everything is read."""

    kind: str  # "menu", "queue", "prompt", "department", "emergency", "schedule", "language"
    target: str
    mark: Mark
    path: str
    note: str = ""  # said in the error, e.g. "the default announcement"


def join(path: str, key: str) -> str:
    """The dotted key path of ``key`` under ``path``."""
    return f"{path}.{key}" if path else key


class Reader:
    """Collects problems and references while values are read."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.references: list[Reference] = []

    def report(self, mark: Mark, path: str, message: str, severity: Severity = "error") -> None:
        """Record a problem at ``mark``."""
        self.problems.append(Problem(mark.file, mark.line, mark.column, path, message, severity))

    def refer(self, kind: str, target: str, mark: Mark, path: str, note: str = "") -> None:
        """Record that the value at ``path`` names the ``kind`` object ``target``."""
        self.references.append(Reference(kind, target, mark, path, note))

    def mapping(self, node: YNode, path: str) -> YMap | None:
        """``node`` as a mapping, or a problem."""
        if isinstance(node, YMap):
            return node
        if isinstance(node, YScalar) and node.tag == "null":
            return YMap((), node.mark)  # "queues:" with nothing under it is an empty section
        self.report(node.mark, path, f"expected a mapping, found {_describe(node)}")
        return None

    def fields(
        self, node: YMap, path: str, required: Collection[str], optional: Collection[str]
    ) -> bool:
        """Report unknown and missing keys of ``node``; True if no required key is missing.

        An unknown key does not stop the reading of the others, so their mistakes show too.
        """
        ok = True
        allowed = [*required, *optional]
        for key, _ in node.items:
            if key.value not in allowed:
                expected = ", ".join(allowed)
                self.report(
                    key.mark,
                    join(path, key.value),
                    f"unknown key {key.value!r} (expected one of: {expected})",
                )
        for name in required:
            if node.get(name) is None:
                self.report(node.mark, path, f"missing required key {name!r}")
                ok = False
        return ok

    def text(self, node: YNode, path: str) -> str | None:
        """A non-empty scalar as written (``12345`` and ``"12345"`` read the same)."""
        if isinstance(node, YScalar) and node.tag != "null" and node.value.strip():
            return node.value.strip()
        self.report(node.mark, path, f"expected a text value, found {_describe(node)}")
        return None

    def ident(self, node: YNode, path: str) -> str | None:
        """An id: letters, digits, ``_``, ``-`` and ``.``, starting with a letter or digit."""
        value = self.text(node, path)
        if value is not None and not _ID.match(value):
            self.report(
                node.mark, path, f"{value!r} is not a valid id (letters, digits, '_', '-', '.')"
            )
            return None
        return value

    def ident_key(self, key: YScalar, path: str) -> str | None:
        """A mapping key used as an id."""
        return self.ident(key, path)

    def integer(self, node: YNode, path: str, minimum: int) -> int | None:
        """A whole number no smaller than ``minimum``."""
        if isinstance(node, YScalar) and node.tag == "int":
            try:
                value = int(node.value, 0)
            except ValueError:
                value = None
            if value is not None and value >= minimum:
                return value
            if value is not None:
                self.report(node.mark, path, f"must be at least {minimum}, found {value}")
                return None
        self.report(node.mark, path, f"expected a whole number, found {_describe(node)}")
        return None

    def seconds(self, node: YNode, path: str) -> float | None:
        """A positive number of seconds (``5`` or ``2.5``)."""
        if isinstance(node, YScalar) and node.tag in ("int", "float"):
            try:
                value = float(node.value)
            except ValueError:
                value = None
            if value is not None and 0 < value <= 600:
                return value
        self.report(node.mark, path, f"expected seconds between 0 and 600, found {_describe(node)}")
        return None

    def texts(self, node: YNode, path: str) -> tuple[tuple[str, YScalar], ...] | None:
        """One text or a list of texts, each with its own location."""
        if isinstance(node, YList):
            found: list[tuple[str, YScalar]] = []
            for index, item in enumerate(node.items):
                value = self.text(item, join(path, str(index)))
                if value is not None and isinstance(item, YScalar):
                    found.append((value, item))
            return tuple(found)
        value = self.text(node, path)
        if value is None or not isinstance(node, YScalar):
            return None
        return ((value, node),)

    def choice(self, node: YNode, path: str, enum_type: type[E]) -> E | None:
        """One of an enum's values."""
        value = self.text(node, path)
        if value is None:
            return None
        for member in enum_type:
            if member.value == value:
                return member
        options = ", ".join(str(member.value) for member in enum_type)
        self.report(node.mark, path, f"{value!r} is not one of: {options}")
        return None


def _describe(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YList):
        return "a list"
    if node.tag == "null":
        return "nothing"
    return f"{node.value!r}"
