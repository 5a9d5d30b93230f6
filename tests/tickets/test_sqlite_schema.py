"""The SQLite ticket schema: what a write costs SQLite, and the migration that rebuilt it."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.tickets import _sqlite_schema as schema
from ivr.tickets._rows import encode
from ivr.tickets.model import Disposition
from ivr.tickets.sqlite import SCHEMA_VERSION, SqliteTicketStore
from tests.tickets.conftest import MakeTicket


def _opcodes(conn: sqlite3.Connection, sql: str) -> list[str]:
    placeholders = sql.count("?")
    return [row[1] for row in conn.execute(f"EXPLAIN {sql}", (None,) * placeholders)]


def test_writing_a_ticket_builds_no_temporary_btree() -> None:
    """The ticket INSERT opens no ephemeral table: an ``IN (...)`` list in a CHECK made SQLite
    build one per row written, half of a ticket's cost."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    schema.migrate(conn, 0)
    assert "OpenEphemeral" not in _opcodes(conn, schema.INSERT)
    assert "Insert" in _opcodes(conn, schema.INSERT)  # the statement is the real one


def _version_3_file(path: Path, make_ticket: MakeTicket) -> list[tuple[object, ...]]:
    """A ticket file as version 3 of the schema left it, with a final and a provisional
    row and a callback log entry; returns the rows as stored."""
    conn = sqlite3.connect(path, isolation_level=None)
    for script in schema.MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 3")
    final = make_ticket(1, disposition=Disposition.CALLBACK, extra={"备注": "回电"})
    provisional = replace(
        make_ticket(2), disposition=Disposition.IN_PROGRESS, ended_at=make_ticket(2).started_at
    )
    conn.executemany(schema.INSERT, [encode(final, "pbx1"), encode(provisional, "pbx1")])
    conn.execute(
        "UPDATE tickets SET outbox_state = 'delivered', attempts = 2, delivery_ref = 'SR-9' "
        "WHERE ticket_id = ?",
        (final.ticket_id,),
    )
    conn.execute(
        "INSERT INTO callback_log VALUES (?, 1, '2024-05-09T15:00:00+08:00', 'busy', '')",
        (final.ticket_id,),
    )
    rows = conn.execute("SELECT * FROM tickets ORDER BY seq").fetchall()
    conn.close()
    return rows


def test_version_3_file_is_rebuilt_with_every_row(db_path: Path, make_ticket: MakeTicket) -> None:
    """The migration from version 3 keeps every row and column, the indexes, and CHECKs that
    still refuse a bad state."""
    before = _version_3_file(db_path, make_ticket)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        schema.migrate(conn, schema.schema_version(conn))
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert conn.execute("SELECT * FROM tickets ORDER BY seq").fetchall() == before
        assert conn.execute("SELECT count(*) FROM callback_log").fetchone()[0] == 1
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'tickets'"
            )
        }
        assert {"tickets_by_start", "tickets_by_line", "tickets_outbox_due",
                "tickets_callbacks_due", "tickets_in_progress"} <= indexes  # fmt: skip
        for column, value in (("outbox_state", "lost"), ("callback_state", "maybe")):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                conn.execute(f"UPDATE tickets SET {column} = ? WHERE seq = 1", (value,))
        assert "OpenEphemeral" not in _opcodes(conn, schema.INSERT)
    finally:
        conn.close()


async def test_store_opens_a_version_3_file(db_path: Path, make_ticket: MakeTicket) -> None:
    """The store migrates a version 3 file as it opens it and reads its tickets back whole."""
    _version_3_file(db_path, make_ticket)
    store = SqliteTicketStore(db_path)
    await store.start()
    try:
        assert await store.get(make_ticket(1).ticket_id) == make_ticket(
            1, disposition=Disposition.CALLBACK, extra={"备注": "回电"}
        )
        assert await store.count() == 2
    finally:
        await store.close()
