"""Command builders: the exact recorded lines, and no way for a value to start a second command."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ivr.agi import commands, quote

# Each builder call and the command line Asterisk received in the recordings.
RECORDED = [
    (commands.answer(), b"ANSWER\n"),
    (commands.get_variable("HOTLINE_DIALED"), b"GET VARIABLE HOTLINE_DIALED\n"),
    (commands.get_variable("CALLERID(name)"), b"GET VARIABLE CALLERID(name)\n"),
    (commands.get_variable("SIP_HEADER(Diversion)"), b"GET VARIABLE SIP_HEADER(Diversion)\n"),
    (
        commands.get_full_variable("${CALLERID(num)}|${REDIRECTING(from-num)}|${CALLERID(dnid)}"),
        b'GET FULL VARIABLE "${CALLERID(num)}|${REDIRECTING(from-num)}|${CALLERID(dnid)}"\n',
    ),
    (
        commands.stream_file("no-such-prompt", "0123456789*#"),
        b'STREAM FILE no-such-prompt "0123456789*#"\n',
    ),
    (commands.get_data("silence/1", 3000, 1), b"GET DATA silence/1 3000 1\n"),
    (commands.wait_for_digit(3000), b"WAIT FOR DIGIT 3000\n"),
    (commands.set_variable("HOTLINE_TICKET", "T-1"), b'SET VARIABLE HOTLINE_TICKET "T-1"\n'),
    (commands.exec_("Verbose", "hello from agi"), b'EXEC Verbose "hello from agi"\n'),
    (commands.noop(), b"NOOP\n"),
    (
        commands.exec_("Dial", "Local/119@emergency", "20"),
        b'EXEC Dial "Local/119@emergency,20"\n',
    ),
    (commands.exec_("Dial", "Nonexistent/119"), b'EXEC Dial "Nonexistent/119"\n'),
    (commands.hangup(), b"HANGUP\n"),
]


# The server tests replay whole recordings through the session, which covers the rest.
@pytest.mark.parametrize(("built", "expected"), RECORDED, ids=lambda v: repr(v)[:40])
def test_builders_match_recorded_commands(built: bytes, expected: bytes) -> None:
    """Each builder gives byte for byte the line recorded against Asterisk 22."""
    assert built == expected


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", '""'),
        ("T-1", '"T-1"'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\path\\", r'"C:\\path\\"'),
        ('\\"', r'"\\\""'),
        ("曹女士", '"曹女士"'),
        ("a\nHANGUP", '"aHANGUP"'),
        ("a\r\nEXEC System rm", '"aEXEC System rm"'),
        ("nul\x00tab\tdel\x7f", '"nultabdel"'),
        ("${CALLERID(num)}", '"${CALLERID(num)}"'),
    ],
)
def test_quote(value: str, quoted: str) -> None:
    """quote() wraps in double quotes, escapes backslash and quote, and drops control characters."""
    assert quote(value) == quoted


@pytest.mark.parametrize(
    "line",
    [
        commands.set_variable("X", 'v"\nHANGUP\n'),
        commands.exec_("Verbose", "a\n", "b\rEXEC System x"),
        commands.get_full_variable("${X}\nHANGUP"),
        commands.verbose("line one\nline two", 2),
        commands.stream_file("zh/欢迎", "1"),
    ],
)
def test_built_lines_are_single_commands(line: bytes) -> None:
    """Whatever the values, a built command is one UTF-8 line ending in its only newline."""
    assert line.endswith(b"\n")
    assert b"\n" not in line[:-1]
    assert b"\r" not in line
    line.decode("utf-8")


@pytest.mark.parametrize(
    "build",
    [
        lambda: commands.get_variable("A B"),
        lambda: commands.get_variable(""),
        lambda: commands.get_variable("X\nHANGUP"),
        lambda: commands.set_variable('X"', "v"),
        lambda: commands.set_variable("变量", "v"),
        lambda: commands.exec_("Dial;System", "x"),
        lambda: commands.exec_("", "x"),
        lambda: commands.stream_file("a b", ""),
        lambda: commands.stream_file('a"', ""),
        lambda: commands.stream_file("a\n", ""),
        lambda: commands.stream_file("ok", '1" EXEC'),
        lambda: commands.get_data("x y", 1000, 1),
        lambda: commands.get_data("ok", 1000, 0),
        lambda: commands.wait_for_digit(-2),
        lambda: commands.verbose("m", 5),
    ],
)
def test_invalid_names_and_numbers_raise(build: Callable[[], bytes]) -> None:
    """Names outside their pattern and out-of-range numbers raise ValueError before sending."""
    with pytest.raises(ValueError, match=r"^invalid "):
        build()


def test_exec_without_arguments() -> None:
    """EXEC with no arguments sends the application name alone."""
    assert commands.exec_("Answer") == b"EXEC Answer\n"


def test_stream_file_lines_are_built_once() -> None:
    """A call's prompts repeat: the same STREAM FILE line object comes back, not a rebuilt one;
    an invalid name still raises each time."""
    from ivr.agi import _commands

    first = _commands.stream_file("hotline/zh/welcome-12345", "129")
    assert _commands.stream_file("hotline/zh/welcome-12345", "129") is first
    assert first == b'STREAM FILE hotline/zh/welcome-12345 "129"\n'
    for _ in range(2):
        with pytest.raises(ValueError, match="sound file"):
            _commands.stream_file("bad name", "1")
