"""Test doubles that speak real FastAGI over loopback: Asterisk's side of the socket, and a
handler wrapper that hands the handler's outcome back to the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ivr.agi import AgiSession, FastAgiServer
from tests.agi.transcripts import Transcript

T = TypeVar("T")

#: The ``serve`` fixture: start a server on port 0 with a handler and options.
StartServer = Callable[..., Awaitable[FastAgiServer]]
#: The ``connect`` fixture: open a connection to a port and send an environment.
Connect = Callable[[int, bytes], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

# A safety bound only: every wait below ends on an event long before it.
BOUND = 5.0


async def open_call(
    port: int, env: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the server as Asterisk does and send ``env`` (may be partial or empty)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if env:
        writer.write(env)
        # The server may drop a hostile client before reading all it sent.
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    return reader, writer


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server still sends until it closes the socket (a reset counts as closed)."""
    try:
        return await asyncio.wait_for(reader.read(), BOUND)
    except ConnectionResetError:
        return b""


async def play_asterisk(port: int, transcript: Transcript) -> None:
    """Play Asterisk's side of a recording: send the environment, check that each command the
    server sends is the recorded one, answer with the recorded lines, then expect the close."""
    reader, writer = await open_call(port, transcript.env)
    try:
        for command, replies in transcript.exchanges():
            line = await asyncio.wait_for(reader.readline(), BOUND)
            assert line == command
            writer.write(b"".join(replies))
            await writer.drain()
        assert await read_until_closed(reader) == b""
    finally:
        writer.close()
        await writer.wait_closed()


def recording(
    script: Callable[[AgiSession], Awaitable[T]],
) -> tuple[Callable[[AgiSession], Awaitable[None]], asyncio.Future[T]]:
    """A handler running ``script``, and a future with what it returned or raised."""
    outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    async def handler(session: AgiSession) -> None:
        try:
            result = await script(session)
        except Exception as exc:
            outcome.set_exception(exc)
            raise
        outcome.set_result(result)

    return handler, outcome
