"""Callers who hung up while waiting in an agent queue are owed a call back (missed calls).

The ticket was written when the IVR handed the caller to the queue, with disposition "agent";
only the AMI events show that nobody answered. This marks such tickets for the callback
scheduler.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from ivr.ami.tracker import CallEnd
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.store import CallbackReason

_log = structlog.get_logger("ivr.aftercall")


class CallbackRequests(Protocol):
    """The store's side of it."""

    async def request_callback(self, ticket_id: str, reason: str) -> bool: ...


class QueueAbandons:
    """Turns an ended call that was abandoned in a queue into a callback request."""

    def __init__(self, store: CallbackRequests) -> None:
        self._store = store
        self._pending: set[asyncio.Task[None]] = set()

    def on_call_end(self, end: CallEnd) -> None:
        """Called for every call the AMI tracker closes; only queue abandons with a ticket count."""
        if end.queue_result != "abandoned" or not end.ticket:
            return
        task = asyncio.create_task(self._request(end.ticket, end.queue))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _request(self, ticket_id: str, queue: str) -> None:
        try:
            found = await self._store.request_callback(ticket_id, CallbackReason.ABANDONED)
        except TicketStoreError as exc:
            _log.error("callback.not_requested", ticket_id=ticket_id, error=str(exc))
            return
        _log.info("callback.requested", ticket_id=ticket_id, queue=queue, found=found)

    async def drain(self) -> None:
        """Wait for the requests already started (at shutdown, and in tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
