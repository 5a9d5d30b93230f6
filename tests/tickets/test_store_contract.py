"""The ticket store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Satisfaction, Ticket
from ivr.tickets.store import (
    AfterCallStore,
    CallbackAttempt,
    CallbackReason,
    CallbackResult,
    TicketOutbox,
    TicketStore,
)

MakeTicket = Callable[..., Ticket]


async def test_satisfies_every_protocol(any_store: Any) -> None:
    """Each backend is a TicketStore, a TicketOutbox and an AfterCallStore."""
    assert isinstance(any_store, TicketStore)
    assert isinstance(any_store, TicketOutbox)
    assert isinstance(any_store, AfterCallStore)


async def test_round_trip_and_idempotence(any_store: Any, make_ticket: MakeTicket) -> None:
    """A ticket reads back equal; a second one for its Linkedid resolves False, in or across
    batches."""
    ticket = make_ticket(1, caller_name="李四", extra={"备注": "楼道堆放杂物"}, sla_due=None)
    first, again = await asyncio.gather(any_store.submit(ticket), any_store.submit(ticket))
    assert (first, again) == (True, False)
    assert await any_store.submit(replace(ticket, caller_name="x")) is False
    assert await any_store.get(ticket.ticket_id) == ticket
    assert await any_store.get("T-none") is None
    assert await any_store.count() == 1


async def test_group_commit(any_store: Any, make_ticket: MakeTicket) -> None:
    """600 concurrent submits all succeed in a handful of transactions."""
    before = any_store.commits
    outcomes = await asyncio.gather(*(any_store.submit(make_ticket(n)) for n in range(600)))
    assert outcomes == [True] * 600
    assert await any_store.count() == 600
    assert 1 <= any_store.commits - before <= 4


async def test_query_filters_and_pages(any_store: Any, make_ticket: MakeTicket) -> None:
    """Filters combine, newest first, and pages neither skip nor repeat."""
    tickets = [
        make_ticket(n, dialled_line="12345" if n % 2 else "96119",
                    disposition=Disposition.EMERGENCY if n == 3 else Disposition.AGENT)
        for n in range(7)
    ]  # fmt: skip
    await asyncio.gather(*(any_store.submit(t) for t in tickets))
    newest_first = [t.ticket_id for t in reversed(tickets)]
    found = await any_store.query(line="12345")
    assert [t.ticket_id for t in found] == [tickets[n].ticket_id for n in (5, 3, 1)]
    found = await any_store.query(disposition=Disposition.EMERGENCY)
    assert [t.ticket_id for t in found] == [tickets[3].ticket_id]
    window = await any_store.query(since=tickets[2].started_at, until=tickets[4].started_at)
    assert [t.ticket_id for t in window] == [tickets[3].ticket_id, tickets[2].ticket_id]
    pages = [await any_store.query(limit=3, offset=o) for o in (0, 3, 6)]
    assert [t.ticket_id for page in pages for t in page] == newest_first


async def test_claims_lease_and_record_outcomes(any_store: Any, make_ticket: MakeTicket) -> None:
    """A claim leases due tickets once; delivered, failed and dead tickets are recorded."""
    tickets = [make_ticket(n) for n in range(3)]
    await asyncio.gather(*(any_store.submit(t) for t in tickets))
    claims = await any_store.claim_for_delivery(10, lease_s=60)
    assert [c.ticket for c in claims] == tickets
    assert [c.in_doubt for c in claims] == [False] * 3
    assert await any_store.claim_for_delivery(10, lease_s=60) == []  # leased
    counts = await any_store.outbox_counts()
    assert (counts.pending, counts.in_doubt) == (3, 3)

    claim_id = claims[0].claim_id
    assert await any_store.mark_delivered(tickets[0].ticket_id, reference="id:7",
                                          claim_id="someone-else") is False  # fmt: skip
    assert await any_store.mark_delivered(tickets[0].ticket_id, reference="id:7",
                                          claim_id=claim_id) is True  # fmt: skip
    now = datetime.now(UTC)
    assert await any_store.mark_attempt_failed(
        tickets[1].ticket_id, retry_at=now, error="HTTP 500", claim_id=claim_id) == 1
    assert await any_store.mark_attempt_failed(
        tickets[2].ticket_id, retry_at=None, error="HTTP 400") == 1
    with pytest.raises(TicketStoreError):
        await any_store.mark_attempt_failed(tickets[2].ticket_id, retry_at=now)

    again = await any_store.claim_for_delivery(10, lease_s=60)
    assert [(c.ticket, c.attempts, c.in_doubt) for c in again] == [(tickets[1], 1, False)]
    counts = await any_store.outbox_counts()
    assert (counts.pending, counts.delivered, counts.dead) == (1, 1, 1)


async def test_expired_lease_comes_back_in_doubt(any_store: Any, make_ticket: MakeTicket) -> None:
    """A claim whose outcome was never recorded is due again after its lease, marked in doubt."""
    ticket = make_ticket(1)
    await any_store.submit(ticket)
    [claim] = await any_store.claim_for_delivery(5, lease_s=30)
    assert not claim.in_doubt
    later = datetime.now(UTC) + timedelta(seconds=31)
    [again] = await any_store.claim_for_delivery(5, lease_s=30, now=later)
    assert again.ticket == ticket and again.in_doubt and again.claim_id != claim.claim_id
    # The first worker's late answer no longer counts: the lease is someone else's now.
    assert await any_store.mark_delivered(ticket.ticket_id, claim_id=claim.claim_id) is False


async def test_two_stores_claim_disjoint_tickets(
    store_factory: Callable[..., Any], make_ticket: MakeTicket
) -> None:
    """Two service instances on one database, claiming at once, never share a ticket."""
    first, second = store_factory(), store_factory()
    await first.start()
    await second.start()
    try:
        await asyncio.gather(*(first.submit(make_ticket(n)) for n in range(200)))
        results: list[list[Any]] = [[], []]

        async def drain(store: Any, into: list[Any]) -> None:
            while claims := await store.claim_for_delivery(7, lease_s=60):
                into.extend(c.ticket.ticket_id for c in claims)

        await asyncio.gather(drain(first, results[0]), drain(second, results[1]))
        claimed = results[0] + results[1]
        assert len(claimed) == len(set(claimed)) == 200
    finally:
        await first.close()
        await second.close()


async def test_survey_answer_is_written(any_store: Any, make_ticket: MakeTicket) -> None:
    """record_survey writes the rating on the ticket; an unknown ticket or rating is refused."""
    ticket = make_ticket(1)
    await any_store.submit(ticket)
    assert await any_store.record_survey(ticket.ticket_id, Satisfaction.DISSATISFIED) is True
    stored = await any_store.get(ticket.ticket_id)
    assert stored is not None and stored.satisfaction == "dissatisfied"
    assert await any_store.record_survey("T-none", Satisfaction.SATISFIED) is False
    with pytest.raises(ValueError, match="not a valid Satisfaction"):
        await any_store.record_survey(ticket.ticket_id, "5")


async def test_callbacks_due_and_logged(any_store: Any, make_ticket: MakeTicket) -> None:
    """Abandoned and callback-requested calls are owed a callback; attempts are logged in order."""
    abandoned = make_ticket(1, disposition=Disposition.ABANDONED)
    asked = make_ticket(2, disposition=Disposition.CALLBACK)
    served = make_ticket(3)
    await asyncio.gather(*(any_store.submit(t) for t in (abandoned, asked, served)))
    due = await any_store.callbacks_due(10)
    assert [(d.ticket.ticket_id, d.reason, d.attempts) for d in due] == [
        (abandoned.ticket_id, CallbackReason.ABANDONED, 0),
        (asked.ticket_id, CallbackReason.REQUESTED, 0),
    ]
    assert await any_store.request_callback(served.ticket_id, CallbackReason.REVIEW) is True

    at = datetime(2024, 5, 9, 10, 0, tzinfo=UTC)
    retry_at = datetime.now(UTC) + timedelta(hours=1)
    first = CallbackAttempt(abandoned.ticket_id, 1, at, CallbackResult.FAILED, "BUSY")
    assert await any_store.record_callback_attempt(first, retry_at=retry_at, done=False) == 1
    second = CallbackAttempt(asked.ticket_id, 1, at, CallbackResult.ANSWERED)
    assert await any_store.record_callback_attempt(second, retry_at=None, done=True) == 1
    due = await any_store.callbacks_due(10)
    assert [(d.ticket.ticket_id, d.reason) for d in due] == [(served.ticket_id, "review")]
    later = await any_store.callbacks_due(10, now=retry_at)
    assert {d.ticket.ticket_id for d in later} == {served.ticket_id, abandoned.ticket_id}
    assert await any_store.callback_log(abandoned.ticket_id) == [first]
    with pytest.raises(TicketStoreError):
        await any_store.record_callback_attempt(
            replace(first, ticket_id="T-none"), retry_at=None, done=True
        )


async def test_commit_listener_fires_for_new_tickets(
    any_store: Any, make_ticket: MakeTicket
) -> None:
    """Listeners hear of a commit that wrote a new ticket, and not of a duplicate."""
    heard: list[int] = []
    any_store.add_commit_listener(lambda: heard.append(1))
    await any_store.submit(make_ticket(1))
    assert heard == [1]
    await any_store.submit(make_ticket(1))
    assert heard == [1]


async def test_reopen_keeps_tickets(
    store_factory: Callable[..., Any], make_ticket: MakeTicket
) -> None:
    """Tickets submitted before close are in a new store on the same database."""
    first = store_factory()
    await first.start()
    futures = [first.submit(make_ticket(n)) for n in range(50)]
    await first.close()
    assert all(f.result() is True for f in futures)
    second = store_factory()
    await second.start()
    try:
        assert await second.count() == 50
        assert await second.submit(make_ticket(0)) is False
    finally:
        await second.close()
