"""AgiConnection's line framing, fed directly: lines split at "\\n" only, limits, end of stream,
and errors handed to the reader in place of the next line."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi.connection import AgiConnection, LineTooLong


def _lines(connection: AgiConnection) -> list[bytes]:
    out: list[bytes] = []
    while (line := connection.next_line()) is not None:
        out.append(line)
        if not line.endswith(b"\n"):
            break  # end of stream
    return out


def test_lines_split_at_newline_only_across_reads() -> None:
    """A "\\r" inside a value stays in its line; a line cut across reads is joined."""
    connection = AgiConnection(line_limit=100)
    connection.data_received(b"200 result=1 (a\rb)\nagi_chan")
    assert _lines(connection) == [b"200 result=1 (a\rb)\n"]
    connection.data_received(b"nel: SIP/x\r\n\n")
    assert _lines(connection) == [b"agi_channel: SIP/x\r\n", b"\n"]


def test_end_of_stream_gives_the_rest_then_nothing() -> None:
    """After EOF the unterminated rest is read, then b"" as from readline."""
    connection = AgiConnection(line_limit=100)
    connection.data_received(b"HANGUP\n200 res")
    connection.eof_received()
    assert _lines(connection) == [b"HANGUP\n", b"200 res"]
    assert connection.next_line() == b""


@pytest.mark.parametrize("data", [b"x" * 101 + b"\n", b"ok\n" + b"x" * 101],
                         ids=["complete", "unterminated"])
def test_a_line_over_the_limit_is_refused(data: bytes) -> None:
    """A line longer than the limit, whole or still arriving, raises LineTooLong."""
    connection = AgiConnection(line_limit=100)
    connection.data_received(data)
    with pytest.raises(LineTooLong):
        _lines(connection)


async def test_an_error_set_from_outside_wakes_the_waiting_reader() -> None:
    """set_exception settles the reader's wait; its next read raises the error."""
    connection = AgiConnection(line_limit=100)
    assert connection.next_line() is None
    waiting = connection.readable()
    asyncio.get_running_loop().call_soon(connection.set_exception, TimeoutError())
    await asyncio.wait_for(waiting, 5.0)
    with pytest.raises(TimeoutError):
        connection.next_line()


def test_lines_arriving_with_no_reader_are_announced() -> None:
    """when_lines is told of lines that arrive with no reader waiting (the environment)."""
    connection = AgiConnection(line_limit=100)
    connection.data_received(b"agi_channel: SIP/a\n")
    seen: list[bytes] = []
    connection.when_lines(lambda: seen.extend(_lines(connection)))  # lines already here
    connection.data_received(b"agi_uniq")  # no complete line: nothing to announce
    connection.data_received(b"ueid: 1.1\n\n")
    assert seen == [b"agi_channel: SIP/a\n", b"agi_uniqueid: 1.1\n", b"\n"]


async def test_waiting_asks_for_the_running_loop_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop is looked up at the first wait only (get_running_loop() makes a getpid()
    system call), then kept for every later command's wait."""
    connection = AgiConnection(line_limit=100)
    lookups: list[object] = []
    running = asyncio.get_running_loop

    def counting() -> asyncio.AbstractEventLoop:
        lookups.append(None)
        return running()

    monkeypatch.setattr(asyncio, "get_running_loop", counting)
    for _ in range(3):
        waiting = connection.readable()
        connection.data_received(b"200 result=0\n")
        await asyncio.wait_for(waiting, 5.0)
        assert connection.next_line() == b"200 result=0\n"
    assert len(lookups) == 1


def test_one_whole_line_is_taken_as_it_came() -> None:
    """A read that is exactly one line (the usual reply) becomes that line, no copy; lines
    split across reads or several in one read still frame as before."""
    connection = AgiConnection(line_limit=100)
    data = b"200 result=0 endpos=1234\n"
    connection.data_received(data)
    assert connection.next_line() is data
    connection.data_received(b"200 res")
    connection.data_received(b"ult=1\n")
    connection.data_received(b"a\nb\n")
    assert _lines(connection) == [b"200 result=1\n", b"a\n", b"b\n"]
    connection.data_received(b"x" * 101 + b"\n")
    with pytest.raises(LineTooLong):
        connection.next_line()


# Environment-like data: lines, blank lines ("\n" or "\r\n"), "\r" inside values.
_DATA = st.lists(
    st.sampled_from([b"agi_channel: SIP/x\n", b"agi_a: b\r\n", b"\n", b"\r\n", b"x\ry\n", b"200"]),
    max_size=12,
).map(b"".join)


def _reads(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    spans = zip([0, *points], [*points, len(data)], strict=True)
    return [data[start:end] for start, end in spans if end > start]


@settings(max_examples=400)
@given(_DATA, st.lists(st.integers(min_value=0, max_value=120), max_size=6), st.booleans())
def test_a_block_is_taken_whole_however_it_arrives(
    data: bytes, cuts: list[int], block_first: bool
) -> None:
    """Whatever the reads, the connection takes the same block (the lines up to the first
    blank one, joined), then gives the same lines, as splitting the data at once does."""
    lines = [line + b"\n" for line in data.split(b"\n")[:-1]]
    blank = next((at for at, line in enumerate(lines) if line in (b"\n", b"\r\n")), None)
    connection = AgiConnection(line_limit=1000)
    for read in _reads(data, cuts):
        connection.data_received(read)
    connection.eof_received()
    if block_first:
        expected = None if blank is None else b"".join(lines[: blank + 1])
        assert connection.take_block() == expected
        if blank is not None:
            lines = lines[blank + 1 :]
    rest = data[data.rfind(b"\n") + 1 :]
    assert _lines(connection) == [*lines, rest]  # at the end, the unterminated rest or b""
