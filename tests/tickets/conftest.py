"""Helpers for the ticket tests: tickets to write, and a started store in a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.tickets.model import Disposition, Ticket, ticket_id_for
from ivr.tickets.sqlite import SqliteTicketStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2024, 5, 9, 14, 30, 5, 123456, tzinfo=SHANGHAI)

MakeTicket = Callable[..., Ticket]


def build_ticket(n: int = 0, **changes: Any) -> Ticket:
    """A complete ticket for call number ``n``, started ``n`` seconds after T0."""
    linkedid = changes.pop("linkedid", f"1715236205.{n}")
    started_at = changes.pop("started_at", T0 + timedelta(seconds=n))
    ticket = Ticket(
        ticket_id=ticket_id_for(linkedid),
        linkedid=linkedid,
        uniqueid=linkedid,
        caller_number="13800138000",
        caller_name="张三",
        dialled_line="96119",
        source_label="96119 消防隐患举报",
        ivr_path=("root", "root:2", "complaint", "complaint:1"),
        request_kind="report",
        urgency="urgent",
        sla_due=started_at + timedelta(minutes=30),
        route_kind="queue",
        route_target="fire-hazard",
        disposition=Disposition.AGENT,
        started_at=started_at,
        ended_at=started_at + timedelta(minutes=3, seconds=7),
    )
    return replace(ticket, **changes)


@pytest.fixture
def make_ticket() -> MakeTicket:
    """Builds complete tickets; keyword arguments replace fields."""
    return build_ticket


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's ticket database lives."""
    return tmp_path / "tickets.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteTicketStore]:
    """A started store on a fresh database, closed after the test."""
    ticket_store = SqliteTicketStore(db_path)
    await ticket_store.start()
    try:
        yield ticket_store
    finally:
        await ticket_store.close()
