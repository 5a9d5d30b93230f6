"""kill -9 of the delivering process at the worst moment, then a restart: nothing lost, nothing
posted twice to an Open311 receiver that has no idempotency key."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ivr.tickets.model import Ticket
from ivr.tickets.sqlite import SqliteTicketStore
from tests.tickets.fake_open311 import fake_open311

MakeTicket = Callable[..., Ticket]
CHILD = Path(__file__).with_name("delivery_child.py")
REPO = Path(__file__).resolve().parents[2]
BOUND = 20.0  # a safety bound only


async def spawn(backend: str, where: str, url: str) -> asyncio.subprocess.Process:
    """Start the delivery process and wait until its worker runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), backend, where, url, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    async with asyncio.timeout(BOUND):
        assert await process.stdout.readline() == b"ready\n"
    return process


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_kill_9_mid_delivery_then_restart(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, make_ticket: MakeTicket
) -> None:
    """SIGKILL while a POST is unanswered and others are in flight; after a restart every ticket
    exists exactly once at the receiver and is delivered in the store."""
    where: str
    store: Any
    if backend == "sqlite":
        where = str(tmp_path / "tickets.db")
        store = SqliteTicketStore(Path(where))
    else:
        from ivr.tickets.postgres import PostgresTicketStore

        where = request.getfixturevalue("pg_conninfo")
        store = PostgresTicketStore(where)
    tickets = [make_ticket(n) for n in range(40)]
    await store.start()
    await asyncio.gather(*(store.submit(t) for t in tickets))
    await store.close()

    async with fake_open311() as fake:
        # Ten requests created and answered, then one created whose answer never comes.
        fake.answers = ["created"] * 10 + ["hold"]
        first = await spawn(backend, where, fake.url)
        try:
            async with asyncio.timeout(BOUND):
                await fake.held.wait()
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        fake.hold.set()
        posted_before = sum(fake.posts.values())

        second = await spawn(backend, where, fake.url)
        try:
            async with asyncio.timeout(BOUND):
                await fake.wait_for(lambda: len(fake.created) >= len(tickets))
        finally:
            second.send_signal(signal.SIGTERM)
            async with asyncio.timeout(BOUND):
                await second.wait()
        assert second.returncode == 0

    assert fake.by_ticket() == {t.ticket_id: 1 for t in tickets}
    assert set(fake.posts.values()) == {1}  # not one POST repeated, the held one included
    assert fake.lookups >= 1 and posted_before >= 11
    store = (SqliteTicketStore(Path(where)) if backend == "sqlite"
             else type(store)(where))  # fmt: skip
    await store.start()
    try:
        counts = await store.outbox_counts()
    finally:
        await store.close()
    assert (counts.delivered, counts.pending, counts.dead) == (len(tickets), 0, 0)
