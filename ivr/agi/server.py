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
from ivr.agi.connection import AgiConnection, LineTooLong
from ivr.agi.errors import AgiError, AgiHangup, AgiProtocolError
from ivr.agi.session import AgiSession
from ivr.logs import bind_call_fields

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
        self._loop: asyncio.AbstractEventLoop  # set by start(), before any connection
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: set[_Pending] = set()
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
        # Kept for every connection and call: get_running_loop() costs a getpid() system call.
        self._loop = loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection, self._host, self._port, backlog=self._backlog
        )
        self._log.debug("fastagi.started", host=self._host, port=self.port)

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting; let running calls finish for up to ``grace`` s, then cancel them."""
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        for pending in list(self._pending):  # still in their environment: not calls yet
            pending.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        remaining = set(self._tasks)
        for task in remaining:
            task.cancel()
        if remaining:
            await asyncio.gather(*remaining, return_exceptions=True)
        await self._server.wait_closed()
        self._log.info("fastagi.closed", cancelled=len(remaining))

    # -- a connection, until its environment is read -------------------------------------

    def _new_connection(self) -> AgiConnection:
        return AgiConnection(self._line_limit, on_made=self._accept, loop=self._loop)

    def _accept(self, connection: AgiConnection) -> None:
        """A socket is open: refuse it at once, or read its environment as lines arrive."""
        if self._closing:
            self._reject(connection, "server closing")
            return
        if self._allowed_peers is not None:
            peer = connection.peer_host()
            if peer not in self._allowed_peers:
                self._reject(connection, "peer not allowed", peer)
                return
        pending = _Pending(self, connection)
        self._pending.add(pending)
        connection.when_lines(pending.on_lines)

    def _reject(self, connection: AgiConnection, reason: str, peer: str | None = None) -> None:
        self._rejected_connections += 1
        self._log.warning(
            "fastagi.rejected", peer=peer or connection.peer_host(), reason=reason
        )
        connection.abort()

    def _start_call(self, connection: AgiConnection, env: AgiEnvironment) -> None:
        """The environment is complete: the call runs in a task of its own."""
        task = self._loop.create_task(self._serve(connection, env))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, connection: AgiConnection, env: AgiEnvironment) -> None:
        session = AgiSession(connection, env, command_timeout=self._command_timeout)
        try:
            await self._run_handler(session)
        finally:
            session.close()
            self._close(connection)

    async def _run_handler(self, session: AgiSession) -> None:
        # The call's logger is bound only if something is logged: most calls log nothing here.
        env = session.env
        self._active_sessions += 1
        try:
            # Every line logged while the handler runs carries the call's id. The task is the
            # call's own, as is its context (a copy), so nothing needs undoing after it.
            bind_call_fields(uniqueid=env.uniqueid)
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

    def _close(self, connection: AgiConnection) -> None:
        """Close the socket, which tells Asterisk the AGI is done; a peer that does not take
        our last bytes within ``_CLOSE_TIMEOUT`` is dropped hard."""
        connection.close()
        if not connection.lost and connection.write_buffer_size:
            self._loop.call_later(_CLOSE_TIMEOUT, connection.abort)


class _Pending:
    """A connection reading its environment block: bounded in bytes, lines and time.

    Lines are fed to the parser as they arrive, in ``data_received``: no task exists until
    the environment is complete, so a silent, slow or garbage peer costs a timer and a buffer.
    """

    __slots__ = ("_connection", "_parser", "_server", "_timer")

    def __init__(self, server: FastAgiServer, connection: AgiConnection) -> None:
        self._server = server
        self._connection = connection
        self._parser = EnvironmentParser(max_bytes=server._header_limit)
        self._timer: asyncio.TimerHandle | None = server._loop.call_later(
            server._header_timeout, self._expired
        )

    def on_lines(self) -> None:
        """Feed what arrived to the parser; start the call, or refuse the connection."""
        connection, parser = self._connection, self._parser
        try:
            block = connection.take_block()
            if block is not None:  # the whole block is here (or its end): parse it at once
                env = parser.feed_block(block)
                assert env is not None  # a block ends with its blank line
                self._done()
                self._server._start_call(connection, env)
                return
            while (line := connection.next_line()) is not None:
                if not line.endswith(b"\n"):
                    self._refuse("connection closed inside the AGI environment")
                    return
                env = parser.feed_line(line)
                if env is not None:
                    self._done()
                    self._server._start_call(connection, env)
                    return
        except LineTooLong:
            self._refuse(f"AGI environment line over {self._server._line_limit} bytes")
        except AgiProtocolError as exc:
            self._refuse(str(exc))
        except ConnectionError as exc:
            self._refuse(f"connection lost in the AGI environment: {exc!r}")

    def close(self) -> None:
        """The server closes: drop the connection, it never became a call."""
        self._done()
        self._connection.abort()

    def _expired(self) -> None:
        self._timer = None
        self._refuse(f"no complete AGI environment in {self._server._header_timeout} s")

    def _refuse(self, reason: str) -> None:
        self._done()
        self._server._reject(self._connection, reason)

    def _done(self) -> None:
        self._connection.when_lines(None)
        self._server._pending.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
