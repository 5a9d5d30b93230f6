"""What every ticket store offers: the contract the service is written against.

The embedded default is ``ivr.tickets.sqlite.SqliteTicketStore``; a PostgreSQL store can follow
the same contract. Writes are queued and group-committed: ``submit`` never waits, so an emergency
hand-off or a call's teardown is never held up by a disk.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import datetime
from typing import Protocol, runtime_checkable

from ivr.tickets.model import Disposition, Ticket


class OutboxState(enum.StrEnum):
    """Where a ticket stands in the delivery to the external work-order system."""

    PENDING = "pending"  # not yet delivered; due at its next attempt time
    DELIVERED = "delivered"
    DEAD = "dead"  # given up on; needs a person to look at it


@runtime_checkable
class TicketStore(Protocol):
    """A durable store of one ticket per call, idempotent on the call's Linkedid."""

    async def start(self) -> None:
        """Open the store and start its writer; a store that cannot write yet still starts."""

    async def close(self) -> None:
        """Write everything already submitted, then stop. Safe to call twice."""

    def submit(self, ticket: Ticket) -> asyncio.Future[bool]:
        """Queue ``ticket`` for writing and return at once, without waiting for the disk.

        The future resolves ``True`` once the ticket is durably committed, ``False`` if its
        Linkedid already had a ticket (idempotence, not an error), and fails with
        ``TicketStoreError`` if it could not be written. Must be called from the event loop.
        """
        ...

    async def flush(self) -> None:
        """Wait until every ticket submitted so far is committed or has failed."""
        ...

    async def get(self, ticket_id: str) -> Ticket | None:
        """The committed ticket with this id, or ``None``."""
        ...

    async def query(
        self,
        *,
        line: str | None = None,
        kind: str | None = None,
        disposition: Disposition | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Ticket]:
        """Committed tickets matching every given filter, newest call first.

        ``line`` is the dialled line, ``kind`` the request kind; ``since`` is inclusive and
        ``until`` exclusive on the call's start time (both timezone-aware).
        """
        ...

    async def count(self) -> int:
        """How many tickets are committed."""
        ...

    @property
    def pending(self) -> int:
        """Tickets submitted but not yet committed (queued or being written)."""
        ...

    @property
    def writable(self) -> bool:
        """Whether the last write succeeded; ``False`` means tickets are failing right now."""
        ...


@runtime_checkable
class TicketOutbox(Protocol):
    """The delivery side of a store: tickets still owed to the external work-order system."""

    async def due_for_delivery(self, limit: int, *, now: datetime | None = None) -> list[Ticket]:
        """Up to ``limit`` pending tickets whose next attempt is due at ``now``, oldest first."""
        ...

    async def mark_delivered(self, ticket_id: str) -> bool:
        """Record a successful delivery; ``False`` if no pending ticket has this id."""
        ...

    async def mark_attempt_failed(self, ticket_id: str, *, retry_at: datetime | None) -> int:
        """Record a failed delivery: retry at ``retry_at``, or give up (dead) if it is ``None``.

        Returns the number of attempts made so far.
        """
        ...
