"""The located YAML reader: positions, duplicate keys, syntax errors."""

from __future__ import annotations

import pytest

from ivr.dialplan._yaml import YList, YMap, YScalar, parse_yaml


def test_values_keep_file_line_and_column() -> None:
    """Every scalar, list and mapping knows its 1-based line and column."""
    root, problems = parse_yaml("a:\n  b: [x, 7]\n", "f.yaml")
    assert problems == ()
    assert isinstance(root, YMap)
    inner = root.get("a")
    assert isinstance(inner, YMap)
    items = inner.get("b")
    assert isinstance(items, YList)
    first, second = items.items
    assert isinstance(first, YScalar) and isinstance(second, YScalar)
    assert (first.value, first.mark.line, first.mark.column) == ("x", 2, 7)
    assert (second.value, second.tag, second.mark.column) == ("7", "int", 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k: 1\nk: 2\n", "f.yaml:2:1: k: duplicate key 'k' (first at line 1)"),
        ("m:\n  '1': a\n  1: b\n", "f.yaml:3:3: m.1: duplicate key '1' (first at line 2)"),
        ("a: [1, 2\n", "f.yaml:2:1: YAML syntax error: while parsing a flow sequence "
                       "expected ',' or ']', but got '<stream end>'"),
        ("a: *nothing\n", "f.yaml:1:4: YAML syntax error: found undefined alias 'nothing'"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2:1: YAML syntax error: expected a single document in "
                               "the stream but found another document"),
    ],
)
def test_mistakes_become_located_problems(text: str, expected: str) -> None:
    """Duplicate keys and syntax errors are reported with file, line and column."""
    _, problems = parse_yaml(text, "f.yaml")
    assert [str(p) for p in problems] == [expected]


def test_an_alias_reuses_the_anchored_value() -> None:
    """An anchored list can be reused with an alias, as schedules do for weekdays."""
    root, problems = parse_yaml("a: &d [x]\nb: *d\n", "f.yaml")
    assert problems == ()
    assert isinstance(root, YMap)
    assert root.get("a") == root.get("b")


def test_an_empty_file_is_no_document() -> None:
    """An empty file gives no value and no problem."""
    assert parse_yaml("# only a comment\n", "f.yaml") == (None, ())
