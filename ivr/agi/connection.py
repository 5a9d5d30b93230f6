"""The bytes of one FastAGI connection: an asyncio protocol that frames lines.

FastAGI is lines both ways, one command and one reply at a time, so a call needs no stream
machinery: this protocol splits what arrives into lines as it arrives, and a reader takes
them one by one, waiting on a future only when none is complete yet. Compared with
``asyncio.StreamReader.readline`` it saves a chain of coroutines per line (the environment
block alone is ~20 lines a call) and lets the server parse the environment in
``data_received``, before any task exists for the connection.

Errors are kept and raised to the reader in place of the next line: a line over the limit
(:class:`LineTooLong`), the connection's loss (``ConnectionError``), or one set from outside
with :meth:`AgiConnection.set_exception` (the session's time bound). End of stream reads as
``b""`` (or the unterminated rest of the last line), as from ``readline``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, cast


class LineTooLong(ValueError):
    """A line (or the start of one) longer than the connection's line limit."""


class AgiConnection(asyncio.Protocol):
    """One FastAGI socket: complete lines in, bytes out, with write flow control."""

    __slots__ = (
        "_buffer",
        "_complete",
        "_drain_waiter",
        "_eof",
        "_error",
        "_line_limit",
        "_lines",
        "_loop",
        "_lost",
        "_on_lines",
        "_paused",
        "_waiter",
        "on_made",
        "transport",
    )

    def __init__(
        self,
        line_limit: int,
        on_made: Callable[[AgiConnection], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._line_limit = line_limit
        self._buffer = b""
        self._lines: deque[bytes] = deque()
        # Whole lines that came several to a read, not yet split: they follow ``_lines``. An
        # environment block is taken from here whole, never split into lines and joined again.
        self._complete = b""
        self._eof = False
        self._lost = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # Given by the server, or taken once, at the first wait: get_running_loop() costs a
        # getpid() system call.
        self._loop = loop
        # Called when lines arrive and no reader waits: the server reads the environment so.
        self._on_lines: Callable[[], None] | None = None
        self.on_made = on_made
        self.transport: asyncio.Transport | None = None

    # -- the protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; tell whoever accepts connections."""
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        """Split complete lines off; refuse a line that outgrows the limit."""
        if self._error is not None:
            return  # the reader has its error; nothing after it is read
        buffer = self._buffer + data if self._buffer else data
        end = buffer.rfind(b"\n")
        limit = self._line_limit
        if end >= 0 and end == len(buffer) - 1 and buffer.find(b"\n") == end and not self._complete:
            # Exactly one whole line, as a reply to a command almost always arrives: no split.
            if end > limit:
                self._fail(LineTooLong(f"line over {limit} bytes"))
                return
            self._lines.append(buffer)
            buffer = b""
        elif end >= 0:
            # Kept whole until read; only its lines' lengths are checked now (none can be over
            # the limit if all of it is not).
            whole = buffer[: end + 1]
            if len(whole) > limit and max(map(len, whole[:-1].split(b"\n"))) > limit:
                self._fail(LineTooLong(f"line over {limit} bytes"))
                return
            self._complete += whole
            buffer = buffer[end + 1 :]
        self._buffer = buffer
        if len(buffer) > limit:
            self._fail(LineTooLong(f"line over {limit} bytes"))
        elif end >= 0:
            self._wake()

    def eof_received(self) -> bool:
        """The peer is done sending; what it sent is still read, then ``b""``."""
        self._eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone: a reader waiting gets the error (or end of stream)."""
        self._lost = True
        if exc is not None and self._error is None:
            self._error = exc
        self._eof = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark."""
        self._paused = True

    def resume_writing(self) -> None:
        """The transport's buffer drained below its low-water mark."""
        self._paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading -----------------------------------------------------------------------

    def next_line(self) -> bytes | None:
        """The next complete line; at end of stream the rest (``b""`` if none); None when a
        line has yet to arrive. Raises the connection's error, if it has one."""
        if self._lines or self._split_complete():
            return self._lines.popleft()
        if self._error is not None:
            raise self._error
        if self._eof:
            rest, self._buffer = self._buffer, b""
            return rest
        return None

    def take_block(self) -> bytes | None:
        """The complete lines up to and including the first blank one (an environment block),
        taken off together as one run of bytes; None, and nothing taken, while no blank line
        has arrived."""
        complete = self._complete
        if not self._lines and complete:
            # The usual case: the whole block came in one read, "\n" line ends only.
            end = complete.find(b"\n\n")
            # find, not ``in``: see AgiSession.run.
            if end >= 0 and not complete.startswith(b"\n") and complete.find(b"\r", 0, end) < 0:
                self._complete = complete[end + 2 :]
                return complete[: end + 2]
        self._split_complete()
        lines = self._lines
        for index, line in enumerate(lines):
            if line == b"\n" or line == b"\r\n":
                return b"".join([lines.popleft() for _ in range(index + 1)])
        return None

    def _split_complete(self) -> bool:
        """Move the unsplit whole lines to ``_lines``, split at "\\n" only as readline does
        (``bytes.splitlines`` would split at "\\r" too); whether there were any."""
        complete = self._complete
        if not complete:
            return False
        self._complete = b""
        self._lines.extend([part + b"\n" for part in complete[:-1].split(b"\n")])
        return True

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the connection runs on."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def readable(self) -> asyncio.Future[None]:
        """A future done when :meth:`next_line` has something to say."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = (self._loop or self.loop).create_future()
            self._waiter = waiter
        return waiter

    def when_lines(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` whenever lines (or an error, or end of stream) arrive and no
        reader waits; None stops it. Lines already here are announced at once."""
        self._on_lines = callback
        if callback is not None and (
            self._lines or self._complete or self._eof or self._error is not None
        ):
            callback()

    def set_exception(self, exc: BaseException) -> None:
        """Make the reader's next read raise ``exc`` (and wake a reader waiting now)."""
        self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._lines.clear()
        self._complete = self._buffer = b""
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
            return
        if self._on_lines is not None:
            self._on_lines()

    # -- writing -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the peer (the transport sends at once when it can)."""
        assert self.transport is not None
        self.transport.write(data)

    @property
    def must_drain(self) -> bool:
        """True when a write is still buffered (a peer slow to read) or the socket closes."""
        transport = self.transport
        assert transport is not None
        return bool(transport.get_write_buffer_size()) or transport.is_closing()

    async def drain(self) -> None:
        """Wait while the transport's buffer is over its high-water mark; raise
        ``ConnectionResetError`` once the connection is lost."""
        if self._lost:
            raise ConnectionResetError("connection lost")
        if not self._paused:
            return
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self.loop.create_future()
            self._drain_waiter = waiter
        await waiter

    @property
    def write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        assert self.transport is not None
        return self.transport.get_write_buffer_size()

    @property
    def lost(self) -> bool:
        """True once the socket is gone."""
        return self._lost

    def close(self) -> None:
        """Close after the buffered bytes are sent."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now, buffered bytes and all."""
        if self.transport is not None and not self._lost:
            self.transport.abort()

    def peer_host(self) -> str:
        """The peer's address as text."""
        assert self.transport is not None
        peer: Any = self.transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)
