"""The SQLite ticket store: round trips, idempotence, group commit, queries, the outbox."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr.engine.route import RequestKind, RouteKind, Urgency
from ivr.tickets.errors import TicketError, TicketStoreError
from ivr.tickets.model import Disposition, Ticket
from ivr.tickets.sqlite import SCHEMA_VERSION, SqliteTicketStore
from ivr.tickets.store import TicketOutbox, TicketStore

MakeTicket = Callable[..., Ticket]


def rows_in(db_path: Path) -> list[tuple[str, str]]:
    """(ticket_id, outbox_state) of every row, read straight from the file."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT ticket_id, outbox_state FROM tickets ORDER BY seq").fetchall()


async def test_store_satisfies_both_protocols(store: SqliteTicketStore) -> None:
    """The SQLite store is both a TicketStore and a TicketOutbox."""
    assert isinstance(store, TicketStore)
    assert isinstance(store, TicketOutbox)


async def test_every_field_round_trips(store: SqliteTicketStore, make_ticket: MakeTicket) -> None:
    """A ticket read back equals the one submitted, Chinese text, offsets and extras included."""
    ticket = make_ticket(
        7,
        caller_name="李四（代报）",
        source_label="12312 商务投诉",
        ivr_path=("root", "root:3", "投诉", "投诉:1"),
        disposition=Disposition.EMERGENCY,
        ended_at=datetime(2024, 5, 9, 6, 40, tzinfo=UTC),
        sla_due=None,
        request_kind=RequestKind.HELP,
        urgency=Urgency.URGENT,
        route_kind=RouteKind.EMERGENCY,
        route_target="fire",
        emergency_service="fire",
        emergency_target="PJSIP/119@trunk",
        emergency_result="ANSWER",
        recording="recordings/2024/05/09/1715236205.7.wav",
        node="pbx-b",
        language="en",
        extra={"survey": "5", "备注": "楼道堆放杂物", "quote": "a \"b\" 'c'"},
    )
    assert await store.submit(ticket) is True
    stored = await store.get(ticket.ticket_id)
    assert stored == ticket
    assert stored is not None and stored.started_at.utcoffset() == timedelta(hours=8)
    assert stored.ended_at.utcoffset() == timedelta(0)


async def test_sla_due_round_trips_when_set(
    store: SqliteTicketStore, make_ticket: MakeTicket
) -> None:
    """An SLA due time with its own offset comes back as the same instant and offset."""
    due = datetime(2024, 5, 10, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    ticket = make_ticket(8, sla_due=due)
    assert await store.submit(ticket) is True
    stored = await store.get(ticket.ticket_id)
    assert stored is not None and stored.sla_due == due
    assert stored.sla_due is not None and stored.sla_due.utcoffset() == timedelta(hours=-5)


async def test_unknown_ticket_is_none(store: SqliteTicketStore) -> None:
    """Asking for a ticket that was never written gives None."""
    assert await store.get("T-nope") is None


async def test_second_submit_of_a_linkedid_is_false(
    store: SqliteTicketStore, make_ticket: MakeTicket, db_path: Path
) -> None:
    """A second ticket for the same Linkedid resolves False and leaves the first row alone."""
    first = make_ticket(1)
    assert await store.submit(first) is True
    again = replace(first, disposition=Disposition.ABANDONED)
    assert await store.submit(again) is False
    assert rows_in(db_path) == [(first.ticket_id, "pending")]
    assert await store.get(first.ticket_id) == first


async def test_duplicates_inside_one_batch(
    store: SqliteTicketStore, make_ticket: MakeTicket
) -> None:
    """Two submits of one Linkedid in the same batch: the first wins, the second is False."""
    ticket = make_ticket(2)
    outcomes = await asyncio.gather(store.submit(ticket), store.submit(ticket))
    assert outcomes == [True, False]
    assert await store.count() == 1


async def test_concurrent_submits_are_group_committed(
    store: SqliteTicketStore, make_ticket: MakeTicket
) -> None:
    """1,000 submits from concurrent calls all resolve True in a handful of transactions."""
    commits_before = store.commits

    async def one_call(n: int) -> bool:
        return await store.submit(make_ticket(n))

    outcomes = await asyncio.gather(*(one_call(n) for n in range(1000)))
    assert outcomes == [True] * 1000
    assert await store.count() == 1000
    assert 1 <= store.commits - commits_before <= 4  # 512 per batch: two, give or take
    assert store.pending == 0


async def test_submit_returns_before_the_write(
    store: SqliteTicketStore, make_ticket: MakeTicket
) -> None:
    """submit hands back an unresolved future at once, and pending counts it until committed."""
    future = store.submit(make_ticket(3))
    assert not future.done()
    assert store.pending == 1
    assert await future is True
    assert store.pending == 0


async def test_close_flushes_and_reopen_keeps_everything(
    db_path: Path, make_ticket: MakeTicket
) -> None:
    """Tickets submitted just before close are committed, and a new store on the file sees them."""
    first = SqliteTicketStore(db_path)
    await first.start()
    futures = [first.submit(make_ticket(n)) for n in range(300)]
    await first.close()
    assert all(f.done() and f.result() is True for f in futures)

    second = SqliteTicketStore(db_path)
    await second.start()
    try:
        assert await second.count() == 300
        assert await second.get(make_ticket(299).ticket_id) == make_ticket(299)
        assert await second.submit(make_ticket(0)) is False  # idempotent across restarts
    finally:
        await second.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_submit_after_close_fails_the_future(
    db_path: Path, make_ticket: MakeTicket
) -> None:
    """A closed store refuses new tickets through the future, without raising into the caller."""
    ticket_store = SqliteTicketStore(db_path)
    await ticket_store.start()
    await ticket_store.close()
    await ticket_store.close()  # closing twice is harmless
    future = ticket_store.submit(make_ticket(1))
    with pytest.raises(TicketStoreError):
        await future


async def test_invalid_tickets_fail_alone(
    store: SqliteTicketStore, make_ticket: MakeTicket
) -> None:
    """A naive time, a foreign ticket id, a missing field, a missing time or a path that is
    not JSON fails that ticket, not its batch nor the store's later batches."""
    naive = make_ticket(1, ended_at=datetime(2024, 5, 9, 14, 33))
    foreign = make_ticket(2, ticket_id="T-something-else")
    missing = make_ticket(4, caller_number=None)
    no_start = dataclasses.replace(make_ticket(5), started_at=None)
    odd_path = make_ticket(6, ivr_path=(object(),))
    good = make_ticket(3)
    futures = [store.submit(t) for t in (naive, foreign, missing, no_start, odd_path, good)]
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert isinstance(outcomes[0], TicketStoreError) and "ended_at" in str(outcomes[0])
    assert isinstance(outcomes[1], TicketError) and "T-something-else" in str(outcomes[1])
    assert isinstance(outcomes[2], TicketStoreError) and "caller_number" in str(outcomes[2])
    assert isinstance(outcomes[3], TicketStoreError) and make_ticket(5).ticket_id in str(
        outcomes[3]
    )
    assert isinstance(outcomes[4], TicketStoreError) and make_ticket(6).ticket_id in str(
        outcomes[4]
    )
    assert outcomes[5] is True
    assert await store.submit(make_ticket(7)) is True  # the writer goes on
    assert await store.count() == 2


async def test_query_filters(store: SqliteTicketStore, make_ticket: MakeTicket) -> None:
    """Filters on line, kind, disposition and a time window combine, newest first."""
    tickets = [
        make_ticket(0, dialled_line="12345", request_kind="consult"),
        make_ticket(1, dialled_line="96119", request_kind="report"),
        make_ticket(2, dialled_line="96119", request_kind="report",
                    disposition=Disposition.EMERGENCY),
        make_ticket(3, dialled_line="12312", request_kind="complaint"),
        make_ticket(4, dialled_line="96119", request_kind="help"),
    ]  # fmt: skip
    await asyncio.gather(*(store.submit(t) for t in tickets))

    def ids(found: list[Ticket]) -> list[str]:
        return [t.ticket_id for t in found]

    assert ids(await store.query()) == [t.ticket_id for t in reversed(tickets)]
    assert ids(await store.query(line="96119")) == ids([tickets[4], tickets[2], tickets[1]])
    assert ids(await store.query(line="96119", kind="report")) == ids([tickets[2], tickets[1]])
    assert ids(await store.query(disposition=Disposition.EMERGENCY)) == ids([tickets[2]])
    assert ids(await store.query(disposition="agent", kind="report")) == ids([tickets[1]])
    assert await store.query(line="12320") == []
    # since is inclusive, until exclusive; the same instants given in UTC select the same.
    since = tickets[1].started_at.astimezone(UTC)
    until = tickets[3].started_at.astimezone(UTC)
    assert ids(await store.query(since=since, until=until)) == ids([tickets[2], tickets[1]])


async def test_query_pages(store: SqliteTicketStore, make_ticket: MakeTicket) -> None:
    """limit and offset page through the results without gaps or repeats."""
    await asyncio.gather(*(store.submit(make_ticket(n)) for n in range(25)))
    pages = [await store.query(limit=10, offset=offset) for offset in (0, 10, 20, 30)]
    assert [len(page) for page in pages] == [10, 10, 5, 0]
    seen = [t.ticket_id for page in pages for t in page]
    assert seen == [make_ticket(n).ticket_id for n in reversed(range(25))]


async def test_query_rejects_naive_times_and_negative_paging(store: SqliteTicketStore) -> None:
    """A naive time window or a negative limit is the caller's bug, reported as ValueError."""
    with pytest.raises(ValueError, match="since"):
        await store.query(since=datetime(2024, 5, 9))
    with pytest.raises(ValueError, match="must not be negative"):
        await store.query(limit=-1)


async def test_outbox_delivery_cycle(
    store: SqliteTicketStore, make_ticket: MakeTicket, db_path: Path
) -> None:
    """New tickets are due for delivery; delivered, retried and dead ones leave the due list."""
    tickets = [make_ticket(n) for n in range(4)]
    await asyncio.gather(*(store.submit(t) for t in tickets))
    assert await store.due_for_delivery(10) == tickets
    assert await store.due_for_delivery(2) == tickets[:2]

    assert await store.mark_delivered(tickets[0].ticket_id) is True
    assert await store.mark_delivered(tickets[0].ticket_id) is False  # already delivered
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await store.mark_attempt_failed(tickets[1].ticket_id, retry_at=later) == 1
    assert await store.mark_attempt_failed(tickets[2].ticket_id, retry_at=None) == 1

    assert await store.due_for_delivery(10) == [tickets[3]]
    assert await store.due_for_delivery(10, now=later) == [tickets[3], tickets[1]]  # by due time
    assert [state for _, state in rows_in(db_path)] == ["delivered", "pending", "dead", "pending"]
    with pytest.raises(TicketStoreError):
        await store.mark_attempt_failed(tickets[2].ticket_id, retry_at=later)


async def test_flush_waits_for_every_submitted_ticket(
    tmp_path: Path, make_ticket: MakeTicket
) -> None:
    """flush() returns only once every ticket submitted before it has settled."""
    store = SqliteTicketStore(tmp_path / "t.sqlite3", batch_max=8, max_delay_s=0.05)
    await store.start()
    try:
        futures = [store.submit(make_ticket(n)) for n in range(20)]
        await store.flush()
        assert all(future.done() for future in futures)
        assert await store.count() == 20
    finally:
        await store.close()


async def test_close_commits_then_ends_the_writer_thread(
    db_path: Path, make_ticket: MakeTicket
) -> None:
    """close() commits what was submitted and returns only once its writer thread has ended."""
    before = {thread for thread in threading.enumerate() if thread.name == "tickets-write"}
    store = SqliteTicketStore(db_path)
    await store.start()
    (writer,) = [t for t in threading.enumerate() if t.name == "tickets-write" and t not in before]
    future = store.submit(make_ticket(1))
    await store.close()
    assert not writer.is_alive()
    assert future.result() is True and len(rows_in(db_path)) == 1
