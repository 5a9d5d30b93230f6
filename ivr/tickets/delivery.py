"""The delivery worker: tickets from the store's outbox to the external work-order system.

A ticket is committed locally first; only then does this worker lease it from the outbox, hand
it to a ``Receiver`` and record the outcome. The lease is written before the send and marks the
ticket *in doubt*; a worker killed at any moment therefore leaves every unfinished ticket
pending and in doubt, due again when its lease ends. Nothing is lost.

Nothing is sent twice either, as far as the receiver can tell. Before an in-doubt ticket is sent
again, the receiver is asked whether it already has it (``Receiver.find_delivered``):

* the webhook receiver sends the call's Linkedid as ``Idempotency-Key``, so sending again *is*
  the check (the receiver answers 2xx or 409 for a key it has);
* Open311 has no idempotency key; its receiver writes the ticket id into the request's
  description and, for an in-doubt ticket, lists the service requests of that service code
  since the call ended and looks for it. Found: recorded as delivered with the id the system
  gave, never posted again. A lookup that fails leaves the ticket in doubt for a later try.

Definite failures (an HTTP answer that says no) are retried with exponential backoff and
jitter, and dead-lettered after ``max_attempts`` attempts or at once for a permanent refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Ticket
from ivr.tickets.store import Claim, TicketOutbox

_log = structlog.get_logger("ivr.tickets.delivery")


class Outcome(enum.StrEnum):
    """What one delivery attempt came to."""

    DELIVERED = "delivered"
    RETRY = "retry"  # a transient failure: try again later
    PERMANENT = "permanent"  # the receiver refused this ticket for good: dead-letter it


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one attempt, the receiver's reference for the ticket, or its error.

    ``in_doubt`` (with ``RETRY``) means the request may have arrived although no answer came:
    a timeout or a connection lost after sending.
    """

    outcome: Outcome
    reference: str = ""
    error: str = ""
    in_doubt: bool = False

    @classmethod
    def delivered(cls, reference: str = "") -> DeliveryResult:
        """The receiver has the ticket (now or from an earlier attempt)."""
        return cls(Outcome.DELIVERED, reference=reference)

    @classmethod
    def retry(cls, error: str, *, in_doubt: bool = False) -> DeliveryResult:
        """Not delivered this time; try again later."""
        return cls(Outcome.RETRY, error=error, in_doubt=in_doubt)

    @classmethod
    def permanent(cls, error: str) -> DeliveryResult:
        """Refused for good: retrying cannot help."""
        return cls(Outcome.PERMANENT, error=error)


class Receiver(Protocol):
    """An external work-order system that tickets are delivered to."""

    async def deliver(self, ticket: Ticket) -> DeliveryResult:
        """Send one ticket; never raises for a fault of the other side."""
        ...

    async def find_delivered(self, ticket: Ticket, reference: str) -> DeliveryResult | None:
        """For a ticket in doubt: ``delivered`` if the receiver already has it, ``None`` if it
        certainly has not (send it), ``retry`` if that cannot be told now."""
        ...


def backoff_delay(attempts: int, *, base_s: float, cap_s: float, rng: random.Random) -> timedelta:
    """The wait after the ``attempts``-th failure: exponential, capped, with "equal jitter"
    (half fixed, half random) so a receiver coming back is not hit by every worker at once."""
    ceiling = min(cap_s, base_s * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


class DeliveryWorker:
    """Delivers the outbox's due tickets through ``receiver``; one task, owned here.

    ``notify()`` wakes it at once (connect it to the store's commit listener); besides that it
    looks again every ``poll_s`` seconds for retries that have come due. ``lease_s`` must be
    longer than the receiver's worst-case time for one ticket (lookup plus send).

    Counters since start: ``delivered``, ``failed`` (attempts that failed), ``dead`` (tickets
    dead-lettered), ``reconciled`` (in-doubt tickets found already delivered); gauges from the
    store: ``pending``, ``dead_total`` and ``in_doubt``.
    """

    def __init__(
        self,
        outbox: TicketOutbox,
        receiver: Receiver,
        *,
        batch: int = 64,
        concurrency: int = 8,
        max_attempts: int = 10,
        backoff_base_s: float = 2.0,
        backoff_cap_s: float = 600.0,
        lease_s: float = 120.0,
        poll_s: float = 1.0,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1 or max_attempts < 1:
            raise ValueError("batch, concurrency and max_attempts must be at least 1")
        if lease_s <= 0 or poll_s <= 0 or backoff_base_s <= 0 or backoff_cap_s <= 0:
            raise ValueError("lease, poll and backoff times must be positive")
        self._outbox = outbox
        self._receiver = receiver
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._rng = rng or random.Random()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._wakeup = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.delivered = 0
        self.failed = 0
        self.dead = 0
        self.reconciled = 0
        self.pending = 0
        self.dead_total = 0
        self.in_doubt = 0

    async def start(self) -> None:
        """Start the worker task; returns at once."""
        if self._task is not None:
            raise RuntimeError("a delivery worker can be started once")
        self._task = asyncio.create_task(self._run(), name="ticket-delivery")

    async def close(self, grace_s: float = 5.0) -> None:
        """Let attempts in progress finish (up to ``grace_s``), then stop.

        An attempt cut off here stays in doubt in the store and is settled by the next worker.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_s)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def notify(self) -> None:
        """A ticket was committed: look at the outbox now."""
        self._wakeup.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; it is checked after every recorded outcome."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                claims = await self._outbox.claim_for_delivery(
                    self._batch, lease_s=self._lease_s, now=self._clock()
                )
            except TicketStoreError as exc:
                _log.warning("delivery.store_unavailable", error=str(exc))
                claims = []
            if claims:
                async with asyncio.TaskGroup() as group:
                    for claim in claims:
                        group.create_task(self._attempt_guarded(claim))
                continue  # a full batch may mean more are due
            await self._refresh_gauges()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_s)

    async def _attempt_guarded(self, claim: Claim) -> None:
        async with self._slots:
            try:
                await self._attempt(claim)
            except TicketStoreError as exc:
                # The outcome is not recorded: the lease runs out and the ticket, still in
                # doubt, is looked up before it is ever sent again.
                _log.warning("delivery.outcome_not_recorded",
                             ticket_id=claim.ticket.ticket_id, error=str(exc))  # fmt: skip
        async with self._changed:
            self._changed.notify_all()

    async def _attempt(self, claim: Claim) -> None:
        ticket = claim.ticket
        result: DeliveryResult | None = None
        if claim.in_doubt:
            result = await self._receiver.find_delivered(ticket, claim.reference)
            if result is not None and result.outcome == Outcome.DELIVERED:
                self.reconciled += 1
            elif result is not None:
                # Cannot tell whether it arrived: never send blindly, ask again later.
                result = DeliveryResult.retry(result.error, in_doubt=True)
        if result is None:
            result = await self._receiver.deliver(ticket)
        if result.outcome == Outcome.DELIVERED:
            if await self._outbox.mark_delivered(
                ticket.ticket_id, reference=result.reference, claim_id=claim.claim_id
            ):
                self.delivered += 1
                _log.info("delivery.delivered", ticket_id=ticket.ticket_id,
                          reference=result.reference)  # fmt: skip
            return
        attempts = claim.attempts + 1
        self.failed += 1
        give_up = result.outcome == Outcome.PERMANENT or attempts >= self._max_attempts
        retry_at = None
        if not give_up:
            delay = backoff_delay(
                attempts, base_s=self._backoff_base_s, cap_s=self._backoff_cap_s, rng=self._rng
            )
            retry_at = self._clock() + delay
        await self._outbox.mark_attempt_failed(
            ticket.ticket_id, retry_at=retry_at, error=result.error,
            in_doubt=result.in_doubt, claim_id=claim.claim_id,
        )  # fmt: skip
        if give_up:
            self.dead += 1
            _log.error("delivery.dead_lettered", ticket_id=ticket.ticket_id,
                       attempts=attempts, error=result.error)  # fmt: skip
        else:
            _log.warning("delivery.retry", ticket_id=ticket.ticket_id, attempts=attempts,
                         error=result.error, in_doubt=result.in_doubt)  # fmt: skip

    async def _refresh_gauges(self) -> None:
        try:
            counts = await self._outbox.outbox_counts()
        except TicketStoreError:
            return
        self.pending, self.dead_total, self.in_doubt = counts.pending, counts.dead, counts.in_doubt
