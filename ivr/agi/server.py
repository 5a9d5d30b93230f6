"""The FastAGI server: one task per call, owned here, and hostile peers kept at arm's length.

Reading the environment block is bounded in bytes per line, bytes in total and time, so a
truncated, silent, endless or binary connection costs only itself. An exception that escapes a
call's handler is logged with the call's id and closes that call's socket, nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from structlog.typing import FilteringBoundLogger

from ivr.agi._parser import AgiEnvironment, EnvironmentParser
from ivr.agi.errors import AgiError, AgiHangup, AgiProtocolError
from ivr.agi.session import AgiSession

AgiHandler = Callable[[AgiSession], Awaitable[None]]

# Bound on flushing our last bytes to a peer that stopped reading before we drop it hard.
_CLOSE_TIMEOUT = 1.0


class FastAgiServer:
    """Accepts FastAGI connections from Asterisk and runs ``handler`` once per call.

    The handler gets an :class:`AgiSession`; when it returns, the socket is closed, which is how
    Asterisk learns that the AGI is done and continues the dialplan.
    """

    def __init__(
        self,
        handler: AgiHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        backlog: int = 1024,
        header_limit: int = 16384,
        line_limit: int = 4096,
        header_timeout: float = 5.0,
        command_timeout: float = 30.0,
        allowed_peers: frozenset[str] | None = None,
        logger: FilteringBoundLogger | None = None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._backlog = backlog
        self._header_limit = header_limit
        self._line_limit = line_limit
        self._header_timeout = header_timeout
        self._command_timeout = command_timeout
        self._allowed_peers = allowed_peers
        self._log: FilteringBoundLogger = logger or structlog.get_logger("ivr.agi")
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._active_sessions = 0
        self._rejected_connections = 0
        self._closing = False

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAgiServer is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def active_sessions(self) -> int:
        """Calls whose handler is running now."""
        return self._active_sessions

    @property
    def rejected_connections(self) -> int:
        """Connections closed before they became a call (bad peer, bad or missing header)."""
        return self._rejected_connections

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("FastAgiServer already started")
        self._server = await asyncio.start_server(
            self._serve,
            self._host,
            self._port,
            backlog=self._backlog,
            limit=self._line_limit,
        )
        self._log.debug("fastagi.started", host=self._host, port=self.port)

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting; let running calls finish for up to ``grace`` s, then cancel them."""
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        remaining = set(self._tasks)
        for task in remaining:
            task.cancel()
        if remaining:
            await asyncio.gather(*remaining, return_exceptions=True)
        await self._server.wait_closed()
        self._log.info("fastagi.closed", cancelled=len(remaining))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each connection in its own task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        try:
            accepted = await self._accept(reader, peer_host)
            if isinstance(accepted, str):
                self._rejected_connections += 1
                self._log.warning("fastagi.rejected", peer=peer_host, reason=accepted)
                writer.transport.abort()
                return
            session = AgiSession(reader, writer, accepted, command_timeout=self._command_timeout)
            try:
                await self._run_handler(session)
            finally:
                session.close()
        finally:
            await self._close_writer(writer)

    async def _accept(self, reader: asyncio.StreamReader, peer_host: str) -> AgiEnvironment | str:
        """The call's environment, or why the connection is refused."""
        if self._closing:
            return "server closing"
        if self._allowed_peers is not None and peer_host not in self._allowed_peers:
            return "peer not allowed"
        parser = EnvironmentParser(max_bytes=self._header_limit)
        try:
            async with asyncio.timeout(self._header_timeout):
                while True:
                    line = await reader.readline()
                    if not line.endswith(b"\n"):
                        return "connection closed inside the AGI environment"
                    env = parser.feed_line(line)
                    if env is not None:
                        return env
        except TimeoutError:
            return f"no complete AGI environment in {self._header_timeout} s"
        except ValueError:  # the reader's line limit
            return f"AGI environment line over {self._line_limit} bytes"
        except AgiProtocolError as exc:
            return str(exc)
        except ConnectionError as exc:
            return f"connection lost in the AGI environment: {exc!r}"

    async def _run_handler(self, session: AgiSession) -> None:
        # The call's logger is bound only if something is logged: most calls log nothing here.
        env = session.env
        self._active_sessions += 1
        try:
            with structlog.contextvars.bound_contextvars(uniqueid=env.uniqueid):
                await self._handler(session)
        except AgiHangup:
            self._log.debug("fastagi.caller_hung_up", uniqueid=env.uniqueid, channel=env.channel)
        except AgiError as exc:
            self._log.bind(uniqueid=env.uniqueid, channel=env.channel).warning(
                "fastagi.session_failed", error=repr(exc)
            )
        except Exception:
            self._log.bind(uniqueid=env.uniqueid, channel=env.channel).exception(
                "fastagi.handler_crashed"
            )
        finally:
            self._active_sessions -= 1

    async def _close_writer(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            writer.transport.abort()
