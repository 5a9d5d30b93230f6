"""An AMI server speaking like Asterisk 22's manager: login, event masks and filters (legacy
and, as from 22.1, advanced: ``_event_filters``), and the actions the hotline service uses.
Events reach slow clients only while their buffer has room."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ivr.simpbx import _ami_actions
from ivr.simpbx._ami_actions import EVENT_CLASSES, parse_event_mask
from ivr.simpbx._channel import Channel
from ivr.simpbx._event_filters import FilterSet, event_name

__all__ = [
    "EVENT_CLASSES",
    "ActionRecord",
    "AmiServer",
    "Originated",
    "PbxControl",
    "QueueStats",
    "parse_event_mask",
]

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
BUFFER_LIMIT = 1 << 20  # bytes queued to one client before its events are dropped
_MAX_ACTION_LINES = 256


@dataclass(frozen=True, slots=True)
class Originated:
    """A channel an ``Originate`` created."""

    channel: str
    uniqueid: str


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One action the server received: its lower-case name and headers (lower-case keys)."""

    name: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue's counters, for ``QueueStatus``."""

    name: str
    calls: int
    completed: int
    abandoned: int


class PbxControl(Protocol):
    """What the AMI actions need from the PBX."""

    def live_channels(self) -> Sequence[Channel]:
        """Every channel that currently exists."""
        ...

    def redirect(self, channel: str, context: str, exten: str, priority: str) -> bool:
        """Move a live channel; False when there is no such channel."""
        ...

    def hangup(self, channel: str) -> bool:
        """Hang a live channel up; False when there is no such channel."""
        ...

    def originate(
        self,
        channel: str,
        caller_id: str,
        destination: str,
        *,
        context: str = "",
        variables: Mapping[str, str] | None = None,
    ) -> Originated | None:
        """Place an outbound call; None when the channel technology does not exist.

        ``destination`` is the Originate's destination header lines, ``context`` its
        ``Context`` (empty for an application), ``variables`` its ``Variable`` settings.
        """
        ...

    def get_variable(self, channel: str, name: str) -> str | None:
        """A live channel's variable; None when unset."""
        ...

    def set_variable(self, channel: str, name: str, value: str) -> bool:
        """Set a live channel's variable; False when there is no such channel."""
        ...

    def queue_stats(self) -> Sequence[QueueStats]:
        """The queues calls have entered so far."""
        ...

    def calls_processed(self) -> int:
        """How many calls were placed since the PBX started."""
        ...


class Action:
    """One action block: headers looked up case-insensitively, first value wins."""

    __slots__ = ("headers", "variables")

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.headers: dict[str, str] = {}
        self.variables: list[str] = []
        for key, value in pairs:
            lower = key.lower()
            if lower == "variable":
                self.variables.append(value)
            self.headers.setdefault(lower, value)

    def get(self, key: str) -> str:
        """The header's value, "" when absent."""
        return self.headers.get(key.lower(), "")


def parse_action(lines: Sequence[str]) -> Action:
    """Build an action from its ``Key: Value`` lines (line ends already removed)."""
    pairs = []
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            pairs.append((key.strip(), value.strip()))
    return Action(pairs)


class Session:
    """One manager connection: its login, event mask and filters."""

    __slots__ = ("authenticated", "classes", "dropped", "filters", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.authenticated = False
        self.classes: frozenset[str] = frozenset()
        self.filters = FilterSet()
        self.dropped = 0

    def passes(self, text: str, name: str | None = None) -> bool:
        """Whether the session's filters let the event through (Asterisk's should_send_event);
        ``name`` is the event's name when the caller has already read it."""
        filters = self.filters
        return filters.empty or filters.passes(text, name)


class AmiServer:
    """The manager interface of the simulated PBX, on raw asyncio streams."""

    def __init__(
        self,
        control: PbxControl,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        buffer_limit: int = BUFFER_LIMIT,
    ) -> None:
        self._control = control
        self._host, self._requested_port = host, port
        self._username, self._secret = username, secret
        self._buffer_limit = buffer_limit
        self._server: asyncio.Server | None = None
        self._sessions: set[Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._wanted: frozenset[str] = frozenset()
        self._started = time.monotonic()
        self.dropped_events = 0  # events not sent because a client's buffer was full
        self._actions: list[ActionRecord] = []
        self._action_waiters: list[tuple[str, int, asyncio.Future[None]]] = []

    @property
    def port(self) -> int:
        """The bound TCP port (useful when asked for port 0)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen for manager clients."""
        self._server = await asyncio.start_server(self._serve, self._host, self._requested_port)

    async def close(self) -> None:
        """Stop listening, disconnect every client and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
        # Closing a transport ends its handler's read with EOF, so each handler finishes
        # on its own; cancelling them instead makes asyncio's stream callback log an error.
        for session in list(self._sessions):
            session.writer.close()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- events ---------------------------------------------------------------------------

    def wants(self, event_class: str) -> bool:
        """Whether any logged-in client's mask takes ``event_class`` events."""
        return event_class in self._wanted

    def publish(self, event_class: str, text: str) -> None:
        """Send one event to every client whose mask and filters let it through."""
        data: bytes | None = None
        name: str | None = None
        for session in self._sessions:
            if event_class not in session.classes:
                continue
            if not session.filters.empty:
                if name is None:
                    name = event_name(text)  # once per event, whatever the sessions
                if not session.filters.passes(text, name):
                    continue
            transport = session.writer.transport
            if transport.is_closing():
                continue
            if transport.get_write_buffer_size() > self._buffer_limit:
                # A stalled client must not hold calls back: it loses events, and we count them.
                session.dropped += 1
                self.dropped_events += 1
                continue
            if data is None:
                data = text.encode()
            session.writer.write(data)

    def _recompute_wanted(self) -> None:
        wanted: set[str] = set()
        for session in self._sessions:
            if session.authenticated:
                wanted |= session.classes
        self._wanted = frozenset(wanted)

    # -- connections ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        session = Session(writer)
        self._sessions.add(session)
        try:
            writer.write(BANNER)
            while True:
                lines = await _read_block(reader)
                if lines is None:
                    break
                if not lines:
                    continue
                if not self._dispatch(session, parse_action(lines)):
                    break
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # the client went away or sent garbage: its session ends, nobody else notices
        finally:
            self._sessions.discard(session)
            self._recompute_wanted()
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _dispatch(self, session: Session, action: Action) -> bool:
        """Answer one action; False closes the connection."""
        self._record(action)
        return _ami_actions.dispatch(self, session, action)

    # -- what clients asked for (for tests: "was this Redirect sent once?") ---------------

    @property
    def actions(self) -> tuple[ActionRecord, ...]:
        """Every action received so far, in order, on every connection."""
        return tuple(self._actions)

    def action_count(self, name: str) -> int:
        """How many actions called ``name`` (any case) were received."""
        return sum(1 for record in self._actions if record.name == name.lower())

    async def wait_for_action(self, name: str, count: int = 1) -> None:
        """Return once ``count`` actions called ``name`` have been received."""
        if self.action_count(name) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._action_waiters.append((name.lower(), count, future))
        try:
            await future
        finally:
            self._action_waiters = [w for w in self._action_waiters if w[2] is not future]

    def _record(self, action: Action) -> None:
        name = action.get("Action").lower()
        self._actions.append(ActionRecord(name, dict(action.headers)))
        for wanted, count, future in self._action_waiters:
            if wanted == name and not future.done() and self.action_count(name) >= count:
                future.set_result(None)

    # Used by the actions module.
    @property
    def control(self) -> PbxControl:
        """The PBX the actions act on."""
        return self._control

    def check_login(self, username: str, secret: str) -> bool:
        """Whether the credentials are the configured ones."""
        return username == self._username and secret == self._secret

    def session_changed(self) -> None:
        """A login or mask change: recompute which event classes anybody wants."""
        self._recompute_wanted()

    @property
    def username(self) -> str:
        """The one manager account's name."""
        return self._username

    @property
    def uptime(self) -> int:
        """Seconds since the server was built."""
        return int(time.monotonic() - self._started)

    @property
    def address(self) -> tuple[str, int]:
        """Host and port, for the security events."""
        return self._host, self.port


async def _read_block(reader: asyncio.StreamReader) -> list[str] | None:
    """The lines of one action up to its blank line; None at end of stream."""
    lines: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw:
            return None
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            return lines
        lines.append(line)
        if len(lines) > _MAX_ACTION_LINES:
            raise ValueError("action too long")
