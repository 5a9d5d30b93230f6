"""What every ticket store offers: the contract the service is written against.

The embedded default is ``ivr.tickets.sqlite.SqliteTicketStore``; a PostgreSQL store can follow
the same contract. Writes are queued and group-committed: ``submit`` never waits, so an emergency
hand-off or a call's teardown is never held up by a disk.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ivr.tickets.model import Disposition, Ticket


class OutboxState(enum.StrEnum):
    """Where a ticket stands in the delivery to the external work-order system."""

    PENDING = "pending"  # not yet delivered; due at its next attempt time
    DELIVERED = "delivered"
    DEAD = "dead"  # given up on; needs a person to look at it


class CallbackReason(enum.StrEnum):
    """Why a citizen is owed a call back."""

    ABANDONED = "abandoned"  # hung up in the IVR or the queue before reaching anyone
    REQUESTED = "requested"  # chose "call me back" in the menu
    REVIEW = "review"  # 回访: the ticket was closed and the citizen is asked about it


class CallbackResult(enum.StrEnum):
    """How one callback attempt ended."""

    ANSWERED = "answered"  # the PBX placed the call and it was answered
    FAILED = "failed"  # the PBX could not place it (busy, no answer, congestion)
    UNKNOWN = "unknown"  # the AMI link dropped before the answer: never re-sent blindly


# Read once: a member read from its enum class runs Python code (3.11), and this is per ticket.
_ABANDONED, _CALLBACK = Disposition.ABANDONED, Disposition.CALLBACK
_REASON_ABANDONED, _REASON_REQUESTED = CallbackReason.ABANDONED, CallbackReason.REQUESTED


def callback_reason_for(disposition: Disposition) -> str:
    """The callback a new ticket is owed from how its call ended, "" if none."""
    if disposition == _ABANDONED:
        return _REASON_ABANDONED
    if disposition == _CALLBACK:
        return _REASON_REQUESTED
    return ""


@dataclass(frozen=True, slots=True)
class Claim:
    """A ticket leased to one delivery worker until its outcome is recorded or the lease ends.

    ``in_doubt`` means an earlier attempt was started and its outcome never recorded (the
    process died, or the receiver did not answer in time): the receiver may already have it.
    """

    ticket: Ticket
    claim_id: str
    attempts: int
    in_doubt: bool
    reference: str = ""  # what the receiver answered last time, if anything


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How many tickets stand in each outbox state: the delivery backlog."""

    pending: int
    delivered: int
    dead: int
    in_doubt: int


@dataclass(frozen=True, slots=True)
class CallbackDue:
    """A ticket whose caller is owed a call back now."""

    ticket: Ticket
    reason: str  # a CallbackReason value
    attempts: int  # attempts already made


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One recorded attempt to call a citizen back."""

    ticket_id: str
    attempt: int  # 1, 2, ...
    at: datetime
    result: str  # a CallbackResult value
    detail: str = ""


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

    async def claim_for_delivery(
        self, limit: int, *, lease_s: float, now: datetime | None = None
    ) -> list[Claim]:
        """Lease up to ``limit`` due tickets to the caller for ``lease_s`` seconds.

        The claim is durable before it returns: each claimed ticket is marked in doubt, so a
        worker that dies mid-send leaves a ticket that is due again when the lease ends and
        that says its earlier attempt may have arrived. Workers sharing a store never get
        the same ticket while a lease runs.
        """
        ...

    async def mark_delivered(
        self, ticket_id: str, *, reference: str = "", claim_id: str | None = None
    ) -> bool:
        """Record a successful delivery and the receiver's ``reference`` for it.

        ``False`` if no pending ticket has this id (or, given ``claim_id``, the claim is
        no longer this worker's).
        """
        ...

    async def mark_attempt_failed(
        self,
        ticket_id: str,
        *,
        retry_at: datetime | None,
        error: str = "",
        in_doubt: bool = False,
        claim_id: str | None = None,
    ) -> int:
        """Record a failed delivery: retry at ``retry_at``, or give up (dead) if it is ``None``.

        ``in_doubt`` keeps the mark that the receiver may have the ticket anyway (no answer
        came). Returns the number of attempts made so far.
        """
        ...

    async def outbox_counts(self) -> OutboxCounts:
        """How many tickets are pending, delivered, dead and in doubt."""
        ...


@runtime_checkable
class AfterCallStore(Protocol):
    """What the survey and the callback scheduler write on tickets."""

    async def record_survey(self, ticket_id: str, rating: str) -> bool:
        """Write the survey answer (a ``Satisfaction`` value); ``False`` if no such ticket."""
        ...

    async def request_callback(self, ticket_id: str, reason: str) -> bool:
        """Ask for a call back (a review call, 回访); ``False`` if no such ticket."""
        ...

    async def callbacks_due(self, limit: int, *, now: datetime | None = None) -> list[CallbackDue]:
        """Up to ``limit`` tickets owed a callback whose next attempt is due, oldest due first."""
        ...

    async def record_callback_attempt(
        self, attempt: CallbackAttempt, *, retry_at: datetime | None, done: bool
    ) -> int:
        """Log one attempt; ``done`` ends the callback, else retry at ``retry_at`` or give up.

        Returns the number of attempts made so far.
        """
        ...

    async def callback_log(self, ticket_id: str) -> list[CallbackAttempt]:
        """Every callback attempt recorded on the ticket, first first."""
        ...
