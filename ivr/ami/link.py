"""A supervised AMI link: login, keepalive, reconnect, typed actions, event subscriptions.

Built on panoramisk's ``Manager`` (its event-pattern registry and ``Action`` futures),
with the supervision panoramisk lacks: Login before any Ping, a Ping that must be
answered (a half-open link is found within two ping intervals), exponential backoff
with full jitter, and actions that fail rather than being re-sent after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from panoramisk.actions import Action
from panoramisk.manager import Manager

from ivr.ami._parser import AmiMessage
from ivr.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
)
from ivr.ami.events import EventFilter
from ivr.ami.protocol import AmiProtocol, AmiResponse, EventSubscription, ParsedMessage

__all__ = ["AmiLink", "EventHandler", "LinkCallback", "RetryCallback"]

EventHandler = Callable[[AmiMessage], object]
LinkCallback = Callable[["AmiLink"], Awaitable[object]]
# Called before each reconnect wait: (link, attempt number since start, delay in seconds).
RetryCallback = Callable[["AmiLink", int, float], object]


class _LinkManager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's ``Manager`` reduced to its registry: the link owns connecting."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        # Manager registers a FullyBooted hook that re-sends unanswered actions;
        # a re-sent Redirect moves a caller twice, so the hook is dropped.
        self.callbacks.clear()
        self.patterns.clear()
        self.awaiting_actions.clear()

    def connect(self, *_args: object, **_kwargs: object) -> None:
        """Connecting belongs to :class:`AmiLink`'s supervisor."""
        raise AmiError("AmiLink connects; use AmiLink.start()")

    def ping(self) -> None:
        """Pings belong to :class:`AmiLink`, which checks that they are answered."""

    async def send_awaiting_actions(self, *_args: object) -> None:
        """Never re-send actions after a reconnect."""

    def dispatch(self, event: ParsedMessage) -> list[str]:
        """Dispatch through the protocol, which isolates handlers and owns their tasks."""
        if isinstance(self.protocol, AmiProtocol):
            self.protocol.dispatch(event)
        return []

    def connection_lost(self, exc: object) -> None:
        """The link's supervisor sees the loss through the protocol; nothing to schedule."""
        self._connected = False


class _LinkAction(Action):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's ``Action``, safe for answers like ``Atxfer successfully queued``."""

    @property
    def multi(self) -> bool:
        """Whether the answer is a list; panoramisk looks up an ``Async`` header to decide
        after "... successfully queued" and raises KeyError when the action has none."""
        try:
            return bool(super().multi)
        except KeyError:
            return False  # no Async header: a synchronous answer, nothing follows


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _check_action(action: Mapping[str, str]) -> None:
    if not any(key.lower() == "action" for key in action):
        raise ValueError("an AMI action needs an 'Action' key")
    for key, value in action.items():
        # A line end inside a value would let the caller inject extra AMI headers.
        if any(ch in str(key) + str(value) for ch in "\r\n"):
            raise ValueError(f"AMI header {key!r} contains a line end")


class AmiLink:
    """One supervised AMI connection to one Asterisk node.

    ``start()`` launches the supervisor task and returns at once; ``close()`` ends it.
    ``on_connected(link)`` is awaited after each successful login (resynchronise there),
    ``on_disconnected(link)`` after each loss of a logged-in link. ``on_retry(link, attempt,
    delay)`` is called before every reconnect wait, failed logins and refused connections
    included (one metric sample per attempt); ``last_error`` says why the last try ended.
    ``event_filters`` are added with the ``Filter`` action after each login, before the link
    counts as up (see :mod:`ivr.ami.events`; the action needs the ``system`` write class).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        node: str = "pbx1",
        events: str = "call,dialplan,agent",
        ping_interval: float = 10.0,
        action_timeout: float = 5.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        connect_timeout: float = 5.0,
        event_filters: Sequence[EventFilter] = (),
        on_connected: LinkCallback | None = None,
        on_disconnected: LinkCallback | None = None,
        on_retry: RetryCallback | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.node = node
        self._username = username
        self._secret = secret
        self._events = events
        self.ping_interval = ping_interval
        self.action_timeout = action_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.connect_timeout = connect_timeout
        self.event_filters = tuple(event_filters)
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_retry = on_retry
        self.log = logger or logging.getLogger("ivr.ami")
        self.manager = _LinkManager(host=host, port=port, log=self.log)
        self.reconnects = 0
        self.last_error = ""
        self.version = ""
        self._past_handler_errors = 0
        self._protocol: AmiProtocol | None = None
        self._logged_in = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._was_up = False
        self._random = random.Random()

    # -- public surface --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while logged in and the connection is up."""
        return self._logged_in.is_set()

    @property
    def handler_errors(self) -> int:
        """How many event-handler calls raised, over the life of the link."""
        current = self._protocol.handler_errors if self._protocol is not None else 0
        return self._past_handler_errors + current

    async def start(self) -> None:
        """Begin connecting and supervising in a task this link owns; returns at once."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name=f"ami-{self.node}")

    async def close(self) -> None:
        """Stop supervising, drop the connection, fail pending actions, end handler tasks."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            self._closing = True
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            self._closing = False
        self._logged_in.clear()

    async def wait_connected(self, timeout: float) -> None:
        """Wait until logged in; :class:`AmiTimeout` if not within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._logged_in.wait(), timeout)
        except TimeoutError:
            raise AmiTimeout(f"AMI link to {self.node} not up after {timeout} s") from None

    def subscribe(self, pattern: str, handler: EventHandler) -> None:
        """Call ``handler(event)`` for each event whose name matches ``pattern`` (``fnmatch``).

        A coroutine handler runs as a task owned by the link. A handler that raises is
        logged and counted in ``handler_errors``; other handlers and later events go on.
        The handler takes its place in panoramisk's registry (with ``register_event``'s
        callbacks, in registration order) but is given the parsed event itself: no
        panoramisk Message is made for it.
        """

        self.manager.register_event(pattern, EventSubscription(handler))

    async def send_action(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> AmiResponse:
        """Send one action and wait for its complete answer.

        Raises :class:`AmiNotConnected` if the link is down, :class:`AmiTimeout` after
        ``timeout`` (default ``action_timeout``), :class:`AmiConnectionLost` if the link
        drops first (the action is never re-sent), :class:`AmiActionError` on
        ``Response: Error``/``Failure``.
        """
        _check_action(action)
        protocol = self._protocol
        if not self.connected or protocol is None or protocol.closed:
            raise AmiNotConnected(f"AMI link to {self.node} is down")
        return await self._request(protocol, action, timeout)

    # -- requests ---------------------------------------------------------------------

    async def _request(
        self, protocol: AmiProtocol, action: Mapping[str, str], timeout: float | None
    ) -> AmiResponse:
        sent = _LinkAction(dict(action))
        # as_list=None lets panoramisk tell list answers (EventList: start) from single ones.
        future = protocol.send(sent, as_list=None)
        limit = self.action_timeout if timeout is None else timeout
        try:
            result = await asyncio.wait_for(future, limit)
        except TimeoutError:
            protocol.forget(sent)
            raise AmiTimeout(f"no answer to {sent['action']} within {limit} s") from None
        messages: list[ParsedMessage] = result if isinstance(result, list) else [result]
        answer = AmiResponse(
            message=messages[0].original, events=tuple(m.original for m in messages[1:])
        )
        if not answer.success:
            raise AmiActionError(str(sent["action"]), answer.text, answer)
        return answer

    # -- supervision ------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0 if self._was_up else failures + 1
            except AmiAuthError as exc:
                failures += 1
                self.last_error = f"authentication failed: {exc}"
                self.log.warning("AMI login to %s refused: %s", self.node, exc)
            except (AmiError, OSError, TimeoutError) as exc:
                failures += 1
                self.last_error = str(exc) or type(exc).__name__
                self.log.warning(
                    "AMI link to %s failed: %s", self.node, str(exc) or type(exc).__name__
                )
            except Exception:
                # Our own bug: log it loudly, but keep the link alive.
                failures += 1
                self.log.exception("AMI supervisor error on %s", self.node)
            ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(failures, 32))
            delay = self._random.uniform(0, ceiling)  # full jitter
            self.reconnects += 1
            self.log.info(
                "AMI reconnect to %s:%s (%s), attempt %d in %.2f s",
                self.host,
                self.port,
                self.node,
                self.reconnects,
                delay,
            )
            if self._on_retry is not None:
                try:
                    self._on_retry(self, self.reconnects, delay)
                except Exception:
                    # A broken metric hook must not stop the link from reconnecting.
                    self.log.exception("AMI on_retry callback failed for %s", self.node)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One connection: connect, log in, keep alive until lost."""
        self._was_up = False
        loop = asyncio.get_running_loop()
        factory = partial(AmiProtocol, self.manager, log=self.log)
        self.log.info("AMI connecting to %s:%s (%s)", self.host, self.port, self.node)
        _transport, protocol = await asyncio.wait_for(
            loop.create_connection(factory, self.host, self.port), self.connect_timeout
        )
        assert isinstance(protocol, AmiProtocol)
        self._protocol = self.manager.protocol = protocol
        try:
            await self._login(protocol)
            self._was_up = True
            self.version = protocol.version or ""
            self._logged_in.set()
            self.log.info("AMI link to %s up (AMI %s)", self.node, self.version or "?")
            await self._notify(self._on_connected, "on_connected")
            await self._keep_alive(protocol)
        finally:
            was_logged_in = self._logged_in.is_set()
            self._logged_in.clear()
            protocol.close()
            await protocol.close_handlers(self.action_timeout)
            self._past_handler_errors += protocol.handler_errors
            self._protocol = self.manager.protocol = None
            if self._closing:
                self.log.info("AMI link to %s closed", self.node)
            elif was_logged_in:
                self.log.warning("AMI link to %s lost", self.node)
                await self._notify(self._on_disconnected, "on_disconnected")

    async def _login(self, protocol: AmiProtocol) -> None:
        login = {
            "Action": "Login",
            "Username": self._username,
            "Secret": self._secret,
            "Events": self._events,
        }
        try:
            await self._request(protocol, login, self.action_timeout)
        except AmiActionError as exc:
            raise AmiAuthError(exc.message or "login refused") from None
        for event_filter in self.event_filters:
            await self._request(protocol, event_filter.action(), self.action_timeout)

    async def _keep_alive(self, protocol: AmiProtocol) -> None:
        """Ping every interval; an unanswered Ping means a dead link, so drop it."""
        lost = protocol.lost
        assert lost is not None
        while not lost.done():
            done, _ = await asyncio.wait({lost}, timeout=self.ping_interval)
            if done:
                return
            ping = Action({"Action": "Ping"})
            pong = protocol.send(ping, as_list=None)
            # When the link is lost first, the Ping fails later with nobody awaiting it.
            pong.add_done_callback(_retrieve)
            done, _ = await asyncio.wait(
                {lost, pong}, timeout=self.ping_interval, return_when=asyncio.FIRST_COMPLETED
            )
            if pong.done() and not pong.cancelled():
                pong.exception()  # a failed Ping shows through `lost`; mark it retrieved
            if not done:
                protocol.forget(ping)
                self.log.warning(
                    "AMI Ping to %s unanswered for %.2f s: link declared dead",
                    self.node,
                    self.ping_interval,
                )
                protocol.abort()
                return

    async def _notify(self, callback: LinkCallback | None, name: str) -> None:
        if callback is None:
            return
        try:
            await callback(self)
        except Exception:
            # A failing resync must not take the link down with it.
            self.log.exception("AMI %s callback failed for %s", name, self.node)
