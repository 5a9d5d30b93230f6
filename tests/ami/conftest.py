"""A small scripted AMI server on 127.0.0.1:0, speaking like the recorded Asterisk 22."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def frame(*pairs: tuple[str, str]) -> bytes:
    """One AMI message as Asterisk writes it (CRLF lines, blank line at the end)."""
    return b"".join(f"{key}: {value}\r\n".encode() for key, value in pairs) + b"\r\n"


@dataclass
class Connection:
    """One client connection as the server sees it."""

    number: int
    writer: asyncio.StreamWriter
    actions: list[dict[str, str]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeAmi:
    """Answers Login, Ping, Filter, Command and CoreShowChannels like Asterisk; holds the rest.

    Every action received is recorded per connection and can be awaited by name, so tests
    wait on what the server saw rather than on time.
    """

    def __init__(self) -> None:
        self.secret = "s3cret"
        self.answer_pings = True
        self.held = {"redirect"}  # actions received but never answered
        self.connections: list[Connection] = []
        self._actions: defaultdict[str, asyncio.Queue[tuple[Connection, dict[str, str]]]] = (
            defaultdict(asyncio.Queue)
        )
        self._new_connection: asyncio.Queue[Connection] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection."""
        assert self._server is not None
        self._server.close()
        for connection in self.connections:
            connection.writer.close()
        # Closed writers end every handler (the peer sees EOF); no cancellation needed.
        await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True), 5)
        await self._server.wait_closed()

    async def next_connection(self) -> Connection:
        """The next client that connects."""
        return await asyncio.wait_for(self._new_connection.get(), 5)

    async def next_action(self, name: str) -> tuple[Connection, dict[str, str]]:
        """The next action of this name any client sent."""
        return await asyncio.wait_for(self._actions[name.lower()].get(), 5)

    @property
    def current(self) -> Connection:
        """The most recent connection."""
        return self.connections[-1]

    async def send(self, data: bytes, *, byte_by_byte: bool = False) -> None:
        """Write raw bytes to the current connection, one byte per write if asked."""
        writer = self.current.writer
        chunks = [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()

    async def drop(self) -> None:
        """Close the current connection from the server side."""
        connection = self.current
        connection.writer.close()
        await connection.closed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = Connection(len(self.connections) + 1, writer)
        self.connections.append(connection)
        self._new_connection.put_nowait(connection)
        try:
            writer.write(BANNER)
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                action = dict(
                    line.split(": ", 1) for line in block.decode().split("\r\n") if ": " in line
                )
                connection.actions.append(action)
                self._actions[action["Action"].lower()].put_nowait((connection, action))
                if not await self._answer(connection, action):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            connection.closed.set()
            self._handlers.discard(task)

    async def _answer(self, connection: Connection, action: dict[str, str]) -> bool:
        """Reply to one action; False once the connection must close."""
        name = action["Action"].lower()
        action_id = action.get("ActionID", "")
        writer = connection.writer
        if name == "login":
            if action.get("Secret") != self.secret:
                writer.write(
                    frame(("Response", "Error"), ("ActionID", action_id),
                          ("Message", "Authentication failed"))
                )
                await writer.drain()
                return False  # Asterisk hangs up after a failed login
            writer.write(
                frame(("Response", "Success"), ("ActionID", action_id),
                      ("Message", "Authentication accepted"))
                + frame(("Event", "FullyBooted"), ("Privilege", "system,all"),
                        ("Status", "Fully Booted"))
            )
        elif name == "ping":
            if self.answer_pings:
                writer.write(
                    frame(("Response", "Success"), ("ActionID", action_id), ("Ping", "Pong"),
                          ("Timestamp", "1795380949.847587"))
                )
        elif name in self.held:
            return True
        elif name == "command":
            writer.write(
                frame(("Response", "Success"), ("ActionID", action_id),
                      ("Message", "Command output follows"), ("Output", "8 active channels"),
                      ("Output", "10416 calls processed"))
            )
        elif name == "coreshowchannels":
            writer.write(
                frame(("Response", "Success"), ("ActionID", action_id), ("EventList", "start"),
                      ("Message", "Channels will follow"))
                + frame(("Event", "CoreShowChannel"), ("ActionID", action_id),
                        ("Channel", "Local/s@queue-test-00001456;2"),
                        ("CallerIDName", "李四"), ("Uniqueid", "1795382136.10415"),
                        ("Linkedid", "1795382136.10414"))
                + frame(("Event", "CoreShowChannelsComplete"), ("ActionID", action_id),
                        ("EventList", "Complete"), ("ListItems", "1"))
            )
        elif name == "nosuchaction":
            writer.write(
                frame(("Response", "Error"), ("ActionID", action_id),
                      ("Message", "Invalid/unknown command: NoSuchAction."))
            )
        else:
            writer.write(frame(("Response", "Success"), ("ActionID", action_id),
                               ("Message", "Success")))
        await writer.drain()
        return True


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    """A running scripted AMI server, stopped after the test."""
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()
