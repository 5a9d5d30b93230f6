"""A fault-injecting TCP proxy on 127.0.0.1:0, between a client (the service's AMI link) and
a server (the simulated PBX's AMI port).

Modes act on every connection, current and future: ``pass`` forwards bytes as they come,
``delay`` holds each chunk for a while first, ``split`` writes every byte on its own,
``half_open`` stops forwarding (one direction or both) without closing anything, and
``refuse`` closes new connections at once. ``drop()`` closes both sides of every current
connection; ``reset()`` aborts them with a TCP RST.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field

TO_SERVER = "to_server"
TO_CLIENT = "to_client"
_CHUNK = 65536


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    """The proxy; ``port`` is where the client connects."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay_s = 0.0
        self.split = False
        self.refuse = False
        self.blocked: frozenset[str] = frozenset()  # directions not forwarded (half-open)
        self.connections = 0  # accepted since start, refused ones included
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def port(self) -> int:
        """The listening port."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening and end every connection and task."""
        if self._server is not None:
            self._server.close()
        self.drop()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- modes ----------------------------------------------------------------------------

    def pass_through(self) -> None:
        """Forward everything at once, in both directions."""
        self.delay_s, self.split, self.refuse = 0.0, False, False
        self.blocked = frozenset()

    def delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` before forwarding it."""
        self.delay_s = seconds

    def split_every_byte(self, on: bool = True) -> None:
        """Forward each byte in a write of its own."""
        self.split = on

    def half_open(self, *directions: str) -> None:
        """Stop forwarding (both directions unless told) while every socket stays open."""
        self.blocked = frozenset(directions or (TO_SERVER, TO_CLIENT))

    def refuse_new(self, on: bool = True) -> None:
        """Close new connections as soon as they are accepted."""
        self.refuse = on

    def drop(self) -> None:
        """Close both sides of every current connection (FIN)."""
        for pair in list(self._pairs):
            pair.client.close()
            pair.server.close()

    def reset(self) -> None:
        """Abort every current connection with a TCP RST to both sides."""
        for pair in list(self._pairs):
            for writer in (pair.client, pair.server):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    # SO_LINGER with a zero timeout makes close() send RST, not FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()

    async def wait_connections(self, count: int) -> None:
        """Return once ``count`` connections have been accepted since start."""
        while self.connections < count:
            self._changed.clear()
            await self._changed.wait()

    # -- forwarding -----------------------------------------------------------------------

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        self._changed.set()
        try:
            if self.refuse:
                return
            try:
                server_reader, server = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                return
            pair = _Pair(client, server)
            self._pairs.add(pair)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump(client_reader, server, TO_SERVER, pair))
                    group.create_task(self._pump(server_reader, client, TO_CLIENT, pair))
            finally:
                self._pairs.discard(pair)
                server.close()
        except* (ConnectionError, OSError):
            pass  # one side reset: the other is closed below, as a real network would
        finally:
            client.close()
            self._handlers.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str,
        pair: _Pair,
    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if direction in self.blocked:
                    continue  # half-open: the bytes are swallowed, as by a dead middlebox
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)  # the injected fault itself
                if self.split:
                    for index in range(len(data)):
                        writer.write(data[index:index + 1])
                        await writer.drain()
                else:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One direction ended: end the connection both ways, as TCP peers here do.
            pair.client.close()
            pair.server.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
