"""YAML read through pyyaml's composer, so every value keeps its file, line and column.

pyyaml's constructors drop positions and silently keep the last of two equal keys;
the composer keeps both, so this module turns its node graph into a small tree of
located values and reports a duplicate key (two ``"1":`` entries in a menu) as an error.
Values are kept as the text the admin wrote; the loader decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import yaml

from ivr.dialplan.errors import Problem


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a value starts: 1-based line and column in a named file."""

    file: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class YScalar:
    """A scalar as written, with the short YAML tag it resolved to (str, int, null, ...)."""

    value: str
    tag: str
    mark: Mark


@dataclass(frozen=True, slots=True)
class YList:
    """A YAML sequence."""

    items: tuple[YNode, ...]
    mark: Mark


@dataclass(frozen=True, slots=True)
class YMap:
    """A YAML mapping with scalar keys, in file order, without duplicate keys."""

    items: tuple[tuple[YScalar, YNode], ...]
    mark: Mark

    def get(self, key: str) -> YNode | None:
        """The value under ``key``, or None."""
        for name, value in self.items:
            if name.value == key:
                return value
        return None


YNode: TypeAlias = YScalar | YList | YMap

_TAG_PREFIX = "tag:yaml.org,2002:"


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Converter:
    """Walks the composed node graph once, collecting problems instead of stopping."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._active: set[int] = set()  # nodes on the current path: a recursive alias loops

    def problem(self, node: yaml.Node, path: str, message: str) -> None:
        mark = _mark(self.file, node)
        self.problems.append(Problem(mark.file, mark.line, mark.column, path, message))

    def convert(self, node: yaml.Node, path: str) -> YNode | None:
        if id(node) in self._active:
            self.problem(node, path, "recursive alias")
            return None
        self._active.add(id(node))
        try:
            return self._convert(node, path)
        finally:
            self._active.discard(id(node))

    def _convert(self, node: yaml.Node, path: str) -> YNode | None:
        mark = _mark(self.file, node)
        if isinstance(node, yaml.ScalarNode):
            tag = node.tag.removeprefix(_TAG_PREFIX)
            return YScalar(str(node.value), tag, mark)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                converted = self.convert(child, _join(path, str(index)))
                if converted is not None:
                    items.append(converted)
            return YList(tuple(items), mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, mark)
        self.problem(node, path, "unsupported YAML node")  # pragma: no cover - pyyaml has 3 kinds
        return None

    def _mapping(self, node: yaml.MappingNode, path: str, mark: Mark) -> YMap:
        seen: dict[str, YScalar] = {}
        items: list[tuple[YScalar, YNode]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, path, "a key must be a plain value, not a list or mapping")
                continue
            key = YScalar(
                str(key_node.value),
                key_node.tag.removeprefix(_TAG_PREFIX),
                _mark(self.file, key_node),
            )
            key_path = _join(path, key.value)
            first = seen.get(key.value)
            if first is not None:
                self.problem(
                    key_node,
                    key_path,
                    f"duplicate key {key.value!r} (first at line {first.mark.line})",
                )
                continue
            seen[key.value] = key
            value = self.convert(value_node, key_path)
            if value is not None:
                items.append((key, value))
        return YMap(tuple(items), mark)


def parse_yaml(text: str, file: str) -> tuple[YNode | None, tuple[Problem, ...]]:
    """Parse one YAML document into located values; a syntax error becomes a problem.

    An empty document gives ``None`` and no problem.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        message = " ".join(part for part in (error.context, error.problem) if part)
        return None, (Problem(file, line, column, "", f"YAML syntax error: {message}"),)
    except yaml.YAMLError as error:
        return None, (Problem(file, 1, 1, "", f"YAML error: {error}"),)
    if node is None:
        return None, ()
    converter = _Converter(file)
    return converter.convert(node, ""), tuple(converter.problems)
