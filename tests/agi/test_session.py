"""AgiSession over a real loopback socket: hangups, refusals, garbage and time bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from ivr.agi import (
    AgiCommandError,
    AgiHangup,
    AgiProtocolError,
    AgiSession,
    AgiTimeout,
)
from tests.agi.harness import BOUND, Connect, StartServer, read_until_closed, recording

T = TypeVar("T")
ENV = b"agi_channel: SIP/t-1\nagi_uniqueid: 1795380949.3\nagi_callerid: 13900001111\n\n"


class Call:
    """Starts a server running one script and connects a test client playing Asterisk."""

    def __init__(self, serve: StartServer, connect: Connect) -> None:
        self._serve = serve
        self._connect = connect

    async def __call__(
        self, script: Callable[[AgiSession], Awaitable[T]], **options: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Future[T]]:
        handler, outcome = recording(script)
        server = await self._serve(handler, **options)
        reader, writer = await self._connect(server.port, ENV)
        return reader, writer, outcome


@pytest.fixture
def call(serve: StartServer, connect: Connect) -> Call:
    """A one-call server and its Asterisk-side client."""
    return Call(serve, connect)


async def _expect(reader: asyncio.StreamReader, command: bytes) -> None:
    assert await asyncio.wait_for(reader.readline(), BOUND) == command


async def test_hangup_in_place_of_a_reply(call: Call) -> None:
    """A HANGUP line answering WAIT FOR DIGIT raises AgiHangup, and later commands are not sent."""

    async def script(session: AgiSession) -> list[object]:
        got: list[object] = []
        for _ in range(2):
            try:
                await session.wait_for_digit(5.0)
            except AgiHangup:
                got.append(session.hung_up)
        return got

    reader, writer, outcome = await call(script)
    await _expect(reader, b"WAIT FOR DIGIT 5000\n")
    writer.write(b"HANGUP\n")
    assert await asyncio.wait_for(outcome, BOUND) == [True, True]
    assert await read_until_closed(reader) == b""


async def test_unsolicited_hangup_ends_the_next_command(call: Call) -> None:
    """A HANGUP sent unasked after a reply is seen by the next command, which raises AgiHangup."""

    async def script(session: AgiSession) -> list[object]:
        got: list[object] = [await session.get_variable("DIALSTATUS")]
        try:
            await session.noop()
        except AgiHangup:
            got.append(session.hung_up)
        return got

    reader, writer, outcome = await call(script)
    await _expect(reader, b"GET VARIABLE DIALSTATUS\n")
    writer.write(b"200 result=1 (ANSWER)\nHANGUP\n")
    await _expect(reader, b"NOOP\n")
    assert await asyncio.wait_for(outcome, BOUND) == ["ANSWER", True]


async def test_socket_closed_by_asterisk_is_a_hangup(call: Call) -> None:
    """Asterisk closing the socket instead of replying is a hangup, not a protocol error."""

    async def script(session: AgiSession) -> bool:
        try:
            await session.answer()
        except AgiHangup:
            return session.hung_up
        return False

    reader, writer, outcome = await call(script)
    await _expect(reader, b"ANSWER\n")
    writer.write(b"200 res")  # cut in the middle of the reply
    writer.write_eof()
    assert await asyncio.wait_for(outcome, BOUND) is True


async def test_refused_commands_carry_the_reply(call: Call) -> None:
    """510, 511 and -2 (unknown application) raise AgiCommandError; the session goes on."""

    async def script(session: AgiSession) -> list[object]:
        got: list[object] = []
        for attempt in (
            lambda: session.run(b"BOGUS COMMAND\n"),
            lambda: session.stream_file("welcome"),
            lambda: session.exec("NoSuchApp"),
        ):
            try:
                await attempt()
            except AgiCommandError as exc:
                got.append((exc.command, exc.reply.code, exc.reply.result))
        got.append(await session.wait_for_digit(0.5))
        return got

    reader, writer, outcome = await call(script)
    await _expect(reader, b"BOGUS COMMAND\n")
    writer.write(b"510 Invalid or unknown command\n")
    await _expect(reader, b'STREAM FILE welcome ""\n')
    writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    await _expect(reader, b"EXEC NoSuchApp\n")
    writer.write(b"200 result=-2\n")
    await _expect(reader, b"WAIT FOR DIGIT 500\n")
    writer.write(b"200 result=0\n")
    assert await asyncio.wait_for(outcome, BOUND) == [
        ("BOGUS COMMAND", 510, ""),
        ('STREAM FILE welcome ""', 511, ""),
        ("EXEC NoSuchApp", 200, "-2"),
        None,
    ]


async def test_digits_and_unset_values(call: Call) -> None:
    """Digits come back as characters, GET DATA's timeout text is dropped, unset is None."""

    async def script(session: AgiSession) -> list[object]:
        return [
            await session.stream_file("menu", "0123456789*#"),
            await session.stream_file("menu", "12"),
            await session.get_data("enter-id", 5.0, 18),
            await session.get_data("enter-id", 5.0, 18),
            await session.get_variable("HOTLINE_DIALED"),
            await session.get_full_variable("${X}"),
        ]

    reader, writer, outcome = await call(script)
    for command, reply in (
        (b'STREAM FILE menu "0123456789*#"\n', b"200 result=35 endpos=12000\n"),
        (b'STREAM FILE menu "12"\n', b"200 result=0 endpos=96000\n"),
        (b"GET DATA enter-id 5000 18\n", b"200 result=1101 (timeout)\n"),
        (b"GET DATA enter-id 5000 18\n", b"200 result= (timeout)\n"),
        (b"GET VARIABLE HOTLINE_DIALED\n", b"200 result=0\n"),
        (b'GET FULL VARIABLE "${X}"\n', b"200 result=1 ()\n"),
    ):
        await _expect(reader, command)
        writer.write(reply)
    assert await asyncio.wait_for(outcome, BOUND) == ["#", None, "1101", None, None, ""]


async def test_command_timeout_breaks_the_session(call: Call) -> None:
    """No reply within the time bound raises AgiTimeout; the session then refuses to go on."""

    async def script(session: AgiSession) -> list[str]:
        got: list[str] = []
        try:
            await session.noop()
        except AgiTimeout:
            got.append("timeout")
        try:
            await session.noop()
        except AgiProtocolError:
            got.append("out of step")
        return got

    reader, _writer, outcome = await call(script, command_timeout=0.1)
    await _expect(reader, b"NOOP\n")
    assert await asyncio.wait_for(outcome, BOUND) == ["timeout", "out of step"]
    assert await read_until_closed(reader) == b""  # the second NOOP was never sent


async def test_garbage_reply_is_a_protocol_error(call: Call) -> None:
    """A reply that is not FastAGI raises AgiProtocolError."""

    async def script(session: AgiSession) -> str:
        try:
            await session.answer()
        except AgiProtocolError:
            return "protocol error"
        return "accepted"

    reader, writer, outcome = await call(script)
    await _expect(reader, b"ANSWER\n")
    writer.write(b"\x00\xff garbage\n")
    assert await asyncio.wait_for(outcome, BOUND) == "protocol error"


async def test_overlong_reply_line_is_a_protocol_error(call: Call) -> None:
    """A reply line over the line limit raises AgiProtocolError instead of buffering it."""

    async def script(session: AgiSession) -> str:
        try:
            await session.get_variable("X")
        except AgiProtocolError:
            return "protocol error"
        return "accepted"

    reader, writer, outcome = await call(script, line_limit=256)
    await _expect(reader, b"GET VARIABLE X\n")
    writer.write(b"200 result=1 (" + b"x" * 1024 + b")\n")
    assert await asyncio.wait_for(outcome, BOUND) == "protocol error"


async def test_session_has_no_instance_dict(call: Call) -> None:
    """Sessions use slots, keeping the memory of each concurrent call small."""

    async def script(session: AgiSession) -> bool:
        return hasattr(session, "__dict__")

    _reader, _writer, outcome = await call(script)
    assert await asyncio.wait_for(outcome, BOUND) is False


async def test_a_short_bound_after_a_long_one_still_expires(call: Call) -> None:
    """A command's short time bound holds even when an earlier command armed a long one."""

    async def script(session: AgiSession) -> str:
        await session.run(b"NOOP\n", timeout=30.0)
        try:
            await session.run(b"NOOP\n", timeout=0.1)
        except AgiTimeout:
            return "timeout"
        return "answered"

    reader, writer, outcome = await call(script)
    await _expect(reader, b"NOOP\n")
    writer.write(b"200 result=0\n")
    await _expect(reader, b"NOOP\n")
    assert await asyncio.wait_for(outcome, BOUND) == "timeout"


async def test_a_long_bound_after_a_short_one_is_not_cut_short(call: Call) -> None:
    """The timer left by a command with a short bound does not end a later, longer one early."""
    loop = asyncio.get_running_loop()

    async def script(session: AgiSession) -> float:
        await session.run(b"NOOP\n", timeout=0.05)
        began = loop.time()
        try:
            await session.run(b"NOOP\n", timeout=0.4)
        except AgiTimeout:
            return loop.time() - began
        return -1.0

    reader, writer, outcome = await call(script)
    await _expect(reader, b"NOOP\n")
    writer.write(b"200 result=0\n")
    await _expect(reader, b"NOOP\n")
    assert 0.4 <= await asyncio.wait_for(outcome, BOUND) < BOUND


async def test_only_single_command_lines_are_sent(call: Call) -> None:
    """A command that is not one line ending in "\\n" (none, none at its end, two, a "\\r")
    raises ValueError and sends nothing; the session still runs a good one after."""

    async def script(session: AgiSession) -> list[str]:
        refused = []
        for command in (b"", b"ANSWER", b"ANSWER\nHANGUP\n", b"ANSWER\r\n", b"\rANSWER\n"):
            try:
                await session.run(command)
            except ValueError:
                refused.append(command.decode())
        await session.run(b"ANSWER\n")
        return refused

    reader, writer, outcome = await call(script)
    await _expect(reader, b"ANSWER\n")  # the first line sent is the good command
    writer.write(b"200 result=0\n")
    assert await asyncio.wait_for(outcome, BOUND) == [
        "", "ANSWER", "ANSWER\nHANGUP\n", "ANSWER\r\n", "\rANSWER\n",
    ]
