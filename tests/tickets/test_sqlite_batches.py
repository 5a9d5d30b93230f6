"""How the SQLite store writes a batch: one statement call for the whole batch when every
ticket is new, row by row when one is not, so that each ticket still gets its own outcome."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.tickets import _rows
from ivr.tickets._rows import INSERT_COLUMNS, encode
from ivr.tickets.model import Disposition, Ticket
from ivr.tickets.sqlite import SqliteTicketStore

MakeTicket = Callable[..., Ticket]


class CountingConnection(sqlite3.Connection):
    """A connection that logs how the ticket INSERT is called: (method, rows)."""

    inserts: list[tuple[str, int]]

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql.startswith("INSERT INTO tickets"):
            self.inserts.append(("execute", 1))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        rows = list(parameters)
        if sql.startswith("INSERT INTO tickets"):
            self.inserts.append(("executemany", len(rows)))
        return super().executemany(sql, rows)


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every INSERT the store's connections run from now on."""
    log: list[tuple[str, int]] = []
    monkeypatch.setattr(CountingConnection, "inserts", log, raising=False)
    connect = functools.partial(sqlite3.connect, factory=CountingConnection)
    monkeypatch.setattr(sqlite3, "connect", connect)
    return log


def provisional(ticket: Ticket) -> Ticket:
    """The provisional form of ``ticket``, as the call flow writes it when the call starts."""
    return replace(ticket, disposition=Disposition.IN_PROGRESS, ended_at=ticket.started_at)


async def test_batch_of_new_tickets_is_one_statement_call_and_mixed_one_is_redone(
    tmp_path: Path, make_ticket: MakeTicket, inserts: list[tuple[str, int]]
) -> None:
    """New tickets take one executemany; a batch where one is not new is undone and written row
    by row: new, replacing a provisional row, or not new, each ticket has its own outcome."""
    # No wait for a batch to fill: each batch is what was submitted before the writer ran.
    store = SqliteTicketStore(tmp_path / "t.db", max_delay_s=0)
    await store.start()
    commits = store.commits
    try:
        b, c, d = make_ticket(2), make_ticket(3), make_ticket(4)
        seeds = [store.submit(t) for t in (provisional(b), c, d)]
        assert await asyncio.gather(*seeds) == [True] * 3
        assert inserts == [("executemany", 3)]

        inserts.clear()
        e = make_ticket(5)
        batch = [make_ticket(1), b, replace(c, disposition=Disposition.ABANDONED),
                 provisional(d), e, replace(e, disposition=Disposition.ABANDONED)]  # fmt: skip
        outcomes = await asyncio.gather(*(store.submit(t) for t in batch))
        assert outcomes == [True, True, False, False, True, False]
        assert inserts == [("executemany", 6)] + [("execute", 1)] * 6
        assert store.commits - commits == 2
        for ticket in (make_ticket(1), b, c, d, e):
            assert await store.get(ticket.ticket_id) == ticket
        assert await store.count() == 5
    finally:
        await store.close()


def test_row_values_follow_insert_columns(make_ticket: MakeTicket) -> None:
    """A row is a tuple in INSERT_COLUMNS order, each value in its stored form."""
    ticket = make_ticket(
        7, caller_name="李四", ivr_path=("root", "投诉"), extra={"z": "1", "备注": "杂物"},
        emergency_service="fire", emergency_target="PJSIP/119", emergency_result="ANSWER",
        recording="r.wav", node="pbx-b", language="en", satisfaction="satisfied",
        disposition=Disposition.ABANDONED, ended_at=datetime(2024, 5, 9, 6, 40, tzinfo=UTC),
    )  # fmt: skip
    row = encode(ticket, "node-a", now_us=42)
    assert isinstance(row, tuple) and len(row) == len(INSERT_COLUMNS)
    named = dict(zip(INSERT_COLUMNS, row, strict=True))
    for name in _rows.TICKET_COLUMNS:
        if name not in ("ivr_path", "extra", "disposition", "started_at", "ended_at", "sla_due"):
            assert named[name] == getattr(ticket, name), name
    assert ticket.sla_due is not None
    assert named == named | {
        "ivr_path": json.dumps(["root", "投诉"], ensure_ascii=False),
        "extra": json.dumps(ticket.extra, ensure_ascii=False, sort_keys=True),
        "disposition": "abandoned_in_ivr",
        "started_at": "2024-05-09T14:30:12.123456+08:00",
        "ended_at": "2024-05-09T06:40:00+00:00",
        "sla_due": ticket.sla_due.isoformat(),
        "started_us": 1_715_236_212_123_456,
        "next_attempt_us": 42,
        "callback_state": "wanted",
        "callback_reason": "abandoned",
        "next_callback_us": 0,
        "instance": "node-a",
    }
