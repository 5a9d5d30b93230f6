"""Provisional tickets: written when a call starts, replaced by its final ticket, finalised as a
service error by the next start of a store when the process that wrote them died."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ivr.tickets.model import Disposition, Ticket

MakeTicket = Callable[..., Ticket]


def provisional(ticket: Ticket) -> Ticket:
    """The provisional form of ``ticket``, as the call flow writes it when the call starts."""
    return replace(ticket, disposition=Disposition.IN_PROGRESS, ended_at=ticket.started_at,
                   route_kind="", route_target="")  # fmt: skip


async def test_final_replaces_provisional_once(any_store: Any, make_ticket: MakeTicket) -> None:
    """The final ticket replaces the provisional row; a final row is never replaced again."""
    final = make_ticket(1)
    assert await any_store.submit(provisional(final)) is True
    assert (await any_store.get(final.ticket_id)).disposition == Disposition.IN_PROGRESS
    assert await any_store.submit(final) is True
    assert await any_store.get(final.ticket_id) == final
    assert await any_store.submit(replace(final, disposition=Disposition.ABANDONED)) is False
    assert await any_store.submit(provisional(final)) is False
    assert await any_store.get(final.ticket_id) == final
    assert await any_store.count() == 1


async def test_provisional_and_final_in_one_batch(any_store: Any, make_ticket: MakeTicket) -> None:
    """Provisional and final writes of many calls share a few transactions, and end final."""
    before = any_store.commits
    finals = [make_ticket(n) for n in range(300)]
    firsts = [any_store.submit(provisional(t)) for t in finals]
    seconds = [any_store.submit(t) for t in finals]
    assert await asyncio.gather(*firsts, *seconds) == [True] * 600
    assert 1 <= any_store.commits - before <= 4
    assert await any_store.count() == 300
    assert {t.disposition for t in await any_store.query(limit=300)} == {Disposition.AGENT}


async def test_provisional_is_neither_delivered_nor_called_back(
    any_store: Any, make_ticket: MakeTicket
) -> None:
    """A call still in the IVR is owed no delivery and no callback, and is no backlog."""
    await any_store.submit(provisional(make_ticket(1, disposition=Disposition.ABANDONED)))
    later = datetime.now(UTC) + timedelta(days=1)
    assert await any_store.due_for_delivery(10, now=later) == []
    assert await any_store.claim_for_delivery(10, lease_s=5, now=later) == []
    assert await any_store.callbacks_due(10, now=later) == []
    assert (await any_store.outbox_counts()).pending == 0


async def test_restart_finalises_a_dead_process_provisional_rows(
    store_factory: Callable[..., Any], make_ticket: MakeTicket
) -> None:
    """The same instance's next start turns its provisional rows into due service errors."""
    ticket = make_ticket(1, started_at=datetime.now(UTC))
    first = store_factory(instance="node-a")
    await first.start()
    await first.submit(provisional(ticket))
    await first.close()  # as a killed process would leave it: the row is committed

    before = datetime.now(UTC)
    second = store_factory(instance="node-a")
    await second.start()
    try:
        assert second.recovered == 1
        found = await second.get(ticket.ticket_id)
        assert found is not None and found.disposition == Disposition.SERVICE_ERROR
        assert found.ended_at >= before and found.extra["recovered_after"] == "service_restart"
        assert [t.ticket_id for t in await second.due_for_delivery(10)] == [ticket.ticket_id]
        # Final now: the call's late final ticket (were it to come) changes nothing.
        assert await second.submit(ticket) is False
    finally:
        await second.close()


async def test_other_instances_rows_wait_until_stale(
    store_factory: Callable[..., Any], make_ticket: MakeTicket
) -> None:
    """Another live instance's fresh provisional row is left alone; a stale one is finalised."""
    now = datetime.now(UTC)
    fresh = make_ticket(1, started_at=now)
    stale = make_ticket(2, started_at=now - timedelta(hours=7))
    writer = store_factory(instance="node-a")
    await writer.start()
    await asyncio.gather(writer.submit(provisional(fresh)), writer.submit(provisional(stale)))
    other = store_factory(instance="node-b", stale_after_s=6 * 3600)
    await other.start()
    try:
        assert other.recovered == 1
        assert (await other.get(fresh.ticket_id)).disposition == Disposition.IN_PROGRESS
        assert (await other.get(stale.ticket_id)).disposition == Disposition.SERVICE_ERROR
        assert await writer.submit(fresh) is True  # node-a's call ends normally
        assert await other.get(fresh.ticket_id) == fresh
    finally:
        await other.close()
        await writer.close()
