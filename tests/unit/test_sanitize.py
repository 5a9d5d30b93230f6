"""Caller data from the network is cleaned before it reaches tickets, logs or commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr import sanitize


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("13900001111", "13900001111"),
        ("+86 139-0000-1111", "+8613900001111"),
        ("<unknown>", ""),
        ("unknown", ""),
        ("139\n0000;1111|${SHELL}", "13900001111"),
        ("1" * 100, "1" * 32),
        ("*31#", "*31#"),
    ],
)
def test_caller_numbers(raw: str, clean: str) -> None:
    """A number keeps its digits and + * # only, bounded in length."""
    assert sanitize.caller_number(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("曹女士", "曹女士"),
        ("欧阳·娜娜", "欧阳·娜娜"),
        ("O'Brien (Mr)", "O'Brien (Mr)"),
        ("张三\nX-Injected: 1", "张三X-Injected 1"),
        ('Evil"|${EXTEN}\\', "EvilEXTEN"),
        ("\u202eabc", "abc"),
        ("  many   spaces\t", "many spaces"),
        ("Cao", "Cao"),
        ("<unknown>", ""),
        ("名" * 100, "名" * 64),
    ],
)
def test_caller_names(raw: str, clean: str) -> None:
    """A name keeps letters, digits and name punctuation; control, quotes, $ and | are dropped."""
    assert sanitize.caller_name(raw) == clean


@given(st.text())
def test_names_never_carry_line_breaks_or_variables(raw: str) -> None:
    """Whatever arrives, a cleaned name has no control character, no ``${`` and no ``|``."""
    clean = sanitize.caller_name(raw)
    assert len(clean) <= sanitize.MAX_NAME_LENGTH
    assert not any(ch in clean for ch in "\r\n\t\x00|$\"\\{}")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("1795380949.3", "1795380949.3"), ("1795380949", ""), ("x.1", ""), ("1.2\n", ""), ("", "")],
)
def test_asterisk_ids(raw: str, clean: str) -> None:
    """Only a well-formed Uniqueid/Linkedid is accepted."""
    assert sanitize.asterisk_id(raw) == clean
