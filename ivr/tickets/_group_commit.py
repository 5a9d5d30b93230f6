"""Group commit: one writer task turns many submitted tickets into few transactions.

Calls end at their own pace; each one ``submit``s its ticket and moves on. The writer takes
everything queued (up to ``batch_max``), waiting at most ``max_delay_s`` for a batch to fill,
and hands the tickets to its store's ``insert`` coroutine, which encodes them (off the event
loop where the backend has a thread) and commits them in one transaction. Batches go in
submission order, one at a time. The backend (SQLite, PostgreSQL) is only that coroutine and
the exception type it raises; everything else here is the same for both.

A call's final ticket submitted while its provisional one still waits in the queue takes the
provisional one's place: one row written instead of two, and the provisional promise (a
ticket exists if the process dies) is kept by the final row, which is written no later.
"""

from __future__ import annotations

import abc
import asyncio
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog

from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Ticket

_log = structlog.get_logger("ivr.tickets")
# Read once: a member read from its enum class runs Python code (3.11), twice per ticket here.
_IN_PROGRESS = Disposition.IN_PROGRESS

# Commits ``tickets`` in one transaction; for each, whether it was new, or why it was refused
# (a ticket that cannot be stored faithfully fails alone, not its batch).
Insert = Callable[[list[Ticket]], Awaitable[list["bool | TicketStoreError"]]]


@dataclass(slots=True)
class _Queued:
    """A submitted ticket and the future its submitter may await.

    ``superseded`` is the future of the call's provisional ticket this one replaced in the
    queue: it settles as this one does.
    """

    ticket: Ticket
    future: asyncio.Future[bool]
    superseded: asyncio.Future[bool] | None = None


class GroupCommitWriter:
    """The submit queue and writer task of a ticket store.

    ``insert`` raises ``failure`` (the backend's error class) when a batch cannot be written:
    the batch's tickets fail and ``writable`` turns False until a write succeeds.
    ``log_fields`` name the store in its log lines.
    """

    failure: type[Exception]

    def __init__(
        self,
        insert: Insert,
        *,
        failure: type[Exception],
        batch_max: int,
        max_delay_s: float,
        task_name: str,
        log_fields: Mapping[str, str],
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        if max_delay_s < 0:
            raise ValueError("delays must not be negative")
        self._insert = insert
        self.failure = failure
        self._batch_max = batch_max
        self._max_delay_s = max_delay_s
        self._task_name = task_name
        self._log_fields = dict(log_fields)
        self._queue: deque[_Queued] = deque()
        # Provisional tickets still in the queue, by Linkedid: their final ticket replaces them.
        self._provisional: dict[str, _Queued] = {}
        self._wakeup = asyncio.Event()
        # Settled when the batch being waited for fills (or the writer closes): see _fill.
        self._batch_full: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        # The writer's loop, kept by start(): get_running_loop() costs a getpid() system call.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._in_flight = 0
        self._last_submitted: asyncio.Future[bool] | None = None
        self._commits = 0
        self._writable = True
        self._commit_listeners: list[Callable[[], None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def check_startable(self) -> None:
        """Raise ``TicketStoreError`` if the writer was started or closed already."""
        if self._task is not None or self._closed:
            raise TicketStoreError("a ticket store can be started once")

    def start(self) -> None:
        """Start the writer task; its owner awaits it through ``close``."""
        self.check_startable()
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._write_loop(), name=self._task_name)

    async def close(self) -> None:
        """Commit everything already submitted, then end the writer task."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        self._end_fill()
        if self._task is not None:
            await self._task

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called: nothing more is accepted."""
        return self._closed

    # -- writing ---------------------------------------------------------------------------

    def submit(self, ticket: Ticket) -> asyncio.Future[bool]:
        """Queue ``ticket``; see ``TicketStore.submit``. Never raises, never waits."""
        future: asyncio.Future[bool] = (self._loop or asyncio.get_running_loop()).create_future()
        if self._task is None or self._closed or self._task.done():
            future.set_exception(TicketStoreError("the ticket store is not running"))
            return future
        if ticket.disposition == _IN_PROGRESS:
            item = _Queued(ticket, future)
            self._provisional.setdefault(ticket.linkedid, item)
        else:
            waiting = self._provisional.pop(ticket.linkedid, None)
            if waiting is not None:
                # Not appended: flush() still waits on the last item appended, which settles
                # no earlier than this one.
                waiting.ticket, waiting.superseded = ticket, waiting.future
                waiting.future = future
                return future
            item = _Queued(ticket, future)
        self._queue.append(item)
        self._last_submitted = future
        self._wakeup.set()
        if len(self._queue) >= self._batch_max:
            self._end_fill()
        return future

    async def flush(self) -> None:
        """Wait until every ticket submitted so far is committed or has failed.

        Batches are committed in submission order, so the last ticket submitted settles last.
        """
        last = self._last_submitted
        if last is not None:
            await asyncio.wait([last])

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each commit that wrote a new final ticket."""
        self._commit_listeners.append(listener)

    @property
    def pending(self) -> int:
        """Tickets submitted but not yet committed (queued or being written)."""
        return len(self._queue) + self._in_flight

    @property
    def in_flight(self) -> int:
        """Tickets handed to ``insert`` whose transaction has not finished yet."""
        return self._in_flight

    @property
    def commits(self) -> int:
        """Transactions committed so far (one per batch of tickets)."""
        return self._commits

    @property
    def writable(self) -> bool:
        """Whether the last write succeeded."""
        return self._writable

    def set_writable(self, writable: bool, error: Exception | None = None) -> None:
        """Record how the last write (a batch, or any other write of the store) went."""
        if writable != self._writable:
            if writable:
                _log.info("ticket_store_writable", **self._log_fields)
            else:
                _log.error("ticket_store_failing", **self._log_fields, error=str(error))
        self._writable = writable

    # -- the writer task -------------------------------------------------------------------

    async def _write_loop(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if len(self._queue) < self._batch_max and self._max_delay_s and not self._closed:
                    await self._fill()
                size = min(len(self._queue), self._batch_max)
                batch = [self._queue.popleft() for _ in range(size)]
                if self._provisional:
                    for item in batch:
                        if self._provisional.get(item.ticket.linkedid) is item:
                            del self._provisional[item.ticket.linkedid]
                await self._commit(batch)
        finally:
            # Only reached early if the task is cancelled: nobody may wait forever on a ticket.
            self._provisional.clear()
            while self._queue:
                _fail_item(self._queue.popleft(), TicketStoreError("the ticket store stopped"))

    async def _fill(self) -> None:
        """Wait at most ``max_delay_s`` for the batch to fill, or the writer to close.

        A future and a timer: what ``wait_for(event.wait(), delay)`` does, without its task
        and callbacks for every batch.
        """
        loop = asyncio.get_running_loop()
        self._batch_full = full = loop.create_future()
        timer = loop.call_later(self._max_delay_s, _settle, full)
        try:
            await full
        finally:
            timer.cancel()
            self._batch_full = None

    def _end_fill(self) -> None:
        if self._batch_full is not None:
            _settle(self._batch_full)

    async def _commit(self, batch: list[_Queued]) -> None:
        self._in_flight = len(batch)
        try:
            outcomes = await self._insert([item.ticket for item in batch])
        except self.failure as exc:
            self.set_writable(False, exc)
            for item in batch:
                error = TicketStoreError(f"ticket {item.ticket.ticket_id} not written: {exc}")
                error.__cause__ = exc
                _fail_item(item, error)
        else:
            self._commits += 1
            self.set_writable(True)
            wake = False
            for item, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, TicketStoreError):
                    _fail_item(item, outcome)
                    continue
                # Only a final ticket is due for delivery: a provisional one wakes nobody.
                wake = wake or (outcome and item.ticket.disposition != _IN_PROGRESS)
                for future in (item.future, item.superseded):
                    if future is not None and not future.done():  # the submitter may cancel
                        future.set_result(outcome)
            if wake:
                for listener in self._commit_listeners:
                    listener()
        finally:
            self._in_flight = 0
            # Cancelled mid-write, or a bug: the outcome is unknown, but nobody waits forever.
            for item in batch:
                _fail_item(item, TicketStoreError("the ticket store stopped mid-write"))


class GroupCommitStore(abc.ABC):
    """The lifecycle and write half of a store's public surface, around a ``GroupCommitWriter``.

    A store says how to ``_open`` and ``_release`` its database and how to ``_insert`` a batch,
    and sets ``_recovered`` once it has finalised a dead process's provisional tickets.
    ``instance`` defaults to the host name.
    """

    def __init__(
        self,
        *,
        failure: type[Exception],
        instance: str | None,
        stale_after_s: float,
        batch_max: int,
        max_delay_s: float,
        task_name: str,
        log_fields: Mapping[str, str],
    ) -> None:
        if stale_after_s < 0:
            raise ValueError("delays must not be negative")
        self._instance = socket.gethostname() if instance is None else instance
        self._stale_after_s = stale_after_s
        self._recovered: int | None = None  # rows finalised at the first open; None before it
        self._writer = GroupCommitWriter(
            self._insert, failure=failure, batch_max=batch_max, max_delay_s=max_delay_s,
            task_name=task_name, log_fields=log_fields,
        )  # fmt: skip

    @abc.abstractmethod
    async def _insert(self, tickets: list[Ticket]) -> list[bool | TicketStoreError]:
        """Encode (under ``_instance``) and commit ``tickets`` in one transaction; for each,
        whether it was new, or the error that refused it alone."""

    @abc.abstractmethod
    async def _open(self) -> None:
        """Reach the database (creating or migrating it); raise the writer's ``failure``."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Close the store's connections and threads once the writer has stopped."""

    async def start(self) -> None:
        """Open (creating or migrating) the database and start the writer task.

        A database that cannot be reached does not stop the service: ``writable`` turns False,
        submitted tickets fail, and every batch tries to open it again.
        """
        self._writer.check_startable()
        try:
            await self._open()
        except self._writer.failure as exc:
            self._writer.set_writable(False, exc)
        self._writer.start()

    async def close(self) -> None:
        """Commit everything already submitted, then close the database. Safe to call twice."""
        if self._writer.closed:
            return
        try:
            await self._writer.close()
        finally:
            await self._release()

    def submit(self, ticket: Ticket) -> asyncio.Future[bool]:
        """Queue ``ticket``; see ``TicketStore.submit``. Never raises, never waits."""
        return self._writer.submit(ticket)

    async def flush(self) -> None:
        """Wait until every ticket submitted so far is committed or has failed."""
        await self._writer.flush()

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each commit that wrote a new ticket (wakes the outbox)."""
        self._writer.add_commit_listener(listener)

    @property
    def pending(self) -> int:
        """Tickets submitted but not yet committed (queued or being written)."""
        return self._writer.pending

    @property
    def in_flight(self) -> int:
        """Tickets handed to the backend whose transaction has not finished yet."""
        return self._writer.in_flight

    @property
    def writable(self) -> bool:
        """Whether the last write succeeded."""
        return self._writer.writable

    @property
    def commits(self) -> int:
        """Transactions committed so far (one per batch of tickets)."""
        return self._writer.commits

    @property
    def recovered(self) -> int | None:
        """Provisional tickets of a dead process finalised at start; None until first opened."""
        return self._recovered


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[bool], error: TicketStoreError) -> None:
    if not future.done():
        future.set_exception(error)


def _fail_item(item: _Queued, error: TicketStoreError) -> None:
    _fail(item.future, error)
    if item.superseded is not None:
        _fail(item.superseded, error)
