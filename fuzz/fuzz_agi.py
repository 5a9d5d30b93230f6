"""Fuzz the FastAGI parsers: the environment block (whole and line by line) and the replies.

Run: ``python fuzz/fuzz_agi.py -atheris_runs=100000`` (any libFuzzer flag works). A crash is
any exception other than ``AgiProtocolError``, or the two ways of parsing disagreeing.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from ivr.agi._parser import AgiReplyParser, EnvironmentParser, parse_environment, parse_reply
    from ivr.agi.errors import AgiProtocolError


def environment_by_lines(block: bytes) -> object:
    """The environment as the server reads it: one line at a time, up to the blank line."""
    parser = EnvironmentParser(max_bytes=len(block) + 1)
    for line in block.splitlines(keepends=True):
        found = parser.feed_line(line)
        if found is not None:
            return dict(found)
    return None


def test_one_input(data: bytes) -> None:
    """One fuzz input: parsed as an environment, and as a stream of reply lines."""
    try:
        whole = dict(parse_environment(data))
    except AgiProtocolError:
        whole = None
    try:
        by_lines = environment_by_lines(data)
    except AgiProtocolError:
        by_lines = None
    if whole is not None and by_lines is not None and whole != by_lines:
        raise AssertionError(f"whole and line-by-line parses differ: {whole!r} {by_lines!r}")
    replies = AgiReplyParser()
    for line in data.splitlines(keepends=True):
        with contextlib.suppress(AgiProtocolError):
            parse_reply(line)
        try:
            replies.feed_line(line)
        except AgiProtocolError:
            replies = AgiReplyParser()  # the server drops the connection; start afresh


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
