"""Helpers for the ticket tests: tickets to write, and a started store in a temporary folder."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.tickets.model import Disposition, Ticket, ticket_id_for
from ivr.tickets.sqlite import SqliteTicketStore
from tests.tickets.pg import PgServer, throwaway_server

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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the whole run; skips when none can be started."""
    try:
        with throwaway_server() as server:
            yield server
    except RuntimeError as exc:
        pytest.skip(str(exc))


_schemas = itertools.count(1)


@pytest.fixture
def pg_conninfo(pg_server: PgServer) -> str:
    """A connection string into a fresh, empty schema of the test server."""
    import psycopg

    schema = f"t{next(_schemas)}"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    return pg_server.conninfo(schema)


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    """Builds unstarted stores of one backend, all on the same fresh database."""
    if request.param == "sqlite":
        path = tmp_path / "tickets.db"
        return lambda **options: SqliteTicketStore(path, **options)
    from ivr.tickets.postgres import PostgresTicketStore

    conninfo = request.getfixturevalue("pg_conninfo")
    return lambda **options: PostgresTicketStore(conninfo, **options)


@pytest.fixture
async def any_store(store_factory: Callable[[], Any]) -> AsyncIterator[Any]:
    """A started store of each backend on a fresh database, closed after the test."""
    ticket_store = store_factory()
    await ticket_store.start()
    try:
        yield ticket_store
    finally:
        await ticket_store.close()
