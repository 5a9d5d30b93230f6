"""Fixtures of the FastAGI tests: servers on loopback port 0, closed after each test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ivr.agi import AgiSession, FastAgiServer
from tests.agi.harness import Connect, StartServer, open_call


@pytest.fixture
async def serve() -> AsyncIterator[StartServer]:
    """Start a FastAgiServer on 127.0.0.1 port 0 with a handler and options; closed at the end."""
    servers: list[FastAgiServer] = []

    async def start(
        handler: Callable[[AgiSession], Awaitable[None]], **options: Any
    ) -> FastAgiServer:
        server = FastAgiServer(handler, host="127.0.0.1", port=0, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(grace=1.0)


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Open client connections playing Asterisk (``open_call``); all closed at the end."""
    writers: list[asyncio.StreamWriter] = []

    async def start(
        port: int, env: bytes = b""
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await open_call(port, env)
        writers.append(writer)
        return reader, writer

    yield start
    for writer in writers:
        writer.close()
        with contextlib.suppress(OSError):  # the server may have reset a connection it rejected
            await writer.wait_closed()
