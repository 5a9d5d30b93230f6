"""The asyncio side of AMI: panoramisk's protocol, fed by our parser, with safe dispatch.

:class:`AmiProtocol` keeps panoramisk's action bookkeeping (``send``, ``responses`` and
its ``Action`` futures, so ``EventList`` answers complete as panoramisk defines) and
replaces the parts that lose data or hide failures:

- bytes go through :class:`~ivr.ami._parser.AmiParser`, so UTF-8 split across reads is kept;
- an event handler that raises is logged and counted, and dispatch goes on;
- coroutine handlers run as tasks this protocol owns and ends;
- actions still waiting when the connection drops fail with :class:`AmiConnectionLost`
  instead of being queued for a blind re-send;
- a read that brings many messages is handled in slices, one slice per turn of the event
  loop with reading paused meanwhile, so that a burst of events (a reconnect's channel list,
  a busy PBX after a stall) cannot hold a caller's key press back for more than a slice's
  worth of work (~20 us an event). A slice is half of what waits, at least ``slice_size``
  and at most ``max_slice``: a fixed slice per turn capped the link's intake below what a
  busy PBX sends while the loop's turns grew with the calls, and the PBX dropped events.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import itertools
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from ivr.ami._parser import DEFAULT_MAX_MESSAGE_SIZE, AmiMessage, AmiParser
from ivr.ami.errors import AmiConnectionLost, AmiProtocolError

_MAX_EVENT_NAMES = 1024  # Asterisk has ~200 event names; more means a peer inventing them
# The regular expression panoramisk makes of the pattern "*": it matches every event name.
_MATCH_ALL = fnmatch.translate("*")

__all__ = [
    "AmiProtocol",
    "AmiResponse",
    "EventSubscription",
    "ParsedMessage",
    "event_whitelist_filter",
    "to_panoramisk",
]

_FAILED_RESPONSES = frozenset({"error", "failure", "fail"})
#: Messages handled per turn of the event loop, at least; the rest of a large read waits.
DEFAULT_SLICE_SIZE = 32
#: Messages handled per turn of the event loop, at most (~10 ms of work).
DEFAULT_MAX_SLICE = 512


class ParsedMessage(Message):  # type: ignore[misc]  # panoramisk is untyped
    """A panoramisk :class:`Message` that keeps the :class:`AmiMessage` it was made from.

    panoramisk's case-insensitive store is built on first use only: the service reads events
    through ``original``, so most messages never need it.
    """

    def __init__(self, original: AmiMessage) -> None:
        self.manager = None
        self.original = original

    def __getattr__(self, name: str) -> Any:
        if name == "_store":
            store = _panoramisk_store(self.original)
            self._store = store
            return store
        return super().__getattr__(name)

    @property
    def id(self) -> str | None:
        """panoramisk's key of the action this answers: ``CommandID``, else ``ActionID``."""
        original = self.original
        if "commandid" in original:
            return original.get("commandid")
        if "actionid" in original:
            return original.get("actionid")
        return None

    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` header, None when absent (as panoramisk has it)."""
        original = self.original
        return original.get("actionid") if "actionid" in original else None


def _panoramisk_store(original: AmiMessage) -> dict[str, tuple[str, Any]]:
    # Filled directly: going through panoramisk's ``__setitem__`` for every header costs
    # more than parsing the message.
    store: dict[str, tuple[str, Any]] = {}
    output: list[str] = []
    for key, value in original.headers:
        lowered = key.lower()
        if lowered == "output":
            output.append(value)
        present = store.get(lowered)
        if present is None:
            store[lowered] = (key, value)
        elif isinstance(present[1], list):
            present[1].append(value)
        else:
            store[lowered] = (present[0], [present[1], value])
    store["content"] = ("content", "\n".join(output))
    return store


class EventSubscription:
    """A handler of events as :class:`AmiMessage` objects, in panoramisk's registry.

    Registered with ``Manager.register_event`` like any callback, so panoramisk's patterns
    and their order stay the one registry; :class:`AmiProtocol` calls ``handler(event)``
    itself, without making a panoramisk Message for the event nor going through
    ``__call__``, which is what panoramisk (or anyone else) calls.
    """

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[[AmiMessage], object]) -> None:
        self.handler = handler

    def __call__(self, _manager: Any, message: ParsedMessage) -> object:
        return self.handler(message.original)


def to_panoramisk(message: AmiMessage) -> ParsedMessage:
    """Turn a parsed message into a panoramisk ``Message`` (repeated headers become lists)."""
    return ParsedMessage(message)


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """The answer to one action: its ``Response`` message and any list events that followed.

    For list actions (``CoreShowChannels``, ``QueueStatus``, an async ``Originate``) the
    events are in ``events``, the closing ``...Complete`` event included.
    """

    message: AmiMessage
    events: tuple[AmiMessage, ...] = ()

    @property
    def response(self) -> str:
        """``Success``, ``Error``, ``Follows``, ``Goodbye`` ..."""
        return self.message.response

    @property
    def success(self) -> bool:
        """True unless Asterisk answered ``Error`` or ``Failure``."""
        return self.message.response.lower() not in _FAILED_RESPONSES

    @property
    def text(self) -> str:
        """The ``Message`` header, Asterisk's human-readable explanation."""
        return self.message.get("Message")

    @property
    def output(self) -> tuple[str, ...]:
        """The output lines of a ``Command`` action."""
        return self.message.output

    def get(self, key: str, default: str = "") -> str:
        """A header of the response message."""
        return self.message.get(key, default)


def event_whitelist_filter(event_names: Iterable[str]) -> str:
    """An AMI ``Filter`` value that lets through only the named events.

    Asterisk matches it against the whole event text; an event matching no whitelist
    filter is not sent. Answers to our own actions are never filtered.
    """
    names = sorted({re.escape(name) for name in event_names})
    if not names:
        raise ValueError("an event whitelist needs at least one event name")
    return "^Event: (" + "|".join(names) + ")[[:space:]]"


class AmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's ``AMIProtocol`` with a lossless parser and isolated event handlers.

    Usable as a panoramisk ``Manager``'s ``protocol_factory``; ``factory`` (the manager,
    whose ``register_event`` patterns are dispatched) may be given at construction so no
    byte arrives before it is known.
    """

    def __init__(
        self,
        factory: Any = None,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        slice_size: int = DEFAULT_SLICE_SIZE,
        max_slice: int = DEFAULT_MAX_SLICE,
        log: logging.Logger | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= slice_size <= max_slice:
            raise ValueError(f"need 1 <= slice_size <= max_slice, not {slice_size}, {max_slice}")
        self._slice_size = slice_size
        self._max_slice = max_slice
        self._backlog: deque[AmiMessage] = deque()
        self._initial_factory = factory
        self._max_message_size = max_message_size
        self._initial_log = log or logging.getLogger("ivr.ami")
        self.handler_errors = 0
        # Callback lists of the patterns matching each event name, for the registry seen last
        # (its pattern list and that list's length: panoramisk only ever appends patterns).
        self._matching: dict[str, tuple[list[Any], ...]] = {}
        self._matching_for: list[Any] | None = None
        self._matching_count = 0
        # Set by panoramisk's connection_made too; declared here so their types are known.
        self.closed: bool = False
        self.version: str | None = None
        self.handler_tasks: set[asyncio.Task[Any]] = set()
        self.lost: asyncio.Future[BaseException | None] | None = None
        self.parser = AmiParser(max_message_size=max_message_size)
        self.encoding = "utf-8"

    # -- connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start a fresh session: empty buffers, no pending actions."""
        super().connection_made(transport)
        self.factory = self._initial_factory
        self.log = self._initial_log
        self.encoding = "utf-8"
        self.parser = AmiParser(max_message_size=self._max_message_size)
        self._backlog.clear()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail what still waits for an answer and report the loss through ``lost``."""
        self.close()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(exc)

    def close(self) -> None:
        """Close the transport; pending actions fail with :class:`AmiConnectionLost`."""
        pending: dict[int, Action] = {id(action): action for action in self.responses.values()}
        self.responses.clear()
        for action in pending.values():
            if not action.future.done():
                action.future.set_exception(
                    AmiConnectionLost(f"AMI link lost while {action['action']} waited")
                )
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once, without waiting for buffered writes (a dead peer)."""
        self.closed = True
        self.transport.abort()

    def forget(self, action: Action) -> None:
        """Stop waiting for an answer to ``action`` (after a timeout)."""
        for key in (action.id, action.action_id):
            if key and self.responses.get(key) is action:
                del self.responses[key]

    async def close_handlers(self, grace: float) -> None:
        """Let running coroutine handlers finish for up to ``grace`` s, then cancel them."""
        if not self.handler_tasks:
            return
        tasks = set(self.handler_tasks)
        _done, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    # -- reading -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse complete messages out of ``data`` and handle each."""
        try:
            messages = self.parser.feed(data)
        except AmiProtocolError as exc:
            self.log.error("AMI protocol error, dropping the link: %s", exc)
            self.abort()
            return
        if self.version is None and self.parser.banner is not None:
            self.version = self.parser.version
            self.log.info("AMI banner: %s", self.parser.banner)
        backlog = self._backlog
        if backlog:  # already slicing: keep the order
            backlog.extend(messages)
            return
        if len(messages) <= self._slice_size:
            self._handle_all(messages)
            return
        backlog.extend(messages)
        self.transport.pause_reading()
        self._handle_slice()

    @property
    def backlog(self) -> int:
        """Messages read but not handled yet (a large read being handled slice by slice)."""
        return len(self._backlog)

    def _handle_all(self, messages: Iterable[AmiMessage]) -> None:
        # Reassigned only when a connection is made: the one dict for the whole read.
        responses = self.responses
        # The service's registry, one subscription to every event: what _dispatch does, less
        # its table and loops, for as long as the registry stays so (a handler may register
        # more). Copies to compare with: panoramisk changes its lists in place, and two
        # comparisons cost less than the table's checks.
        only = self._only_subscription(self.factory)
        if only is not None:
            patterns, callbacks, subscription = only
            known_patterns, known_callbacks = patterns.copy(), callbacks.copy()
        for message in messages:
            # A message that carries no ActionID nor CommandID answers no action (panoramisk
            # keys them so): dispatched as it is, with no panoramisk Message made for it.
            if responses and ("actionid" in message or "commandid" in message):
                self.handle_message(ParsedMessage(message))
            elif message.event or message.is_event:  # is_event, its common case first
                if only is None:
                    self._dispatch(message, None)
                else:  # _dispatch for the one subscription: this runs for every event
                    try:
                        handler = subscription.handler  # a slot: no method lookup to call it
                        result = handler(message)
                    except Exception:
                        self._handler_failed(message.event)
                    else:
                        if result is not None and asyncio.iscoroutine(result):
                            self._run_handler(result, message.event)
                    if patterns != known_patterns or callbacks != known_callbacks:
                        # Registered by the handler: the table from now on. A callback added
                        # under "*" is called for this very event too, as _dispatch's loop
                        # over the (live) list would.
                        only = None
                        added = itertools.islice(callbacks, 1, None)
                        self._call(self.factory, message, None, added)
            if self.closed:
                return

    def _only_subscription(
        self, factory: Any
    ) -> tuple[list[Any], list[Any], EventSubscription] | None:
        """``factory``'s pattern list, the callback list every event name gets and its one
        subscription, when the registry has one pattern that matches every name and one
        :class:`EventSubscription` under it (as the service registers); else None.

        The callback list is taken from the table :meth:`_dispatch` reads.
        """
        if factory is None:
            return None
        patterns: list[Any] = factory.patterns
        if len(patterns) != 1:
            return None
        regexp = patterns[0][1]
        if type(regexp) is not re.Pattern or regexp.pattern != _MATCH_ALL:
            return None
        (callbacks,) = self._callbacks_for(factory, "")
        if len(callbacks) != 1 or type(callbacks[0]) is not EventSubscription:
            return None
        return patterns, callbacks, callbacks[0]

    def _handle_slice(self) -> None:
        backlog = self._backlog
        if self.closed:
            backlog.clear()
            return
        # Half of the backlog: a backlog that grows between turns (the PBX sends faster than
        # one slice per turn) is worked down as fast as it grows, yet no turn is held long.
        waiting = len(backlog)
        take = min(waiting, self._max_slice, max(self._slice_size, (waiting + 1) // 2))
        self._handle_all([backlog.popleft() for _ in range(take)])
        if self.closed:
            backlog.clear()
        elif backlog:
            asyncio.get_running_loop().call_soon(self._handle_slice)
        else:
            self.transport.resume_reading()

    def handle_message(self, message: ParsedMessage) -> None:
        """Complete the action this message answers, or dispatch it as an event."""
        if not self.responses:  # nothing awaits an answer: skip the id lookups
            if message.original.is_event:
                self.dispatch(message)
            return
        response = self.responses.get(message.id)
        if response is None and message.action_id:
            response = self.responses.get(message.action_id)
        if response is not None:
            if response.add_message(message):
                self.forget(response)
        elif message.original.is_event:
            self.dispatch(message)

    def dispatch(self, message: ParsedMessage) -> None:
        """Call every handler registered for this event; one failing never stops the rest."""
        self._dispatch(message.original, message)

    def _dispatch(self, event: AmiMessage, message: ParsedMessage | None) -> None:
        """:meth:`dispatch`; ``message``, the panoramisk Message of ``event``, is made only
        for a callback that is not an :class:`EventSubscription` (none, in the service)."""
        factory = self.factory
        if factory is None:
            return
        name = event.event
        if message is not None:
            message.manager = factory
        # _callbacks_for's table read inlined: this runs for every event.
        patterns: list[Any] = factory.patterns
        matching = (
            self._matching.get(name)
            if patterns is self._matching_for and len(patterns) == self._matching_count
            else None
        )
        if matching is None:
            matching = self._callbacks_for(factory, name)
        for callbacks in matching:
            message = self._call(factory, event, message, callbacks)

    def _call(
        self,
        factory: Any,
        event: AmiMessage,
        message: ParsedMessage | None,
        callbacks: Iterable[Any],
    ) -> ParsedMessage | None:
        """Call each of ``callbacks`` for ``event``; the panoramisk Message of ``event``,
        ``message`` or the one made here for a callback that needs it, is returned."""
        name = event.event
        for callback in callbacks:
            try:
                if type(callback) is EventSubscription:
                    result = callback.handler(event)
                else:
                    if message is None:
                        message = ParsedMessage(event)
                        message.manager = factory
                    result = callback(factory, message)
            except Exception:
                self._handler_failed(name)
                continue
            # Most handlers are plain functions returning None: skip the coroutine test.
            if result is not None and asyncio.iscoroutine(result):
                self._run_handler(result, name)
        return message

    def _handler_failed(self, name: str) -> None:
        """Count and log the exception being handled, raised by a handler of event ``name``."""
        # A handler bug must not cost the link nor the other handlers.
        self.handler_errors += 1
        self.log.exception("AMI event handler failed on %s", name)

    def _run_handler(self, coroutine: Any, name: str) -> None:
        """Run a coroutine handler's ``coroutine`` as a task this protocol owns."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.handler_tasks.add(task)
        task.add_done_callback(functools.partial(self._handler_done, event=name))

    def _callbacks_for(self, factory: Any, name: str) -> tuple[list[Any], ...]:
        """The callback lists of the patterns matching ``name``, in registration order.

        Matched once per event name rather than once per event: the lists themselves are
        panoramisk's, so a callback added to a known pattern is seen at once, and a new
        pattern empties the table.
        """
        patterns: list[Any] = factory.patterns
        table = self._matching
        if patterns is not self._matching_for or len(patterns) != self._matching_count:
            table.clear()
            self._matching_for = patterns
            self._matching_count = len(patterns)
        matching = table.get(name)
        if matching is None:
            if len(table) >= _MAX_EVENT_NAMES:
                # A peer inventing event names must not grow the table without bound.
                table.clear()
            matching = tuple(
                factory.callbacks[pattern]
                for pattern, regexp in patterns
                if regexp.match(name) is not None
            )
            table[name] = matching
        return matching

    def _handler_done(self, task: asyncio.Task[Any], event: str) -> None:
        self.handler_tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.handler_errors += 1
            self.log.error("AMI event handler failed on %s", event, exc_info=exc)
